package unclip

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
)

const tinyBundleDir = "../testdata/bundles/tiny"

// openTiny loads the tiny random-weight bundle, skipping when ONNX Runtime is missing.
func openTiny(t testing.TB) *Pipeline {
	t.Helper()
	if _, err := FindORTLibrary(""); err != nil {
		t.Skipf("ONNX Runtime not available (%v): run `make setup`", err)
	}
	b, err := LoadBundle(tinyBundleDir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(b, RuntimeOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func finite(t *testing.T, name string, v []float32) {
	t.Helper()
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("%s[%d] = %v", name, i, x)
		}
	}
}

func TestPipelineTiny(t *testing.T) {
	p := openTiny(t)
	ctx := context.Background()
	var stages []string
	g, err := p.Generate(ctx, []string{"a chest x-ray", "no finding"}, NewSeededNoise(1), GenerateOptions{
		Progress: func(stage string, step, total int) {
			if step == total {
				stages = append(stages, stage)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 1, 64, 64}; !equalShape(g.Images.Shape, want) {
		t.Fatalf("images %v, want %v", g.Images.Shape, want)
	}
	if want := []int{2, 1, 16, 16}; !equalShape(g.Base.Shape, want) {
		t.Fatalf("base %v, want %v", g.Base.Shape, want)
	}
	finite(t, "images", g.Images.Data)
	if len(stages) != 4 || stages[0] != "prior" || stages[3] != "upsampler 1" {
		t.Fatalf("progress stages %v", stages)
	}
	// Same seed, same images; another seed, other images.
	g2, err := p.Generate(ctx, []string{"a chest x-ray", "no finding"}, NewSeededNoise(1), GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g3, err := p.Generate(ctx, []string{"a chest x-ray", "no finding"}, NewSeededNoise(2), GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	same, differ := true, false
	for i := range g.Images.Data {
		same = same && g.Images.Data[i] == g2.Images.Data[i]
		differ = differ || g.Images.Data[i] != g3.Images.Data[i]
	}
	if !same || !differ {
		t.Fatalf("determinism: same seed equal %v, other seed differs %v", same, differ)
	}
	ar, err := p.Generate(ctx, []string{"a chest x-ray"}, NewSeededNoise(1), GenerateOptions{UseARPrior: true, NoUpsample: true})
	if err != nil {
		t.Fatal(err)
	}
	if !equalShape(ar.Images.Shape, []int{1, 1, 16, 16}) {
		t.Fatalf("AR prior images %v", ar.Images.Shape)
	}
	// Cancellation stops a run.
	cctx, cancel := context.WithCancel(ctx)
	_, err = p.Generate(cctx, []string{"x"}, NewSeededNoise(1), GenerateOptions{Progress: func(string, int, int) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run returned %v", err)
	}
}

// TestPipelineConcurrent runs requests on one Pipeline from several goroutines.
func TestPipelineConcurrent(t *testing.T) {
	p := openTiny(t)
	ref, err := p.Generate(context.Background(), []string{"left lung"}, NewSeededNoise(7), GenerateOptions{NoUpsample: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := p.Generate(context.Background(), []string{"left lung"}, NewSeededNoise(7), GenerateOptions{NoUpsample: true})
			if err != nil {
				errs <- err
				return
			}
			for j := range g.Images.Data {
				if g.Images.Data[j] != ref.Images.Data[j] {
					errs <- errors.New("concurrent run differs from the sequential one")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
