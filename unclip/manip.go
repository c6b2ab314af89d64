package unclip

import (
	"context"
	"fmt"
)

// GenerateOptions configures text-to-image generation.
type GenerateOptions struct {
	// UseARPrior selects the autoregressive prior instead of the diffusion prior.
	UseARPrior bool
	Prior      PriorOptions
	AR         AROptions
	Decoder    DiffusionOptions
	// Upsamplers holds per-stage overrides; Stages is how many stages run (0: all) and
	// NoUpsample stops at the decoder.
	Upsamplers []DiffusionOptions
	Stages     int
	NoUpsample bool
	Progress   Progress
}

// Generation is the result of text-to-image generation.
type Generation struct {
	Text        *TextEncoding
	ImageEmbeds []float32 // [B, D] raw z_i from the prior
	Base        Tensor    // decoder output [B, C, S, S]
	Images      Tensor    // after the upsampler cascade
}

// Generate makes one image per caption: prior (or AR prior), decoder, upsamplers.
func (p *Pipeline) Generate(ctx context.Context, captions []string, noise Noise, o GenerateOptions) (*Generation, error) {
	text, err := p.EncodeText(ctx, captions)
	if err != nil {
		return nil, err
	}
	g := &Generation{Text: text}
	if o.UseARPrior {
		ao := o.AR
		ao.OnStep = o.Progress.stage("ar_prior", ao.OnStep)
		r, err := p.SampleARPrior(ctx, text, noise, ao)
		if err != nil {
			return nil, err
		}
		g.ImageEmbeds = r.Embeds
	} else {
		po := o.Prior
		po.OnStep = o.Progress.stage("prior", po.OnStep)
		r, err := p.SamplePrior(ctx, text, noise, po)
		if err != nil {
			return nil, err
		}
		g.ImageEmbeds = r.Embeds
	}
	do := o.Decoder
	do.OnStep = o.Progress.stage("decoder", do.OnStep)
	if g.Base, err = p.Decode(ctx, g.ImageEmbeds, text, noise, DecodeOptions{DiffusionOptions: do}); err != nil {
		return nil, err
	}
	if g.Images, err = p.cascade(ctx, g.Base, o.NoUpsample, o.Stages, noise, o.Upsamplers, o.Progress); err != nil {
		return nil, err
	}
	return g, nil
}

// VaryOptions configures variations of an image.
type VaryOptions struct {
	// Caption conditions inversion and decoding ("" = none: text dropped).
	Caption string
	// Decoder sets the steps (shared by the inversion and the decoding, so that η = 0 reconstructs)
	// and the guidance of the decoding; its Sampler and Eta are ignored (DDIM with Eta below).
	Decoder DiffusionOptions
	// Eta of the decoding (nil: 0.8). η = 0 reconstructs the image.
	Eta        *float64
	Upsamplers []DiffusionOptions
	Stages     int
	NoUpsample bool
	Progress   Progress
}

// Variation is the result of Vary.
type Variation struct {
	ImageEmbed []float32 // [1, D] z_i of the source
	XT         []float64 // the inverted latent [1, C, S, S]
	Base       Tensor    // [n, C, S, S]
	Images     Tensor    // after the cascade
}

// Vary makes n variations of one image [1, C, H, W] in the bundle's range: encode z_i, DDIM-invert
// the decoder to x_T, then decode (z_i, x_T) n times with DDIM η > 0 (per-step noise only).
// Inversion and decoding share the guidance and the grid, whose top is the schedule's InversionTop
// unless o.Decoder.TopT says otherwise.
func (p *Pipeline) Vary(ctx context.Context, image Tensor, n int, noise Noise, o VaryOptions) (*Variation, error) {
	if image.Batch() != 1 || n < 1 {
		return nil, fmt.Errorf("vary: want one image and n ≥ 1, got batch %d, n %d", image.Batch(), n)
	}
	zi, err := p.EncodeImage(ctx, image)
	if err != nil {
		return nil, err
	}
	var text *TextEncoding
	if o.Caption != "" {
		if text, err = p.EncodeText(ctx, []string{o.Caption}); err != nil {
			return nil, err
		}
	}
	dec := o.Decoder
	if dec.TopT == 0 {
		dec.TopT = p.decoderSched.InversionTop()
	}
	inv := dec
	inv.OnStep = o.Progress.stage("inversion", nil)
	xT, err := p.InvertDecoder(ctx, image, zi, text, inv)
	if err != nil {
		return nil, err
	}
	v := &Variation{ImageEmbed: zi, XT: xT}
	do := dec
	do.Sampler = DDIM
	do.Eta = o.Eta
	if do.Eta == nil {
		do.Eta = Float(0.8)
	}
	do.OnStep = o.Progress.stage("decoder", do.OnStep)
	zs := repeatRows(zi, n)
	xs := make([]float64, 0, n*len(xT))
	for i := 0; i < n; i++ {
		xs = append(xs, xT...)
	}
	if text != nil {
		text = text.rows(make([]int, n))
	}
	if v.Base, err = p.Decode(ctx, zs, text, noise, DecodeOptions{DiffusionOptions: do, XT: xs}); err != nil {
		return nil, err
	}
	if v.Images, err = p.cascade(ctx, v.Base, o.NoUpsample, o.Stages, noise, o.Upsamplers, o.Progress); err != nil {
		return nil, err
	}
	return v, nil
}

