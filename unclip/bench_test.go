package unclip

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// benchThreads is the intra-op thread count of the benchmarks (and of the PyTorch peer).
func benchThreads() int {
	if n, err := strconv.Atoi(os.Getenv("AUGMENT_BENCH_THREADS")); err == nil && n > 0 {
		return n
	}
	return 1
}

func openBench(b *testing.B, dir string) *Pipeline {
	b.Helper()
	if _, err := FindORTLibrary(""); err != nil {
		b.Skipf("ONNX Runtime not available (%v): run `make setup`", err)
	}
	bd, err := LoadBundle(dir)
	if err != nil {
		b.Fatal(err)
	}
	p, err := Open(bd, RuntimeOptions{IntraOpThreads: benchThreads()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return p
}

// decoderStepFunc returns one guided decoder evaluation (a doubled batch of 2), as bench_torch.py.
func decoderStepFunc(b *testing.B, p *Pipeline) func() {
	m := p.Bundle.Manifest
	C, S, D := m.Image.Channels, m.Image.Size, m.CLIP.EmbedDim
	text, err := p.EncodeText(context.Background(), []string{"pa chest radiograph, no finding"})
	if err != nil {
		b.Fatal(err)
	}
	dbl := text.doubled()
	x, _ := NewSeededNoise(1).Normal([]int{2, C, S, S})
	z, _ := NewSeededNoise(2).Normal([]int{2, D})
	x32, z32 := toF32(x), toF32(z)
	drop := []float32{1, 0}
	return func() {
		if _, err := p.decoder.run(context.Background(), f32In(x32, 2, C, S, S), i64In([]int64{500, 500}, 2), f32In(z32, 2, D),
			f32In(dbl.Hidden, 2, dbl.L, dbl.W), i64In(dbl.Tokens, 2, dbl.L), f32In(drop, 2), f32In(drop, 2)); err != nil {
			b.Fatal(err)
		}
	}
}

func sampleFunc(b *testing.B, p *Pipeline) func() {
	return func() {
		if _, err := p.Generate(context.Background(), []string{"pa chest radiograph, no finding"}, NewSeededNoise(1), GenerateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecoderStep times one guided decoder evaluation of the tiny bundle.
func BenchmarkDecoderStep(b *testing.B) {
	step := decoderStepFunc(b, openBench(b, tinyBundleDir))
	for b.Loop() {
		step()
	}
}

// BenchmarkSample times a full text-to-image sample of the tiny bundle (prior, decoder, 2 upsamplers).
func BenchmarkSample(b *testing.B) {
	sample := sampleFunc(b, openBench(b, tinyBundleDir))
	for b.Loop() {
		sample()
	}
}

func medianMillis(fn func(), iters int) float64 {
	fn() // warm-up
	d := make([]float64, iters)
	for i := range d {
		t0 := time.Now()
		fn()
		d[i] = float64(time.Since(t0)) / 1e6
	}
	sort.Float64s(d)
	return d[iters/2]
}

// BenchmarkVsTorch compares Go+ONNX Runtime with PyTorch eager on the same exported weights
// ($AUGMENT_BENCH_BUNDLE, default the tiny bundle; PyTorch rebuilds its modules from the graphs),
// same thread count, same machine, in the same run (unclip/train/bench_torch.py), and reports
// torch/go ratios (> 1: Go is faster). $AUGMENT_BENCH_ITERS sets the timed samples (default 20).
func BenchmarkVsTorch(b *testing.B) {
	dir := tinyBundleDir
	if env := os.Getenv("AUGMENT_BENCH_BUNDLE"); env != "" {
		dir = env
	}
	p := openBench(b, dir)
	script := filepath.Join("train", "bench_torch.py")
	if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err != nil {
		b.Skip("PyTorch is not available to /usr/bin/python3 (make train-deps)")
	}
	step, sample := decoderStepFunc(b, p), sampleFunc(b, p)
	iters := 20
	if n, err := strconv.Atoi(os.Getenv("AUGMENT_BENCH_ITERS")); err == nil && n > 0 {
		iters = n
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		goStep := medianMillis(step, iters*5)
		goSample := medianMillis(sample, iters)
		cmd := exec.Command("/usr/bin/python3", script, "--bundle", abs, "--threads", strconv.Itoa(benchThreads()), "--iters", strconv.Itoa(iters))
		cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS="+strconv.Itoa(benchThreads()))
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("bench_torch.py: %v", err)
		}
		var py struct {
			Step   float64 `json:"decoder_step_ms"`
			Sample float64 `json:"sample_ms"`
		}
		if err := json.Unmarshal(out, &py); err != nil {
			b.Fatalf("bench_torch.py output %q: %v", out, err)
		}
		b.ReportMetric(goStep, "go-step-ms")
		b.ReportMetric(py.Step, "torch-step-ms")
		b.ReportMetric(py.Step/goStep, "step-torch/go")
		b.ReportMetric(goSample, "go-sample-ms")
		b.ReportMetric(py.Sample, "torch-sample-ms")
		b.ReportMetric(py.Sample/goSample, "sample-torch/go")
		b.Logf("bundle %s, threads %d: decoder step Go+ORT %.3f ms, PyTorch %.3f ms (ratio torch/go %.2f); full sample Go+ORT %.2f ms, PyTorch %.2f ms (ratio %.2f)",
			p.Bundle.Manifest.Name, benchThreads(), goStep, py.Step, py.Step/goStep, goSample, py.Sample, py.Sample/goSample)
	}
}

// BenchmarkSamplerOverhead reports the share of a full sample's wall time spent outside ONNX
// Runtime (the Go samplers, tokenizer, tensor copies). It uses $AUGMENT_BENCH_BUNDLE, else the
// trained bundles/cxr-tiny when present, else the tiny test bundle (whose graphs are so small
// that the share overstates what a real bundle shows). Target: below 3 % on a real bundle.
func BenchmarkSamplerOverhead(b *testing.B) {
	dir := os.Getenv("AUGMENT_BENCH_BUNDLE")
	if dir == "" {
		dir = filepath.Join("bundles", "cxr-tiny")
		if _, err := os.Stat(filepath.Join(dir, ManifestName)); err != nil {
			dir = tinyBundleDir
		}
	}
	p := openBench(b, dir)
	sample := sampleFunc(b, p)
	sample() // warm-up
	before := p.GraphStats()
	start := time.Now()
	for b.Loop() {
		for range 10 { // ten samples per op: one tiny sample is too short to time
			sample()
		}
	}
	wall := time.Since(start)
	after := p.GraphStats()
	onnx := after.Time - before.Time
	share := 100 * float64(wall-onnx) / float64(wall)
	b.ReportMetric(share, "outside-onnx-%")
	b.ReportMetric(float64(wall-onnx)/float64(after.Runs-before.Runs)/1e3, "outside-onnx-µs/run")
	b.Logf("bundle %s: %d graph runs, %.1f%% of %v outside ONNX Runtime (target < 3%% on a real bundle)",
		filepath.Base(dir), after.Runs-before.Runs, share, wall.Round(time.Millisecond))
}
