package unclip_test

import (
	"context"
	"fmt"
	"log"
	"math"

	"github.com/medaugment/augment/unclip"
)

// Load a bundle: the manifest is parsed and every file's SHA-256 verified.
func ExampleLoadBundle() {
	b, err := unclip.LoadBundle("../testdata/bundles/tiny")
	if err != nil {
		log.Fatal(err)
	}
	m := b.Manifest
	fmt.Println(m.Name, "embed_dim", m.CLIP.EmbedDim, "image", m.Image.Size, "upsamplers", len(m.Components.Upsamplers))
	fmt.Println("decoder:", m.Components.Decoder.Diffusion.Schedule, m.Components.Decoder.Diffusion.Parameterization)
	// Output:
	// tiny embed_dim 8 image 16 upsamplers 2
	// decoder: cosine eps
}

func openTiny() *unclip.Pipeline {
	b, err := unclip.LoadBundle("../testdata/bundles/tiny")
	if err != nil {
		log.Fatal(err)
	}
	p, err := unclip.Open(b, unclip.RuntimeOptions{IntraOpThreads: 1})
	if err != nil {
		log.Fatal(err)
	}
	return p
}

// Encode an image with the bundle's CLIP image encoder.
func ExamplePipeline_EncodeImage() {
	p := openTiny()
	defer p.Close()
	img := unclip.Tensor{Shape: []int{1, 1, 16, 16}, Data: make([]float32, 256)} // mid-grey in [-1, 1]
	z, err := p.EncodeImage(context.Background(), img)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("z_i has", len(z), "values")
	// Output: z_i has 8 values
}

// Make variations of an image: DDIM inversion of the decoder, then decoding with η > 0.
func ExamplePipeline_Vary() {
	p := openTiny()
	defer p.Close()
	src := unclip.Tensor{Shape: []int{1, 1, 16, 16}, Data: make([]float32, 256)}
	v, err := p.Vary(context.Background(), src, 3, unclip.NewSeededNoise(7), unclip.VaryOptions{Eta: unclip.Float(0.8)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("decoder:", v.Base.Shape, "after the upsamplers:", v.Images.Shape)
	// Output: decoder: [3 1 16 16] after the upsamplers: [3 1 64 64]
}

// Generate images from captions: diffusion prior, decoder with guidance, upsampler cascade.
func ExamplePipeline_Generate() {
	p := openTiny()
	defer p.Close()
	g, err := p.Generate(context.Background(), []string{"pa chest radiograph, no finding"}, unclip.NewSeededNoise(1),
		unclip.GenerateOptions{Decoder: unclip.DiffusionOptions{GuidanceScale: 3}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("z_i:", len(g.ImageEmbeds), "base:", g.Base.Shape, "images:", g.Images.Shape)
	// Output: z_i: 8 base: [1 1 16 16] images: [1 1 64 64]
}

// The samplers work with any denoiser: here the exact ε-predictor of data that is always 0.5.
func ExampleSample() {
	sched, err := unclip.NewSchedule(unclip.DiffusionSpec{Schedule: "cosine", Timesteps: 1000})
	if err != nil {
		log.Fatal(err)
	}
	eps := func(_ context.Context, x []float32, t int) ([]float32, error) {
		ab := sched.AlphasCumprod[t]
		out := make([]float32, len(x))
		for i, v := range x { // ε = (x − √ᾱ·x0)/√(1−ᾱ) with x0 = 0.5
			out[i] = float32((float64(v) - math.Sqrt(ab)*0.5) / math.Sqrt(1-ab))
		}
		return out, nil
	}
	noise := unclip.NewSeededNoise(1)
	xT, _ := noise.Normal([]int{1, 4})
	x, err := unclip.Sample(context.Background(), unclip.SampleConfig{
		Schedule: sched, Parameterization: unclip.PredictEps, Steps: 10, Sampler: unclip.DDPM,
	}, eps, xT, []int{1, 4}, noise)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.3f\n", x)
	// Output: [0.500 0.500 0.500 0.500]
}
