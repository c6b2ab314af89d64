package unclip

import (
	"context"
	"fmt"
	"math"
	"sort"
)

// Schedule is a diffusion component's training schedule: ᾱ_i for training indices i = 0..T−1.
type Schedule struct {
	AlphasCumprod []float64
}

// CosineAlphaBar is f(u)/f(0) of Nichol & Dhariwal's cosine schedule at continuous time u/T.
func cosineF(u, T float64) float64 {
	const s = 0.008
	c := math.Cos((u/T + s) / (1 + s) * math.Pi / 2)
	return c * c
}

// NewSchedule computes the training schedule of spec (docs/bundle.md).
func NewSchedule(spec DiffusionSpec) (*Schedule, error) {
	T := spec.Timesteps
	if T < 2 {
		return nil, fmt.Errorf("schedule: timesteps %d must be at least 2", T)
	}
	betas := make([]float64, T)
	switch spec.Schedule {
	case "cosine":
		for i := range betas {
			betas[i] = math.Min(1-cosineF(float64(i+1), float64(T))/cosineF(float64(i), float64(T)), 0.999)
		}
	case "linear":
		for i := range betas {
			betas[i] = spec.BetaStart + (spec.BetaEnd-spec.BetaStart)*float64(i)/float64(T-1)
		}
	default:
		return nil, fmt.Errorf("schedule %q is not supported (cosine or linear)", spec.Schedule)
	}
	ab := make([]float64, T)
	acc := 1.0
	for i, b := range betas {
		acc *= 1 - b
		ab[i] = acc
	}
	return &Schedule{AlphasCumprod: ab}, nil
}

// InversionMinAlphaBar bounds the grid of DDIM inversion: the top of a cosine schedule has
// √ᾱ_{T−1} ≈ 5·10⁻⁵, where an ε-model's x̂_0 = (x − √(1−ᾱ)ε̂)/√ᾱ multiplies the model's error by
// 2·10⁴ and an inverted latent cannot be decoded back. At ᾱ = 10⁻² the gain is 10 (index 934 of
// 1000 for the cosine schedule): the trained cxr-tiny decoder then reconstructs its own 64 px images
// at η = 0 with an RMSE of 0.03 in [−1, 1] unguided (0.14 with its default guidance 3).
const InversionMinAlphaBar = 1e-2

// InversionTop is the largest training index with ᾱ ≥ InversionMinAlphaBar: the top of the grid
// the inversion-based manipulations use.
func (s *Schedule) InversionTop() int {
	top := 0
	for i, a := range s.AlphasCumprod {
		if a >= InversionMinAlphaBar {
			top = i
		}
	}
	return top
}

// grid is the respaced timesteps of a run: over [0, TopT] (TopT 0: T−1).
func (cfg SampleConfig) grid() ([]int, error) {
	T := len(cfg.Schedule.AlphasCumprod)
	top := T - 1
	if cfg.TopT > 0 && cfg.TopT < T-1 {
		top = cfg.TopT
	}
	return Respace(top+1, cfg.Steps)
}

// Respace returns the n evenly strided training indices t_k = floor(k·(T−1)/(n−1) + 0.5), k = 0..n−1.
func Respace(T, n int) ([]int, error) {
	if n < 1 || n > T {
		return nil, fmt.Errorf("respace: %d steps must be in 1..%d", n, T)
	}
	if n == 1 {
		return []int{T - 1}, nil
	}
	ts := make([]int, n)
	for k := range ts {
		ts[k] = int(math.Floor(float64(k)*float64(T-1)/float64(n-1) + 0.5))
	}
	return ts, nil
}

// Parameterization says what a diffusion graph predicts.
type Parameterization string

// The supported parameterisations.
const (
	PredictEps Parameterization = "eps"
	PredictX0  Parameterization = "x0"
	PredictV   Parameterization = "v"
)

// SamplerKind selects the reverse process.
type SamplerKind string

// The samplers.
const (
	DDIM SamplerKind = "ddim" // DDIM with η (η = 0 deterministic)
	DDPM SamplerKind = "ddpm" // ancestral sampling with the posterior variance
)

// Denoiser evaluates a diffusion graph on the current state x ([B, ...] flattened) at training
// index t (the same for every row) and returns its raw output (what the parameterisation says).
type Denoiser func(ctx context.Context, x []float32, t int) ([]float32, error)

// StepFunc is told after each graph evaluation: step counts from 1 to total.
type StepFunc func(step, total int)

