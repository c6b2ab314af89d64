package unclip

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const goldenDir = "../testdata/golden"

type goldenTensor struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

func (g goldenTensor) f32() []float32 {
	out := make([]float32, len(g.Data))
	for i, v := range g.Data {
		out[i] = float32(v)
	}
	return out
}

func (g goldenTensor) i64() []int64 {
	out := make([]int64, len(g.Data))
	for i, v := range g.Data {
		out[i] = int64(v)
	}
	return out
}

func (g goldenTensor) tensor() Tensor { return Tensor{Shape: g.Shape, Data: g.f32()} }

type goldenCase struct {
	Case      string                  `json:"case"`
	Component string                  `json:"component"`
	Params    json.RawMessage         `json:"params"`
	Inputs    map[string]goldenTensor `json:"inputs"`
	Noise     ReplayNoise             `json:"noise"`
	Outputs   map[string]goldenTensor `json:"outputs"`
	RTol      float64                 `json:"rtol"`
	ATol      float64                 `json:"atol"`
}

// goldenParams holds every parameter name the golden cases use.
type goldenParams struct {
	Captions      []string `json:"captions"`
	Steps         int      `json:"steps"`
	GuidanceScale float64  `json:"guidance_scale"`
	Candidates    int      `json:"candidates"`
	Sampler       string   `json:"sampler"`
	Eta           float64  `json:"eta"`
	ClipX0        *bool    `json:"clip_x0"`
	Threshold     float64  `json:"threshold"`
	Temperature   float64  `json:"temperature"`
	TopP          float64  `json:"top_p"`
	Stages        []struct {
		Steps   int      `json:"steps"`
		Sampler string   `json:"sampler"`
		Eta     *float64 `json:"eta"`
		Clip    *bool    `json:"clip"`
	} `json:"stages"`
	PriorSteps     int       `json:"prior_steps"`
	DecoderSteps   int       `json:"decoder_steps"`
	UpsamplerSteps int       `json:"upsampler_steps"`
	N              int       `json:"n"`
	Caption        string    `json:"caption"`
	Baseline       string    `json:"baseline"`
	Thetas         []float64 `json:"thetas"`
	Frames         int       `json:"frames"`
	Window         []float64 `json:"window"`
	Monochrome1    bool      `json:"monochrome1"`
	InvertSource   bool      `json:"invert_source"`
	TopT           int       `json:"top_t"`
}

func readGolden(t *testing.T, path string) *goldenCase {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenCase
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// The recorded noise values are float32 numbers written with 9 digits: restore them exactly.
	for _, list := range [][]NoiseTensor{g.Noise.Normals, g.Noise.Uniforms} {
		for _, n := range list {
			for i, v := range n.Data {
				n.Data[i] = float64(float32(v))
			}
		}
	}
	return &g
}

// TestParity replays every golden file of unclip/train/golden.py through ONNX Runtime and compares
// each output element with the PyTorch reference: |go − py| ≤ atol + rtol·|py| (rtol 1e-4, atol 1e-5
// as the files state), and checks that every recorded noise draw was consumed.
func TestParity(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if len(files) == 0 {
		t.Skip("no golden files in testdata/golden: run /usr/bin/python3 unclip/train/golden.py")
	}
	p := openTiny(t)
	seen := map[string]bool{}
	for _, path := range files {
		g := readGolden(t, path)
		seen[g.Case] = true
		t.Run(g.Case, func(t *testing.T) {
			var prm goldenParams
			if err := json.Unmarshal(g.Params, &prm); err != nil {
				t.Fatal(err)
			}
			got, err := runGolden(context.Background(), p, g, prm)
			if err != nil {
				t.Fatal(err)
			}
			if n, u := g.Noise.Remaining(); n != 0 || u != 0 {
				t.Errorf("%d normal and %d uniform recorded draws were not consumed", n, u)
			}
			names := make([]string, 0, len(g.Outputs))
			for name := range g.Outputs {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				want := g.Outputs[name]
				have, ok := got[name]
				if !ok {
					t.Errorf("output %s not produced", name)
					continue
				}
				compareOutput(t, name, have, want.Data, g.RTol, g.ATol)
				if testing.Verbose() {
					t.Logf("%s: largest |go − py| %.2g", name, maxAbsDiff(have, want.Data))
				}
			}
		})
	}
	for _, c := range []string{"clip_text", "clip_image", "prior", "ar_prior", "decoder_ddim", "decoder_ddpm",
		"upsampler_chain", "generate", "variation", "interpolation", "text_diff"} {
		if !seen[c] {
			t.Errorf("golden case %s is missing", c)
		}
	}
}

