package unclip

import (
	"context"
	"fmt"
	"math"
	"sort"
)

// AROptions configures the autoregressive prior.
type AROptions struct {
	Temperature   float64 // 0: 1
	TopP          float64 // 0: 1 (no truncation)
	GuidanceScale float64 // 0: 1 (no guidance)
	OnStep        StepFunc
}

// ARResult is the autoregressive prior's output.
type ARResult struct {
	Embeds    []float32 // [B, D] raw z_i
	DotTokens []int     // [B] the sampled dot bin
	Codes     []int     // [B, K] the sampled codes
}

// DotTokenProbs returns the probabilities of the dot-product bins the AR prior samples from: bins at or
// above the median bin of the histogram, ∝ counts + 1; bins below are 0.
func DotTokenProbs(hist []float64) []float64 {
	var total float64
	for _, c := range hist {
		total += c
	}
	median := 0
	var cum float64
	for i, c := range hist {
		cum += c
		if cum >= total/2 {
			median = i
			break
		}
	}
	p := make([]float64, len(hist))
	var z float64
	for i := median; i < len(hist); i++ {
		p[i] = hist[i] + 1
		z += p[i]
	}
	for i := median; i < len(hist); i++ {
		p[i] /= z
	}
	return p
}

// inverseCDF picks the first index whose cumulative probability reaches u (the last non-zero one
// when rounding never reaches it).
func inverseCDF(p []float64, u float64) int {
	var cum float64
	last := 0
	for i, v := range p {
		if v == 0 {
			continue
		}
		cum += v
		last = i
		if cum >= u {
			return i
		}
	}
	return last
}

// SampleCategorical draws from softmax(logits/temperature) truncated to top-p with the uniform u,
// as documented in docs/bundle.md.
func SampleCategorical(logits []float32, temperature, topP, u float64) int {
	if temperature <= 0 {
		temperature = 1
	}
	if topP <= 0 {
		topP = 1
	}
	mx := math.Inf(-1)
	for _, l := range logits {
		mx = math.Max(mx, float64(l)/temperature)
	}
	p := make([]float64, len(logits))
	var z float64
	for i, l := range logits {
		p[i] = math.Exp(float64(l)/temperature - mx)
		z += p[i]
	}
	order := make([]int, len(p))
	for i := range order {
		p[i] /= z
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return p[order[a]] > p[order[b]] })
	keep := len(order)
	var cum float64
	for k, i := range order {
		cum += p[i]
		if cum >= topP {
			keep = k + 1
			break
		}
	}
	var kz float64
	for _, i := range order[:keep] {
		kz += p[i]
	}
	cum = 0
	for _, i := range order[:keep] {
		cum += p[i] / kz
		if cum >= u {
			return i
		}
	}
	return order[keep-1]
}

// SampleARPrior draws z_i for each caption with the autoregressive prior: the dot-product token from
// the upper half of the training histogram, then the quantised PCA coefficients token by token.
func (p *Pipeline) SampleARPrior(ctx context.Context, text *TextEncoding, noise Noise, o AROptions) (*ARResult, error) {
	if p.arPrior == nil {
		return nil, fmt.Errorf("bundle %s has no AR prior", p.Bundle.Manifest.Name)
	}
	if text == nil {
		return nil, fmt.Errorf("ar prior: no text encoding")
	}
	noise = orNoNoise(noise)
	ar := p.Bundle.Manifest.Components.ARPrior.AR
	B, K, D := text.B, ar.KeptDims, p.Bundle.Manifest.CLIP.EmbedDim
	scale := o.GuidanceScale
	if scale <= 0 {
		scale = 1
	}
	res := &ARResult{DotTokens: make([]int, B), Codes: make([]int, B*K)}
	probs := DotTokenProbs(ar.DotHistogram)
	u, err := noise.Uniform(B)
	if err != nil {
		return nil, fmt.Errorf("ar prior dot token: %w", err)
	}
	seq := make([][]int64, B)
	for b := range seq {
		res.DotTokens[b] = inverseCDF(probs, u[b])
		seq[b] = []int64{int64(ar.Levels + res.DotTokens[b])}
	}
	enc := text
	drop := filled(B, 0)
	if scale != 1 {
		enc = text.doubled()
		drop = append(filled(B, 1), filled(B, 0)...)
	}
	rows := enc.B
	for k := 0; k < K; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		T := k + 1
		toks := make([]int64, 0, rows*T)
		for r := 0; r < rows; r++ {
			toks = append(toks, seq[r%B]...)
		}
		outs, err := p.arPrior.run(ctx, i64In(toks, rows, T), f32In(enc.Embed, rows, enc.D),
			f32In(enc.Hidden, rows, enc.L, enc.W), i64In(enc.Tokens, rows, enc.L), f32In(drop, rows))
		if err != nil {
			return nil, fmt.Errorf("ar prior code %d: %w", k+1, err)
		}
		lg := outs[0]
		if len(lg.Shape) != 3 || lg.Shape[0] != rows || lg.Shape[1] != T || lg.Shape[2] != ar.Levels {
			return nil, fmt.Errorf("ar prior: logits shape %v, want [%d %d %d]", lg.Shape, rows, T, ar.Levels)
		}
		u, err := noise.Uniform(B)
		if err != nil {
			return nil, fmt.Errorf("ar prior code %d: %w", k+1, err)
		}
		V := ar.Levels
		for b := 0; b < B; b++ {
			at := func(r int) []float32 { off := (r*T + k) * V; return lg.Data[off : off+V] }
			logits := at(b)
			if scale != 1 {
				un, co := at(b), at(B+b)
				logits = make([]float32, V)
				for i := range logits {
					logits[i] = float32(float64(un[i]) + scale*(float64(co[i])-float64(un[i])))
				}
			}
			code := SampleCategorical(logits, o.Temperature, o.TopP, u[b])
			res.Codes[b*K+k] = code
			seq[b] = append(seq[b], int64(code))
		}
		if o.OnStep != nil {
			o.OnStep(k+1, K)
		}
	}
	res.Embeds = make([]float32, B*D)
	for b := 0; b < B; b++ {
		z := make([]float64, D)
		for j := range z {
			z[j] = float64(ar.PCAMean[j])
		}
		for k := 0; k < K; k++ {
			c := ar.CoefMin[k] + (float64(res.Codes[b*K+k])+0.5)/float64(ar.Levels)*(ar.CoefMax[k]-ar.CoefMin[k])
			for j := range z {
				z[j] += c * float64(ar.PCAComponents[k][j])
			}
		}
		for j := range z {
			res.Embeds[b*D+j] = float32(z[j])
		}
	}
	return res, nil
}

// Quantize is the AR prior's q(v) = clamp(floor((v − lo)/(hi − lo)·levels), 0, levels−1).
func Quantize(v, lo, hi float64, levels int) int {
	q := int(math.Floor((v - lo) / (hi - lo) * float64(levels)))
	return max(0, min(levels-1, q))
}