// SampleConfig configures one diffusion sampling run.
type SampleConfig struct {
	Schedule         *Schedule
	Parameterization Parameterization
	Steps            int
	Sampler          SamplerKind
	Eta              float64
	ClipX0           bool
	ClipRange        [2]float64
	// Threshold, when in (0, 1), replaces the static clamp by dynamic thresholding (Saharia et al.
	// 2022): per batch row, s = max(r, quantile(|x̂_0|, Threshold)) with r = max(|clip_range|), and
	// x̂_0 ← clamp(x̂_0, −s, s)·r/s; ε̂ is recomputed for the rows where s > r.
	Threshold float64
	// TopT, when in 1..T−2, is the largest timestep of the grid instead of T−1 (DDIM inversion).
	TopT   int
	OnStep StepFunc
}

// predict turns a graph output into x̂_0 and ε̂ (float64), clamping x̂_0 when asked.
func predict(param Parameterization, x []float64, out []float32, ab float64, clip bool, lo, hi float64, x0, eps []float64) error {
	sa, s1 := math.Sqrt(ab), math.Sqrt(1-ab)
	for i := range x {
		o := float64(out[i])
		switch param {
		case PredictEps:
			eps[i] = o
			x0[i] = (x[i] - s1*o) / sa
		case PredictX0:
			x0[i] = o
			eps[i] = (x[i] - sa*o) / s1
		case PredictV:
			x0[i] = sa*x[i] - s1*o
			eps[i] = s1*x[i] + sa*o
		default:
			return fmt.Errorf("parameterization %q is not supported", param)
		}
		if clip && (x0[i] < lo || x0[i] > hi) {
			x0[i] = math.Min(math.Max(x0[i], lo), hi)
			eps[i] = (x[i] - sa*x0[i]) / s1
		}
	}
	return nil
}

// Sample runs the reverse process from xT (flattened [B, ...], shape given) and returns x̂_0.
// Per-step noise is drawn from noise as documented (one Normal(shape) per stochastic step).
func Sample(ctx context.Context, cfg SampleConfig, den Denoiser, xT []float64, shape []int, noise Noise) ([]float64, error) {
	if cfg.Schedule == nil {
		return nil, fmt.Errorf("sample: no schedule")
	}
	noise = orNoNoise(noise)
	ab := cfg.Schedule.AlphasCumprod
	ts, err := cfg.grid()
	if err != nil {
		return nil, err
	}
	if err := checkShape(shape, len(xT)); err != nil {
		return nil, err
	}
	n := len(xT)
	x := append([]float64(nil), xT...)
	xin := make([]float32, n)
	x0 := make([]float64, n)
	eps := make([]float64, n)
	for k := len(ts) - 1; k >= 0; k-- {
		t := ts[k]
		out, err := denoiseStep(ctx, den, x, xin, t, "step")
		if err != nil {
			return nil, err
		}
		a := ab[t]
		dynamic := cfg.Threshold > 0 && cfg.Threshold < 1
		if err := predict(cfg.Parameterization, x, out, a, cfg.ClipX0 && !dynamic, cfg.ClipRange[0], cfg.ClipRange[1], x0, eps); err != nil {
			return nil, err
		}
		if dynamic {
			dynamicThreshold(x, x0, eps, shape[0], a, cfg.Threshold, math.Max(math.Abs(cfg.ClipRange[0]), math.Abs(cfg.ClipRange[1])))
		}
		if cfg.OnStep != nil {
			cfg.OnStep(len(ts)-k, len(ts))
		}
		if k == 0 {
			copy(x, x0)
			break
		}
		ap := ab[ts[k-1]]
		switch cfg.Sampler {
		case DDIM, "":
			sigma := cfg.Eta * math.Sqrt((1-ap)/(1-a)) * math.Sqrt(1-a/ap)
			dir := math.Sqrt(math.Max(1-ap-sigma*sigma, 0))
			var z []float64
			if cfg.Eta > 0 {
				if z, err = noise.Normal(shape); err != nil {
					return nil, fmt.Errorf("step t=%d noise: %w", t, err)
				}
			}
			sap := math.Sqrt(ap)
			for i := range x {
				x[i] = sap*x0[i] + dir*eps[i]
				if z != nil {
					x[i] += sigma * z[i]
				}
			}
		case DDPM:
			beta := 1 - a/ap
			c0 := math.Sqrt(ap) * beta / (1 - a)
			ct := math.Sqrt(1-beta) * (1 - ap) / (1 - a)
			sd := math.Sqrt(beta * (1 - ap) / (1 - a))
			z, err := noise.Normal(shape)
			if err != nil {
				return nil, fmt.Errorf("step t=%d noise: %w", t, err)
			}
			for i := range x {
				x[i] = c0*x0[i] + ct*x[i] + sd*z[i]
			}
		default:
			return nil, fmt.Errorf("sampler %q is not supported (ddim or ddpm)", cfg.Sampler)
		}
	}
	return x, nil
}