func compareOutput(t *testing.T, name string, have []float64, want []float64, rtol, atol float64) {
	t.Helper()
	if len(have) != len(want) {
		t.Errorf("%s: %d values, want %d", name, len(have), len(want))
		return
	}
	bad, worst, at := 0, 0.0, 0
	for i := range want {
		d := math.Abs(have[i] - want[i])
		if d > atol+rtol*math.Abs(want[i]) {
			bad++
		}
		if r := d / (atol + rtol*math.Abs(want[i])); r > worst {
			worst, at = r, i
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values outside tolerance; worst at %d: go %.8g, python %.8g", name, bad, len(want), at, have[at], want[at])
	}
}

func f64s[T float32 | int | int64](v []T) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func eta(v float64) *float64 { return &v }

func runGolden(ctx context.Context, p *Pipeline, g *goldenCase, prm goldenParams) (map[string][]float64, error) {
	noise := &g.Noise
	in := g.Inputs
	textOf := func() (*TextEncoding, error) {
		tok := in["tokens"]
		return p.EncodeTokens(ctx, tok.i64(), tok.Shape[0])
	}
	switch {
	case g.Case == "clip_text":
		tok := in["tokens"]
		if got := p.Tokenizer.Tokenize(prm.Captions); !equalInts(got, tok.i64()) {
			return nil, fmt.Errorf("Go tokenizer gives %v, Python %v", got, tok.i64())
		}
		e, err := textOf()
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"text_embed": f64s(e.Embed), "text_hidden": f64s(e.Hidden)}, nil
	case strings.HasPrefix(g.Case, "preprocess"):
		v := in["values"]
		var win *Window
		if len(prm.Window) == 2 {
			win = &Window{Center: prm.Window[0], Width: prm.Window[1]}
		}
		img, err := p.Bundle.Manifest.Image.PreprocessModality(v.f32(), v.Shape[0], v.Shape[1], win, prm.Monochrome1)
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"image": f64s(img.Data)}, nil
	case g.Case == "clip_image":
		z, err := p.EncodeImage(ctx, in["image"].tensor())
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"image_embed": f64s(z)}, nil
	case strings.HasPrefix(g.Case, "prior"):
		text, err := textOf()
		if err != nil {
			return nil, err
		}
		r, err := p.SamplePrior(ctx, text, noise, PriorOptions{Candidates: prm.Candidates, DiffusionOptions: DiffusionOptions{
			Steps: prm.Steps, GuidanceScale: prm.GuidanceScale, Sampler: SamplerKind(prm.Sampler), Eta: eta(prm.Eta)}})
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"embeds": f64s(r.Embeds), "candidates": f64s(r.Candidates), "chosen": f64s(r.Chosen)}, nil
	case g.Case == "ar_prior":
		text, err := textOf()
		if err != nil {
			return nil, err
		}
		r, err := p.SampleARPrior(ctx, text, noise, AROptions{Temperature: prm.Temperature, TopP: prm.TopP, GuidanceScale: prm.GuidanceScale})
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"embeds": f64s(r.Embeds), "dot_tokens": f64s(r.DotTokens), "codes": f64s(r.Codes)}, nil
	case g.Case == "decoder_eval":
		text, err := textOf()
		if err != nil {
			return nil, err
		}
		m := p.Bundle.Manifest
		C, S, D := m.Image.Channels, m.Image.Size, m.CLIP.EmbedDim
		outs, err := p.decoder.run(ctx, f32In(in["x_t"].f32(), 2, C, S, S), i64In([]int64{500, 999}, 2), f32In(in["image_embed"].f32(), 2, D),
			f32In(text.Hidden, 2, text.L, text.W), i64In(text.Tokens, 2, text.L), f32In([]float32{0, 1}, 2), f32In([]float32{0, 0}, 2))
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"out": f64s(outs[0].Data)}, nil
	case strings.HasPrefix(g.Case, "decoder"):
		text, err := textOf()
		if err != nil {
			return nil, err
		}
		img, err := p.Decode(ctx, in["image_embed"].f32(), text, noise, DecodeOptions{DiffusionOptions: DiffusionOptions{
			Steps: prm.Steps, GuidanceScale: prm.GuidanceScale, Sampler: SamplerKind(prm.Sampler), Eta: eta(prm.Eta), ClipX0: prm.ClipX0, Threshold: prm.Threshold}})
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"image": f64s(img.Data)}, nil
	case g.Case == "upsampler_chain":
		var opts []DiffusionOptions
		for _, s := range prm.Stages {
			opts = append(opts, DiffusionOptions{Steps: s.Steps, Sampler: SamplerKind(s.Sampler), Eta: s.Eta, ClipX0: s.Clip})
		}
		s0, err := p.Upsample(ctx, 0, in["low_res"].tensor(), noise, opts[0])
		if err != nil {
			return nil, err
		}
		s1, err := p.Upsample(ctx, 1, s0, noise, opts[1])
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"stage0": f64s(s0.Data), "image": f64s(s1.Data)}, nil
	case g.Case == "generate":
		up := DiffusionOptions{Steps: prm.UpsamplerSteps}
		r, err := p.Generate(ctx, prm.Captions, noise, GenerateOptions{
			Prior: PriorOptions{DiffusionOptions: DiffusionOptions{Steps: prm.PriorSteps}}, Decoder: DiffusionOptions{Steps: prm.DecoderSteps},
			Upsamplers: []DiffusionOptions{up, up}})
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"embeds": f64s(r.ImageEmbeds), "base": f64s(r.Base.Data), "images": f64s(r.Images.Data)}, nil
	case g.Case == "trained_generate":
		r, err := p.Generate(ctx, prm.Captions, noise, GenerateOptions{})
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"embeds": f64s(r.ImageEmbeds), "base": f64s(r.Base.Data), "images": f64s(r.Images.Data)}, nil
	case g.Case == "generate_ar":
		r, err := p.Generate(ctx, prm.Captions, noise, GenerateOptions{UseARPrior: true, AR: AROptions{TopP: prm.TopP},
			Decoder: DiffusionOptions{Steps: prm.DecoderSteps}, NoUpsample: true})
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"embeds": f64s(r.ImageEmbeds), "base": f64s(r.Base.Data)}, nil
	case strings.Contains(g.Case, "variation"):
		v, err := p.Vary(ctx, in["image"].tensor(), prm.N, noise, VaryOptions{Caption: prm.Caption, Eta: eta(prm.Eta),
			Decoder: DiffusionOptions{Steps: prm.Steps, ClipX0: prm.ClipX0, GuidanceScale: prm.GuidanceScale, TopT: prm.TopT}, NoUpsample: true})
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"embed": f64s(v.ImageEmbed), "x_T": v.XT, "base": f64s(v.Base.Data)}, nil
	case g.Case == "interpolation":
		s, err := p.Interpolate(ctx, in["a"].tensor(), in["b"].tensor(), prm.Frames, noise, SequenceOptions{
			Decoder: DiffusionOptions{Steps: prm.Steps, ClipX0: prm.ClipX0}, NoUpsample: true})
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"embeds": f64s(s.ImageEmbeds), "base": f64s(s.Base.Data)}, nil
	case strings.HasPrefix(g.Case, "text_diff"):
		s, err := p.TextDiff(ctx, in["image"].tensor(), prm.Caption, prm.Baseline, prm.Thetas, noise, SequenceOptions{InvertSource: prm.InvertSource,
			Decoder: DiffusionOptions{Steps: prm.Steps, Eta: eta(prm.Eta), ClipX0: prm.ClipX0, GuidanceScale: prm.GuidanceScale, TopT: prm.TopT}, NoUpsample: true})
		if err != nil {
			return nil, err
		}
		return map[string][]float64{"embeds": f64s(s.ImageEmbeds), "base": f64s(s.Base.Data)}, nil
	}
	return nil, fmt.Errorf("unknown golden case %q", g.Case)
}

