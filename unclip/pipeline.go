package unclip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Graph input and output names (docs/bundle.md); read-only.
var (
	clipTextIn   = []string{"tokens"}
	clipTextOut  = []string{"text_embed", "text_hidden"}
	clipImageIn  = []string{"image"}
	clipImageOut = []string{"image_embed"}
	priorIn      = []string{"x_t", "t", "text_embed", "text_hidden", "tokens", "drop_text"}
	arPriorIn    = []string{"tokens", "text_embed", "text_hidden", "tokens_text", "drop_text"}
	arPriorOut   = []string{"logits"}
	decoderIn    = []string{"x_t", "t", "image_embed", "text_hidden", "tokens", "drop_image", "drop_text"}
	upsamplerIn  = []string{"x_t", "t", "low_res"}
	diffusionOut = []string{"out"}
)

// Pipeline is a loaded bundle ready to sample: its tokenizer, schedules and ONNX Runtime
// sessions. It is safe for concurrent use; Close releases the sessions.
type Pipeline struct {
	Bundle    *Bundle
	Tokenizer TextTokenizer

	clipText, clipImage, prior, arPrior, decoder *graph
	upsamplers                                   []*graph
	priorSched, decoderSched                     *Schedule
	upSched                                      []*Schedule
}

// Open loads the bundle's graphs into ONNX Runtime (initialising it once per process).
func Open(b *Bundle, o RuntimeOptions) (p *Pipeline, err error) {
	if b == nil {
		return nil, errors.New("open: no bundle")
	}
	if _, err := InitORT(o.Library); err != nil {
		return nil, err
	}
	m := &b.Manifest
	tok, err := bundleTokenizer(b)
	if err != nil {
		return nil, err
	}
	p = &Pipeline{Bundle: b, Tokenizer: tok}
	loaded := p
	defer func() {
		if err != nil {
			loaded.Close() // the sessions loaded before the failure
		}
	}()
	c := &m.Components
	if p.clipText, err = loadGraph(b, "clip_text", c.CLIPText, clipTextIn, clipTextOut, o); err != nil {
		return nil, err
	}
	if p.clipImage, err = loadGraph(b, "clip_image", c.CLIPImage, clipImageIn, clipImageOut, o); err != nil {
		return nil, err
	}
	if p.decoder, err = loadGraph(b, "decoder", c.Decoder, decoderIn, diffusionOut, o); err != nil {
		return nil, err
	}
	if p.decoderSched, err = NewSchedule(*c.Decoder.Diffusion); err != nil {
		return nil, fmt.Errorf("bundle %s: decoder: %w", m.Name, err)
	}
	if c.Prior != nil {
		if p.prior, err = loadGraph(b, "prior", c.Prior, priorIn, diffusionOut, o); err != nil {
			return nil, err
		}
		if p.priorSched, err = NewSchedule(*c.Prior.Diffusion); err != nil {
			return nil, fmt.Errorf("bundle %s: prior: %w", m.Name, err)
		}
	}
	if c.ARPrior != nil {
		if p.arPrior, err = loadGraph(b, "ar_prior", c.ARPrior, arPriorIn, arPriorOut, o); err != nil {
			return nil, err
		}
	}
	for i := range c.Upsamplers {
		role := fmt.Sprintf("upsamplers[%d]", i)
		g, err := loadGraph(b, role, &c.Upsamplers[i], upsamplerIn, diffusionOut, o)
		if err != nil {
			return nil, err
		}
		p.upsamplers = append(p.upsamplers, g)
		s, err := NewSchedule(*c.Upsamplers[i].Diffusion)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %s: %w", m.Name, role, err)
		}
		p.upSched = append(p.upSched, s)
	}
	return p, nil
}

// bundleTokenizer loads the tokenizer the manifest names.
func bundleTokenizer(b *Bundle) (TextTokenizer, error) {
	t := b.Manifest.Tokenizer
	file := t.Merges
	if t.Kind == "wordpiece" {
		file = t.Vocab
	}
	raw, err := b.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var tok TextTokenizer
	if t.Kind == "wordpiece" {
		tok, err = NewWordPiece(bytes.NewReader(raw), t.ContextLength, t.Lowercase)
	} else {
		tok, err = NewTokenizer(bytes.NewReader(raw), t.NumMerges, t.ContextLength)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle %s: tokenizer %s: %w", b.Manifest.Name, file, err)
	}
	return tok, nil
}

