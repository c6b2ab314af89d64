package train_test

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medaugment/augment/unclip"
)

const python = "/usr/bin/python3"

// requireKit skips the test when the Python training kit cannot run here.
func requireKit(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s is missing: the training kit needs Debian's python3 (make train-deps)", python)
	}
	out, err := exec.Command(python, "-c", "import torch, onnx, pydicom").CombinedOutput()
	if err != nil {
		t.Skipf("%s lacks torch/onnx/pydicom (run make train-deps): %s", python, lastLine(string(out)))
	}
	if _, err := os.Stat(filepath.Join("..", "..", "..", "shared", "data", "cxr", "train", "labels.csv")); err != nil {
		t.Skip("../shared/data/cxr/train is missing: the quick training run needs the chest X-ray data")
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestQuickTrainingExportsLoadableBundle trains every stage of the kit for a few steps
// (train.py --quick), then loads the exported bundle with the Go runtime, checks its manifest
// against the quick recipe and, when ONNX Runtime is available, generates an image from text.
func TestQuickTrainingExportsLoadableBundle(t *testing.T) {
	requireKit(t)
	out := filepath.Join(t.TempDir(), "bundle")
	// About 40 s on two idle cores; the limit leaves room for the other packages' tests that
	// `go test ./...` runs beside it.
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "train.py", "--quick", "--fresh", "--name", "quick-gotest", "--out", out)
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
	if log, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("train.py --quick: %v\n%s", err, log)
	}
	b, err := unclip.LoadBundle(out)
	if err != nil {
		t.Fatalf("load exported bundle: %v", err)
	}
	m := b.Manifest
	checks := []struct {
		name      string
		got, want any
	}{
		{"format_version", m.FormatVersion, 1},
		{"embed_dim", m.CLIP.EmbedDim, 16},
		{"image size", m.Image.Size, 32},
		{"clip_size", m.Image.CLIPSize, 32},
		{"context_length", m.Tokenizer.ContextLength, 32},
		{"has prior", m.Components.Prior != nil, true},
		{"has ar_prior", m.Components.ARPrior != nil, true},
		{"upsamplers", len(m.Components.Upsamplers), 1},
		{"image_embed_std dims", len(m.CLIP.ImageEmbedStd), 16},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if t.Failed() {
		return
	}
	if _, err := unclip.FindORTLibrary(""); err != nil {
		t.Logf("ONNX Runtime not found (%v): manifest checked, generation skipped", err)
		return
	}
	p, err := unclip.Open(b, unclip.RuntimeOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatalf("open exported bundle: %v", err)
	}
	defer p.Close()
	few := unclip.DiffusionOptions{Steps: 3}
	g, err := p.Generate(ctx, []string{"PA chest radiograph, female, 40-49 years, COVID-19."},
		unclip.NewSeededNoise(1), unclip.GenerateOptions{
			Prior: unclip.PriorOptions{DiffusionOptions: few}, Decoder: few,
			Upsamplers: []unclip.DiffusionOptions{few},
		})
	if err != nil {
		t.Fatalf("generate with the exported bundle: %v", err)
	}
	if want := []int{1, 1, 64, 64}; len(g.Images.Shape) != 4 || g.Images.Shape[2] != want[2] || g.Images.Shape[3] != want[3] {
		t.Fatalf("image shape %v, want %v", g.Images.Shape, want)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range g.Images.Data {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			t.Fatalf("generated image has a non-finite value")
		}
		lo, hi = math.Min(lo, f), math.Max(hi, f)
	}
	if hi-lo < 1e-3 {
		t.Errorf("generated image is constant (%g..%g)", lo, hi)
	}
}

// TestPythonKitUnitTests runs the kit's Python unit tests (test_kit.py): tokenizer against OpenAI's
// reference, Fréchet distance and PRDC on known distributions, captions, augmentation without
// flips, schedule against the reference samplers, AR tables, export and reload of the tiny bundle.
func TestPythonKitUnitTests(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s is missing: the training kit needs Debian's python3 (make train-deps)", python)
	}
	if out, err := exec.Command(python, "-c", "import torch, onnx, pydicom").CombinedOutput(); err != nil {
		t.Skipf("%s lacks torch/onnx/pydicom (run make train-deps): %s", python, lastLine(string(out)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-m", "unittest", "test_kit")
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python -m unittest test_kit: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "OK") {
		t.Fatalf("unexpected unittest output:\n%s", out)
	}
}