// Invert runs deterministic DDIM inversion from the clean image x (flattened) over the same
// respaced grid as Sample and returns the latent at t_{N−1}; no clamping, no noise.
func Invert(ctx context.Context, cfg SampleConfig, den Denoiser, image []float64) ([]float64, error) {
	if cfg.Schedule == nil {
		return nil, fmt.Errorf("invert: no schedule")
	}
	ab := cfg.Schedule.AlphasCumprod
	ts, err := cfg.grid()
	if err != nil {
		return nil, err
	}
	n := len(image)
	x := append([]float64(nil), image...)
	xin := make([]float32, n)
	x0 := make([]float64, n)
	eps := make([]float64, n)
	for k := 0; k+1 < len(ts); k++ {
		t := ts[k]
		out, err := denoiseStep(ctx, den, x, xin, t, "inversion step")
		if err != nil {
			return nil, err
		}
		if err := predict(cfg.Parameterization, x, out, ab[t], false, 0, 0, x0, eps); err != nil {
			return nil, err
		}
		an := ab[ts[k+1]]
		sa, s1 := math.Sqrt(an), math.Sqrt(1-an)
		for i := range x {
			x[i] = sa*x0[i] + s1*eps[i]
		}
		if cfg.OnStep != nil {
			cfg.OnStep(k+1, len(ts)-1)
		}
	}
	return x, nil
}

// dynamicThreshold applies dynamic thresholding to x̂_0 row by row (rows = the batch dimension).
func dynamicThreshold(x, x0, eps []float64, rows int, ab, p, r float64) {
	if r <= 0 {
		r = 1
	}
	n := len(x0) / rows
	sa, s1 := math.Sqrt(ab), math.Sqrt(1-ab)
	abs := make([]float64, n)
	for b := 0; b < rows; b++ {
		row := x0[b*n : (b+1)*n]
		for i, v := range row {
			abs[i] = math.Abs(v)
		}
		sort.Float64s(abs)
		s := math.Max(r, Percentile(abs, 100*p))
		if s <= r {
			for i, v := range row { // plain clamp to [−r, r]; nothing beyond it at this quantile
				if v < -r || v > r {
					row[i] = math.Max(-r, math.Min(r, v))
					eps[b*n+i] = (x[b*n+i] - sa*row[i]) / s1
				}
			}
			continue
		}
		for i, v := range row {
			row[i] = math.Max(-s, math.Min(s, v)) * r / s
			eps[b*n+i] = (x[b*n+i] - sa*row[i]) / s1
		}
	}
}

func checkShape(shape []int, n int) error {
	p := 1
	for _, d := range shape {
		p *= d
	}
	if p != n || len(shape) == 0 {
		return fmt.Errorf("shape %v does not hold %d values", shape, n)
	}
	return nil
}

// GuidedDenoiser wraps a batched graph call in classifier-free guidance: run(x2, t) evaluates the
// doubled batch [uncond; cond] (x repeated) and the result is u + s·(c − u). With scale 1 it calls
// cond(x, t) on the conditional batch only.
func GuidedDenoiser(scale float64, doubled func(ctx context.Context, x2 []float32, t int) ([]float32, error), cond Denoiser) Denoiser {
	if scale == 1 {
		return cond
	}
	return func(ctx context.Context, x []float32, t int) ([]float32, error) {
		n := len(x)
		x2 := make([]float32, 2*n)
		copy(x2, x)
		copy(x2[n:], x)
		out, err := doubled(ctx, x2, t)
		if err != nil {
			return nil, err
		}
		if len(out) != 2*n {
			return nil, fmt.Errorf("guided graph returned %d values, want %d", len(out), 2*n)
		}
		res := make([]float32, n)
		for i := range res {
			u, c := float64(out[i]), float64(out[n+i])
			res[i] = float32(u + scale*(c-u))
		}
		return res, nil
	}
}

// denoiseStep evaluates the denoiser on x at training step t (through the float32 buffer
// xin) and checks that it returned one value per input value; what names the step in errors.
func denoiseStep(ctx context.Context, den Denoiser, x []float64, xin []float32, t int, what string) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, v := range x {
		xin[i] = float32(v)
	}
	out, err := den(ctx, xin, t)
	if err != nil {
		return nil, fmt.Errorf("%s t=%d: %w", what, t, err)
	}
	if len(out) != len(x) {
		return nil, fmt.Errorf("%s t=%d: graph returned %d values, want %d", what, t, len(out), len(x))
	}
	return out, nil
}