// Close releases the ONNX Runtime sessions.
func (p *Pipeline) Close() {
	if p == nil {
		return
	}
	for _, g := range append([]*graph{p.clipText, p.clipImage, p.prior, p.arPrior, p.decoder}, p.upsamplers...) {
		g.close()
	}
}

// GraphStats is the time spent inside ONNX Runtime since the pipeline was opened.
type GraphStats struct {
	Runs int64
	Time time.Duration
}

// GraphStats reports how many graph evaluations ran and how long ONNX Runtime took for them, so that
// callers can tell graph time from the samplers' own work.
func (p *Pipeline) GraphStats() GraphStats {
	var s GraphStats
	for _, g := range append([]*graph{p.clipText, p.clipImage, p.prior, p.arPrior, p.decoder}, p.upsamplers...) {
		if g != nil {
			s.Runs += g.runs.Load()
			s.Time += time.Duration(g.runNanos.Load())
		}
	}
	return s
}

// HasPrior and HasARPrior report which priors the bundle has.
func (p *Pipeline) HasPrior() bool { return p.prior != nil }

// HasARPrior reports whether the bundle has an autoregressive prior.
func (p *Pipeline) HasARPrior() bool { return p.arPrior != nil }

// NumUpsamplers is the length of the upsampler cascade.
func (p *Pipeline) NumUpsamplers() int { return len(p.upsamplers) }

// TextEncoding is the CLIP text encoder's output for a batch of captions.
type TextEncoding struct {
	B, L, D, W int
	Tokens     []int64   // [B, L]
	Embed      []float32 // [B, D], raw z_t
	Hidden     []float32 // [B, L, W]
}

// rows returns the encoding of the given rows, in that order (rows may repeat).
func (e *TextEncoding) rows(idx []int) *TextEncoding {
	out := &TextEncoding{B: len(idx), L: e.L, D: e.D, W: e.W}
	for _, i := range idx {
		out.Tokens = append(out.Tokens, e.Tokens[i*e.L:(i+1)*e.L]...)
		out.Embed = append(out.Embed, e.Embed[i*e.D:(i+1)*e.D]...)
		out.Hidden = append(out.Hidden, e.Hidden[i*e.L*e.W:(i+1)*e.L*e.W]...)
	}
	return out
}

// doubled is [e; e] (the CFG batch).
func (e *TextEncoding) doubled() *TextEncoding {
	idx := make([]int, 2*e.B)
	for i := range idx {
		idx[i] = i % e.B
	}
	return e.rows(idx)
}

// EncodeText tokenizes captions and runs the CLIP text encoder.
func (p *Pipeline) EncodeText(ctx context.Context, captions []string) (*TextEncoding, error) {
	if len(captions) == 0 {
		return nil, errors.New("encode text: no captions")
	}
	return p.EncodeTokens(ctx, p.Tokenizer.Tokenize(captions), len(captions))
}

// EncodeTokens runs the CLIP text encoder on tokens [B, L].
func (p *Pipeline) EncodeTokens(ctx context.Context, tokens []int64, B int) (*TextEncoding, error) {
	L := p.Tokenizer.ContextLength()
	if B <= 0 || len(tokens) != B*L {
		return nil, fmt.Errorf("encode text: %d tokens for batch %d, want %d", len(tokens), B, B*L)
	}
	outs, err := p.clipText.run(ctx, i64In(tokens, B, L))
	if err != nil {
		return nil, err
	}
	emb, hid := outs[0], outs[1]
	if len(hid.Shape) != 3 || hid.Shape[0] != B || hid.Shape[1] != L || len(emb.Shape) != 2 || emb.Shape[0] != B {
		return nil, fmt.Errorf("encode text: graph returned shapes %v and %v", emb.Shape, hid.Shape)
	}
	return &TextEncoding{B: B, L: L, D: emb.Shape[1], W: hid.Shape[2], Tokens: tokens, Embed: emb.Data, Hidden: hid.Data}, nil
}

