package bundles

import (
	"context"
	"testing"

	"github.com/medaugment/augment/unclip"
)

func TestDefaultBundleLoadsAndVerifies(t *testing.T) {
	b, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if b.Manifest.Name != DefaultName {
		t.Errorf("name %q, want %q", b.Manifest.Name, DefaultName)
	}
	if err := b.Verify(); err != nil {
		t.Fatalf("verify: %v", err)
	}
	cs := b.Manifest.Components
	if cs.CLIPText == nil || cs.CLIPImage == nil || cs.Decoder == nil || cs.Prior == nil || cs.ARPrior == nil || len(cs.Upsamplers) == 0 {
		t.Fatalf("the default bundle lacks a component: %+v", cs)
	}
	if b.Manifest.ModelCard == "" {
		t.Error("no model card")
	} else if data, err := b.ReadFile(b.Manifest.ModelCard); err != nil || len(data) < 200 {
		t.Errorf("model card %s: %d bytes, %v", b.Manifest.ModelCard, len(data), err)
	}
}

func TestDefaultBundleGenerates(t *testing.T) {
	lib, err := unclip.FindORTLibrary("")
	if err != nil {
		t.Skipf("ONNX Runtime library not found (run make setup): %v", err)
	}
	b, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	p, err := unclip.Open(b, unclip.RuntimeOptions{Library: lib, IntraOpThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fast := unclip.DiffusionOptions{Steps: 3}
	g, err := p.Generate(context.Background(), []string{"PA chest radiograph, male, 50-59 years, COVID-19."},
		unclip.NewSeededNoise(1), unclip.GenerateOptions{
			Prior: unclip.PriorOptions{DiffusionOptions: fast}, Decoder: fast, Upsamplers: []unclip.DiffusionOptions{fast},
		})
	if err != nil {
		t.Fatal(err)
	}
	size := b.Manifest.Components.Upsamplers[len(b.Manifest.Components.Upsamplers)-1].OutSize
	if want := []int{1, b.Manifest.Image.Channels, size, size}; len(g.Images.Shape) != 4 || g.Images.Shape[2] != want[2] || g.Images.Shape[3] != want[3] {
		t.Fatalf("image shape %v, want %v", g.Images.Shape, want)
	}
	// A trained radiograph has structure: its values spread over the range, not a constant.
	lo, hi := float32(1e9), float32(-1e9)
	for _, v := range g.Images.Data {
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi-lo < 0.5 {
		t.Errorf("generated image spans only [%g, %g]", lo, hi)
	}
}