// TestGoldenUpToDate regenerates the golden files with golden.py into a temporary folder and
// requires them to equal the committed ones (a re-exported tiny bundle needs new golden files).
// It needs PyTorch; run with AUGMENT_LONG=1 (make test-long).
func TestGoldenUpToDate(t *testing.T) {
	if os.Getenv("AUGMENT_LONG") == "" {
		t.Skip("set AUGMENT_LONG=1 to regenerate the golden files with PyTorch")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, pydicom").Run(); err != nil {
		t.Skip("PyTorch or pydicom is not available to /usr/bin/python3 (make train-deps)")
	}
	dir := t.TempDir()
	cmd := exec.Command("/usr/bin/python3", filepath.Join("train", "golden.py"), "--out", dir)
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("golden.py: %v\n%s", err, out)
	}
	committed, _ := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	fresh, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(committed) != len(fresh) {
		t.Fatalf("%d committed golden files, golden.py writes %d", len(committed), len(fresh))
	}
	for _, path := range committed {
		want, _ := os.ReadFile(path)
		got, err := os.ReadFile(filepath.Join(dir, filepath.Base(path)))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s is out of date: rerun /usr/bin/python3 unclip/train/golden.py", filepath.Base(path))
		}
	}
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// TestTrainedParity runs the reference samplers on a trained bundle (modules rebuilt from its
// graphs) and requires the Go pipeline to reproduce them with the same noise: text→image with the
// bundle's defaults (guided decoder, upsamplers) and a variation. Needs PyTorch and a trained
// bundle ($AUGMENT_TEST_BUNDLE or bundles/cxr-tiny); run with AUGMENT_LONG=1.
func TestTrainedParity(t *testing.T) {
	if os.Getenv("AUGMENT_LONG") == "" {
		t.Skip("set AUGMENT_LONG=1 for parity on a trained bundle")
	}
	b, p := openTrained(t)
	if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err != nil {
		t.Skip("PyTorch is not available to /usr/bin/python3 (make train-deps)")
	}
	dir := t.TempDir()
	bundleDir, _ := filepath.Abs(b.Dir)
	cmd := exec.Command("/usr/bin/python3", filepath.Join("train", "golden.py"), "--trained", bundleDir, "--out", dir)
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("golden.py --trained: %v\n%s", err, out)
	}
	for _, name := range []string{"trained_generate", "trained_variation"} {
		g := readGolden(t, filepath.Join(dir, name+".json"))
		t.Run(name, func(t *testing.T) {
			var prm goldenParams
			if err := json.Unmarshal(g.Params, &prm); err != nil {
				t.Fatal(err)
			}
			got, err := runGolden(context.Background(), p, g, prm)
			if err != nil {
				t.Fatal(err)
			}
			if n, u := g.Noise.Remaining(); n != 0 || u != 0 {
				t.Errorf("%d normal and %d uniform recorded draws were not consumed", n, u)
			}
			for name, want := range g.Outputs {
				compareOutput(t, name, got[name], want.Data, g.RTol, g.ATol)
				t.Logf("%s: largest |go − py| %.2g", name, maxAbsDiff(got[name], want.Data))
			}
		})
	}
}