// EncodeImage runs the CLIP image encoder on images [B, C, H, W] in the bundle's range; images of
// another size are area-resized to clip_size first. It returns raw z_i, [B, D].
func (p *Pipeline) EncodeImage(ctx context.Context, images Tensor) ([]float32, error) {
	im := p.Bundle.Manifest.Image
	images, err := p.toSize(images, im.CLIPSize)
	if err != nil {
		return nil, fmt.Errorf("encode image: %w", err)
	}
	outs, err := p.clipImage.run(ctx, f32In(images.Data, images.Shape...))
	if err != nil {
		return nil, err
	}
	return outs[0].Data, nil
}

// toSize checks an image batch and area-resizes it to size × size.
func (p *Pipeline) toSize(images Tensor, size int) (Tensor, error) {
	if err := images.check(); err != nil {
		return Tensor{}, err
	}
	c := p.Bundle.Manifest.Image.Channels
	if len(images.Shape) != 4 || images.Shape[1] != c {
		return Tensor{}, fmt.Errorf("image shape %v, want [B, %d, H, W]", images.Shape, c)
	}
	if images.Shape[2] == size && images.Shape[3] == size {
		return images, nil
	}
	return ResizeArea(images, size, size)
}

// Float returns a pointer to v, for optional settings.
func Float(v float64) *float64 { return &v }

// Bool returns a pointer to v, for optional settings.
func Bool(v bool) *bool { return &v }

// DiffusionOptions overrides a diffusion component's sampling defaults (zero values: the bundle's).
type DiffusionOptions struct {
	Steps         int
	GuidanceScale float64 // ignored by upsamplers (no guidance)
	Sampler       SamplerKind
	Eta           *float64
	// ClipX0 overrides the bundle's clip_x0 (clamping x̂_0 to clip_range).
	ClipX0 *bool
	// Threshold in (0, 1) switches to dynamic thresholding at that quantile of |x̂_0| (e.g. 0.995).
	Threshold float64
	// TopT is the largest timestep of the grid (0: T−1); the inversion-based manipulations set it
	// to the schedule's InversionTop.
	TopT   int
	OnStep StepFunc
}

func (o DiffusionOptions) config(spec *DiffusionSpec, s *Schedule) SampleConfig {
	cfg := SampleConfig{
		Schedule: s, Parameterization: Parameterization(spec.Parameterization), Steps: spec.SamplingSteps,
		Sampler: DDIM, Eta: spec.Eta, ClipX0: spec.ClipX0, ClipRange: spec.ClipRange, OnStep: o.OnStep,
	}
	if o.Steps > 0 {
		cfg.Steps = o.Steps
	}
	if o.Sampler != "" {
		cfg.Sampler = o.Sampler
	}
	if o.Eta != nil {
		cfg.Eta = *o.Eta
	}
	if o.ClipX0 != nil {
		cfg.ClipX0 = *o.ClipX0
	}
	cfg.Threshold = o.Threshold
	cfg.TopT = o.TopT
	return cfg
}

func (o DiffusionOptions) guidance(spec *DiffusionSpec) float64 {
	if o.GuidanceScale > 0 {
		return o.GuidanceScale
	}
	if spec.GuidanceScale > 0 {
		return spec.GuidanceScale
	}
	return 1
}