func repeatRows(v []float32, n int) []float32 {
	out := make([]float32, 0, n*len(v))
	for i := 0; i < n; i++ {
		out = append(out, v...)
	}
	return out
}

// SequenceOptions configures interpolations and text diffs.
type SequenceOptions struct {
	// InvertSource (TextDiff only) takes x_T from DDIM inversion of the source image instead of a
	// draw, as in the paper's figures: with η = 0 the θ = 0 frame then reconstructs the source.
	InvertSource bool
	Decoder      DiffusionOptions
	Upsamplers   []DiffusionOptions
	Stages       int
	NoUpsample   bool
	Progress     Progress
}

// Sequence is a series of frames decoded from one shared x_T.
type Sequence struct {
	Thetas      []float64
	ImageEmbeds []float32 // [F, D]
	Base        Tensor    // [F, C, S, S]
	Images      Tensor
}

// Interpolate decodes frames between two images [1, C, H, W]: frame j uses slerp(z_1, z_2, j/(F−1))
// with one x_T shared by all frames.
func (p *Pipeline) Interpolate(ctx context.Context, a, b Tensor, frames int, noise Noise, o SequenceOptions) (*Sequence, error) {
	if frames < 2 || a.Batch() != 1 || b.Batch() != 1 {
		return nil, fmt.Errorf("interpolate: want two single images and at least 2 frames")
	}
	za, err := p.EncodeImage(ctx, a)
	if err != nil {
		return nil, err
	}
	zb, err := p.EncodeImage(ctx, b)
	if err != nil {
		return nil, err
	}
	thetas := make([]float64, frames)
	for j := range thetas {
		thetas[j] = float64(j) / float64(frames-1)
	}
	return p.slerpSequence(ctx, za, zb, thetas, nil, noise, o)
}

// TextDiff edits an image [1, C, H, W] towards caption and away from baseline: z_d =
// normalise(z_t − z_t0) at the norm of z_i, frames slerp(z_i, z_d, θ) for each θ (e.g. 0…0.5),
// one x_T shared by all frames.
func (p *Pipeline) TextDiff(ctx context.Context, image Tensor, caption, baseline string, thetas []float64, noise Noise, o SequenceOptions) (*Sequence, error) {
	if image.Batch() != 1 || len(thetas) == 0 {
		return nil, fmt.Errorf("text diff: want one image and at least one θ")
	}
	zi, err := p.EncodeImage(ctx, image)
	if err != nil {
		return nil, err
	}
	text, err := p.EncodeText(ctx, []string{caption, baseline})
	if err != nil {
		return nil, err
	}
	D := text.D
	zd, err := TextDiffDirection(zi, text.Embed[:D], text.Embed[D:])
	if err != nil {
		return nil, err
	}
	var xT []float64
	if o.InvertSource {
		if o.Decoder.TopT == 0 {
			o.Decoder.TopT = p.decoderSched.InversionTop()
		}
		inv := o.Decoder
		inv.OnStep = o.Progress.stage("inversion", nil)
		if xT, err = p.InvertDecoder(ctx, image, zi, nil, inv); err != nil {
			return nil, err
		}
	}
	return p.slerpSequence(ctx, zi, zd, thetas, xT, noise, o)
}

// slerpSequence decodes slerp(za, zb, θ) for each θ from one x_T: x1 when given, else a draw.
func (p *Pipeline) slerpSequence(ctx context.Context, za, zb []float32, thetas []float64, x1 []float64, noise Noise, o SequenceOptions) (*Sequence, error) {
	m := &p.Bundle.Manifest
	F := len(thetas)
	s := &Sequence{Thetas: thetas}
	noise = orNoNoise(noise)
	for _, th := range thetas {
		z, err := Slerp(za, zb, th)
		if err != nil {
			return nil, err
		}
		s.ImageEmbeds = append(s.ImageEmbeds, z...)
	}
	var err error
	if x1 == nil {
		if x1, err = noise.Normal([]int{1, m.Image.Channels, m.Image.Size, m.Image.Size}); err != nil {
			return nil, fmt.Errorf("sequence x_T: %w", err)
		}
	}
	xs := make([]float64, 0, F*len(x1))
	for i := 0; i < F; i++ {
		xs = append(xs, x1...)
	}
	do := o.Decoder
	do.OnStep = o.Progress.stage("decoder", do.OnStep)
	if s.Base, err = p.Decode(ctx, s.ImageEmbeds, nil, noise, DecodeOptions{DiffusionOptions: do, XT: xs}); err != nil {
		return nil, err
	}
	if s.Images, err = p.cascade(ctx, s.Base, o.NoUpsample, o.Stages, noise, o.Upsamplers, o.Progress); err != nil {
		return nil, err
	}
	return s, nil
}

func (p *Pipeline) cascade(ctx context.Context, base Tensor, none bool, stages int, noise Noise, o []DiffusionOptions, progress Progress) (Tensor, error) {
	if none {
		return base, nil
	}
	return p.Cascade(ctx, base, stages, noise, o, progress)
}