func filled(n int, v float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func timesteps(n, t int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(t)
	}
	return out
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// PriorOptions configures the diffusion prior.
type PriorOptions struct {
	DiffusionOptions
	// Candidates per caption (0: the bundle's, else 2); the one with the largest cosine
	// similarity to z_t is kept.
	Candidates int
}

// PriorResult is the diffusion prior's output.
type PriorResult struct {
	Embeds     []float32 // [B, D] the kept raw z_i
	Candidates []float32 // [B·N, D] every candidate, caption-major
	Scores     []float64 // [B·N] cosine similarity of each candidate to its z_t
	Chosen     []int     // [B] index of the kept candidate per caption
}

// SamplePrior draws z_i for each caption with the diffusion prior.
func (p *Pipeline) SamplePrior(ctx context.Context, text *TextEncoding, noise Noise, o PriorOptions) (*PriorResult, error) {
	if p.prior == nil {
		return nil, fmt.Errorf("bundle %s has no diffusion prior", p.Bundle.Manifest.Name)
	}
	if text == nil {
		return nil, fmt.Errorf("prior: no text encoding")
	}
	noise = orNoNoise(noise)
	comp := p.Bundle.Manifest.Components.Prior
	spec := comp.Diffusion
	n := o.Candidates
	if n <= 0 {
		n = comp.Candidates
	}
	if n <= 0 {
		n = 2
	}
	D := p.Bundle.Manifest.CLIP.EmbedDim
	if text.D != D {
		return nil, fmt.Errorf("prior: text embedding width %d, bundle embed_dim %d", text.D, D)
	}
	idx := make([]int, text.B*n)
	for i := range idx {
		idx[i] = i / n // caption-major
	}
	cond := text.rows(idx)
	B := cond.B
	evalPrior := func(ctx context.Context, x []float32, t int, enc *TextEncoding, drop []float32) ([]float32, error) {
		rows := enc.B
		outs, err := p.prior.run(ctx,
			f32In(x, rows, D), i64In(timesteps(rows, t), rows), f32In(enc.Embed, rows, D),
			f32In(enc.Hidden, rows, enc.L, enc.W), i64In(enc.Tokens, rows, enc.L), f32In(drop, rows))
		if err != nil {
			return nil, err
		}
		return outs[0].Data, nil
	}
	condDen := func(ctx context.Context, x []float32, t int) ([]float32, error) {
		return evalPrior(ctx, x, t, cond, filled(B, 0))
	}
	dbl := cond.doubled()
	drop2 := append(filled(B, 1), filled(B, 0)...)
	doubled := func(ctx context.Context, x2 []float32, t int) ([]float32, error) {
		return evalPrior(ctx, x2, t, dbl, drop2)
	}
	den := GuidedDenoiser(o.guidance(spec), doubled, condDen)
	shape := []int{B, D}
	xT, err := noise.Normal(shape)
	if err != nil {
		return nil, fmt.Errorf("prior x_T: %w", err)
	}
	x, err := Sample(ctx, o.config(spec, p.priorSched), den, xT, shape, noise)
	if err != nil {
		return nil, fmt.Errorf("prior: %w", err)
	}
	clip := p.Bundle.Manifest.CLIP
	res := &PriorResult{Candidates: make([]float32, B*D), Scores: make([]float64, B), Chosen: make([]int, text.B)}
	for r := 0; r < B; r++ {
		for j := 0; j < D; j++ {
			v := x[r*D+j]
			if comp.Clamp > 0 {
				v = math.Max(-comp.Clamp, math.Min(comp.Clamp, v))
			}
			res.Candidates[r*D+j] = float32(v*float64(clip.ImageEmbedStd[j]) + float64(clip.ImageEmbedMean[j]))
		}
		res.Scores[r] = cosine(res.Candidates[r*D:(r+1)*D], cond.Embed[r*D:(r+1)*D])
	}
	for b := 0; b < text.B; b++ {
		best := b * n
		for r := b*n + 1; r < (b+1)*n; r++ {
			if res.Scores[r] > res.Scores[best] {
				best = r
			}
		}
		res.Chosen[b] = best - b*n
		res.Embeds = append(res.Embeds, res.Candidates[best*D:(best+1)*D]...)
	}
	return res, nil
}

func cosine(a, b []float32) float64 {
	var dot float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	na, nb := norm(a), norm(b)
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / (na * nb)
}

// DecodeOptions configures the decoder.
type DecodeOptions struct {
	DiffusionOptions
	// XT is the initial latent [B, C, S, S] (nil: drawn from the noise source).
	XT []float64
}

// Decode samples decoder images [B, C, S, S] for raw image embeddings zi [B, D]. text gives the
// caption conditioning for each row; nil conditions on no caption (text dropped).
func (p *Pipeline) Decode(ctx context.Context, zi []float32, text *TextEncoding, noise Noise, o DecodeOptions) (Tensor, error) {
	m := &p.Bundle.Manifest
	D := m.CLIP.EmbedDim
	noise = orNoNoise(noise)
	if len(zi) == 0 || len(zi)%D != 0 {
		return Tensor{}, fmt.Errorf("decode: %d embedding values are not a multiple of embed_dim %d", len(zi), D)
	}
	B := len(zi) / D
	dropText := float32(0)
	if text == nil {
		empty, err := p.EncodeText(ctx, []string{""})
		if err != nil {
			return Tensor{}, err
		}
		text = empty
		dropText = 1
	}
	if text.B == 1 && B > 1 {
		text = text.rows(make([]int, B))
	}
	if text.B != B {
		return Tensor{}, fmt.Errorf("decode: %d captions for %d embeddings", text.B, B)
	}
	spec := m.Components.Decoder.Diffusion
	C, S := m.Image.Channels, m.Image.Size
	shape := []int{B, C, S, S}
	den := p.decoderDenoiser(zi, text, dropText, o.guidance(spec))
	xT := o.XT
	if xT == nil {
		var err error
		if xT, err = noise.Normal(shape); err != nil {
			return Tensor{}, fmt.Errorf("decoder x_T: %w", err)
		}
	} else if len(xT) != B*C*S*S {
		return Tensor{}, fmt.Errorf("decode: x_T has %d values, want %v", len(xT), shape)
	}
	x, err := Sample(ctx, o.config(spec, p.decoderSched), den, xT, shape, noise)
	if err != nil {
		return Tensor{}, fmt.Errorf("decoder: %w", err)
	}
	return Tensor{Shape: shape, Data: toF32(x)}, nil
}

// InvertDecoder DDIM-inverts the decoder on images [B, C, S, S] (other sizes are area-resized)
// conditioned on zi [B, D] and text (nil: no caption), with the same guidance and grid as Decode
// with the same options (so that Decode with η = 0 from the result reconstructs); it returns x_T
// at the top of the grid. Set o.TopT (e.g. to the schedule's InversionTop) to avoid t = T−1.
func (p *Pipeline) InvertDecoder(ctx context.Context, images Tensor, zi []float32, text *TextEncoding, o DiffusionOptions) ([]float64, error) {
	m := &p.Bundle.Manifest
	images, err := p.toSize(images, m.Image.Size)
	if err != nil {
		return nil, fmt.Errorf("invert: %w", err)
	}
	B, D := images.Shape[0], m.CLIP.EmbedDim
	if len(zi) != B*D {
		return nil, fmt.Errorf("invert: %d embedding values for %d images", len(zi), B)
	}
	dropText := float32(0)
	if text == nil {
		if text, err = p.EncodeText(ctx, []string{""}); err != nil {
			return nil, err
		}
		dropText = 1
	}
	if text.B == 1 && B > 1 {
		text = text.rows(make([]int, B))
	}
	if text.B != B {
		return nil, fmt.Errorf("invert: %d captions for %d images", text.B, B)
	}
	spec := m.Components.Decoder.Diffusion
	den := p.decoderDenoiser(zi, text, dropText, o.guidance(spec))
	cfg := o.config(spec, p.decoderSched)
	return Invert(ctx, cfg, den, toF64(images.Data))
}

// decoderDenoiser is the decoder conditioned on zi [B, D] and text (B rows), guided with scale as
// one doubled batch [uncond; cond] whose unconditional half drops both image and text.
func (p *Pipeline) decoderDenoiser(zi []float32, text *TextEncoding, dropText float32, scale float64) Denoiser {
	m := &p.Bundle.Manifest
	C, S, D := m.Image.Channels, m.Image.Size, m.CLIP.EmbedDim
	B := text.B
	eval := func(ctx context.Context, x []float32, t int, z []float32, enc *TextEncoding, dropI, dropT []float32) ([]float32, error) {
		rows := enc.B
		outs, err := p.decoder.run(ctx,
			f32In(x, rows, C, S, S), i64In(timesteps(rows, t), rows), f32In(z, rows, D),
			f32In(enc.Hidden, rows, enc.L, enc.W), i64In(enc.Tokens, rows, enc.L), f32In(dropI, rows), f32In(dropT, rows))
		if err != nil {
			return nil, err
		}
		return outs[0].Data, nil
	}
	condDen := func(ctx context.Context, x []float32, t int) ([]float32, error) {
		return eval(ctx, x, t, zi, text, filled(B, 0), filled(B, dropText))
	}
	if scale == 1 {
		return condDen
	}
	z2 := append(append([]float32(nil), zi...), zi...)
	dbl := text.doubled()
	dropI2 := append(filled(B, 1), filled(B, 0)...)
	dropT2 := append(filled(B, 1), filled(B, dropText)...)
	doubled := func(ctx context.Context, x2 []float32, t int) ([]float32, error) {
		return eval(ctx, x2, t, z2, dbl, dropI2, dropT2)
	}
	return GuidedDenoiser(scale, doubled, condDen)
}

// Upsample runs upsampler stage k on low-resolution images [B, C, in, in] (no guidance).
func (p *Pipeline) Upsample(ctx context.Context, stage int, low Tensor, noise Noise, o DiffusionOptions) (Tensor, error) {
	if stage < 0 || stage >= len(p.upsamplers) {
		return Tensor{}, fmt.Errorf("upsample: stage %d, the bundle has %d upsamplers", stage, len(p.upsamplers))
	}
	comp := &p.Bundle.Manifest.Components.Upsamplers[stage]
	noise = orNoNoise(noise)
	low, err := p.toSize(low, comp.InSize)
	if err != nil {
		return Tensor{}, fmt.Errorf("upsample stage %d: %w", stage, err)
	}
	B, C, S := low.Shape[0], low.Shape[1], comp.OutSize
	shape := []int{B, C, S, S}
	g := p.upsamplers[stage]
	den := func(ctx context.Context, x []float32, t int) ([]float32, error) {
		outs, err := g.run(ctx, f32In(x, shape...), i64In(timesteps(B, t), B), f32In(low.Data, low.Shape...))
		if err != nil {
			return nil, err
		}
		return outs[0].Data, nil
	}
	xT, err := noise.Normal(shape)
	if err != nil {
		return Tensor{}, fmt.Errorf("upsampler %d x_T: %w", stage, err)
	}
	x, err := Sample(ctx, o.config(comp.Diffusion, p.upSched[stage]), den, xT, shape, noise)
	if err != nil {
		return Tensor{}, fmt.Errorf("upsampler %d: %w", stage, err)
	}
	return Tensor{Shape: shape, Data: toF32(x)}, nil
}

// Cascade runs upsampler stages 0..stages−1 in turn (stages ≤ 0: all).
func (p *Pipeline) Cascade(ctx context.Context, base Tensor, stages int, noise Noise, o []DiffusionOptions, progress Progress) (Tensor, error) {
	if stages <= 0 || stages > len(p.upsamplers) {
		stages = len(p.upsamplers)
	}
	img := base
	for k := 0; k < stages; k++ {
		var so DiffusionOptions
		if k < len(o) {
			so = o[k]
		}
		so.OnStep = progress.stage(fmt.Sprintf("upsampler %d", k), so.OnStep)
		var err error
		if img, err = p.Upsample(ctx, k, img, noise, so); err != nil {
			return Tensor{}, err
		}
	}
	return img, nil
}

// Progress is told about every graph evaluation of a long run: stage names the component
// ("prior", "ar_prior", "decoder", "inversion", "upsampler 0", ...).
type Progress func(stage string, step, total int)

func (pr Progress) stage(name string, inner StepFunc) StepFunc {
	if pr == nil {
		return inner
	}
	return func(step, total int) {
		if inner != nil {
			inner(step, total)
		}
		pr(name, step, total)
	}
}
