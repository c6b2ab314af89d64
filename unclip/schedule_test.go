package unclip

import (
	"context"
	"errors"
	"math"
	"testing"
)

func TestCosineScheduleClosedForm(t *testing.T) {
	const T = 1000
	s, err := NewSchedule(DiffusionSpec{Schedule: "cosine", Timesteps: T})
	if err != nil {
		t.Fatal(err)
	}
	f := func(u float64) float64 {
		c := math.Cos((u/T + 0.008) / 1.008 * math.Pi / 2)
		return c * c
	}
	for _, i := range []int{0, 1, 10, 250, 500, 750, 900, 980} {
		want := f(float64(i+1)) / f(0)
		if got := s.AlphasCumprod[i]; math.Abs(got-want) > 1e-12*math.Max(1, want) {
			t.Errorf("ᾱ_%d = %.15g, want f(%d)/f(0) = %.15g", i, got, i+1, want)
		}
	}
	// Values computed independently (Python, math.cos) from the formula.
	if got := s.AlphasCumprod[0]; math.Abs(got-0.999958715775178) > 1e-12 {
		t.Errorf("ᾱ_0 = %.15f, want 0.999958715775178", got)
	}
	if got := s.AlphasCumprod[499]; math.Abs(got-0.49384359044063775) > 1e-12 {
		t.Errorf("ᾱ_499 = %.15f, want 0.49384359044063775", got)
	}
	// The last beta is clipped to 0.999, so ᾱ_{T−1} = ᾱ_{T−2}·0.001 exactly, not f(T)/f(0) = 0.
	if got, want := s.AlphasCumprod[T-1], s.AlphasCumprod[T-2]*(1-0.999); math.Abs(got-want) > 1e-18 {
		t.Errorf("ᾱ_{T-1} = %g, want %g (clipped beta)", got, want)
	}
	for i := 1; i < T; i++ {
		if s.AlphasCumprod[i] >= s.AlphasCumprod[i-1] {
			t.Fatalf("ᾱ not decreasing at %d", i)
		}
	}
}

func TestLinearSchedule(t *testing.T) {
	s, err := NewSchedule(DiffusionSpec{Schedule: "linear", Timesteps: 1000, BetaStart: 1e-4, BetaEnd: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	// ᾱ_i = Π (1 − β_j), β_j = 1e-4 + (0.02 − 1e-4)·j/999.
	want := 1.0
	for j := 0; j <= 10; j++ {
		want *= 1 - (1e-4 + (0.02-1e-4)*float64(j)/999)
	}
	if got := s.AlphasCumprod[10]; math.Abs(got-want) > 1e-15 {
		t.Errorf("ᾱ_10 = %.15g, want %.15g", got, want)
	}
	if got := s.AlphasCumprod[999]; math.Abs(got-4.035e-5) > 1e-6 {
		t.Errorf("ᾱ_999 = %g, want about 4.035e-5 (DDPM's schedule)", got)
	}
	if _, err := NewSchedule(DiffusionSpec{Schedule: "sigmoid", Timesteps: 10}); err == nil {
		t.Error("an unknown schedule must be an error")
	}
}

func TestRespace(t *testing.T) {
	tests := []struct {
		T, n int
		want []int
	}{
		{1000, 4, []int{0, 333, 666, 999}},
		{1000, 1, []int{999}},
		{10, 10, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{1000, 3, []int{0, 500, 999}}, // 499.5 rounds half up
		{100, 7, []int{0, 17, 33, 50, 66, 83, 99}},
	}
	for _, tc := range tests {
		got, err := Respace(tc.T, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("Respace(%d, %d) = %v, want %v", tc.T, tc.n, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("Respace(%d, %d) = %v, want %v", tc.T, tc.n, got, tc.want)
			}
		}
	}
	if _, err := Respace(10, 11); err == nil {
		t.Error("more steps than timesteps must be an error")
	}
}

// gaussianModel is the exact denoiser of data x0 ~ N(mu, sd²) per element, in each parameterisation.
func gaussianModel(s *Schedule, param Parameterization, mu, sd float64) Denoiser {
	return func(_ context.Context, x []float32, t int) ([]float32, error) {
		ab := s.AlphasCumprod[t]
		sa, s1 := math.Sqrt(ab), math.Sqrt(1-ab)
		out := make([]float32, len(x))
		for i, xv := range x {
			xt := float64(xv)
			x0 := mu + sa*sd*sd/(ab*sd*sd+1-ab)*(xt-sa*mu)
			eps := (xt - sa*x0) / s1
			switch param {
			case PredictX0:
				out[i] = float32(x0)
			case PredictEps:
				out[i] = float32(eps)
			case PredictV:
				out[i] = float32(sa*eps - s1*x0)
			}
		}
		return out, nil
	}
}

// countingNoise counts draws and delegates to a seeded source.
type countingNoise struct {
	*SeededNoise
	normals int
}

func (c *countingNoise) Normal(shape []int) ([]float64, error) {
	c.normals++
	return c.SeededNoise.Normal(shape)
}

func meanStd(v []float64) (float64, float64) {
	var m, s float64
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return m, math.Sqrt(s / float64(len(v)))
}

func TestSamplersMatchTheData(t *testing.T) {
	const mu, sd = 0.3, 0.5
	ctx := context.Background()
	for _, spec := range []DiffusionSpec{
		{Schedule: "cosine", Timesteps: 1000},
		{Schedule: "linear", Timesteps: 1000, BetaStart: 1e-4, BetaEnd: 0.02},
	} {
		s, _ := NewSchedule(spec)
		for _, tc := range []struct {
			sampler    SamplerKind
			eta        float64
			steps      int
			wantDraws  int
			param      Parameterization
			stochastic bool
		}{
			{DDIM, 0, 1000, 0, PredictEps, false},
			{DDIM, 1, 500, 499, PredictV, true},
			{DDPM, 0, 1000, 999, PredictX0, true},
		} {
			noise := &countingNoise{SeededNoise: NewSeededNoise(1)}
			shape := []int{4, 5000}
			xT, _ := noise.Normal(shape)
			noise.normals = 0
			x, err := Sample(ctx, SampleConfig{Schedule: s, Parameterization: tc.param, Steps: tc.steps, Sampler: tc.sampler, Eta: tc.eta},
				gaussianModel(s, tc.param, mu, sd), xT, shape, noise)
			if err != nil {
				t.Fatal(err)
			}
			m, d := meanStd(x)
			if math.Abs(m-mu) > 0.02 || math.Abs(d-sd) > 0.02 {
				t.Errorf("%s %s η=%g %d steps: samples have mean %.3f sd %.3f, want %.2f %.2f", spec.Schedule, tc.sampler, tc.eta, tc.steps, m, d, mu, sd)
			}
			if noise.normals != tc.wantDraws {
				t.Errorf("%s η=%g: %d step-noise draws, want %d", tc.sampler, tc.eta, noise.normals, tc.wantDraws)
			}
		}
	}
}

func TestParameterizationsAgree(t *testing.T) {
	s, _ := NewSchedule(DiffusionSpec{Schedule: "cosine", Timesteps: 1000})
	shape := []int{2, 64}
	xT, _ := NewSeededNoise(3).Normal(shape)
	var ref []float64
	for _, p := range []Parameterization{PredictEps, PredictX0, PredictV} {
		x, err := Sample(context.Background(), SampleConfig{Schedule: s, Parameterization: p, Steps: 10, Sampler: DDPM},
			gaussianModel(s, p, -0.2, 0.4), xT, shape, NewSeededNoise(5))
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = x
			continue
		}
		for i := range x {
			if math.Abs(x[i]-ref[i]) > 1e-4 {
				t.Fatalf("%s: x[%d] = %g, eps gives %g", p, i, x[i], ref[i])
			}
		}
	}
}

// TestDDIMInversionReconstructs inverts an image with the exact denoiser of Gaussian data and samples
// it back with η = 0: the reconstruction error is DDIM's first-order discretisation error, so it
// must be small on the full grid and shrink in proportion to the number of steps.
func TestDDIMInversionReconstructs(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		spec  DiffusionSpec
		param Parameterization
		tol   float64 // at 1000 steps
	}{
		{DiffusionSpec{Schedule: "cosine", Timesteps: 1000}, PredictEps, 0.01},
		{DiffusionSpec{Schedule: "cosine", Timesteps: 1000}, PredictV, 0.01},
		{DiffusionSpec{Schedule: "linear", Timesteps: 1000, BetaStart: 1e-4, BetaEnd: 0.02}, PredictX0, 0.015},
	} {
		s, _ := NewSchedule(tc.spec)
		den := gaussianModel(s, tc.param, 0.1, 0.6)
		image, _ := NewSeededNoise(9).Normal([]int{1, 256})
		for i := range image {
			image[i] = 0.1 + 0.6*image[i] // an image from the data distribution
		}
		errs := map[int]float64{}
		for _, steps := range []int{100, 1000} {
			cfg := SampleConfig{Schedule: s, Parameterization: tc.param, Steps: steps, Sampler: DDIM}
			xT, err := Invert(ctx, cfg, den, image)
			if err != nil {
				t.Fatal(err)
			}
			m, d := meanStd(xT)
			if math.Abs(m) > 0.2 || math.Abs(d-1) > 0.2 {
				t.Errorf("inverted latent has mean %.3f sd %.3f, want about N(0,1)", m, d)
			}
			rec, err := Sample(ctx, cfg, den, xT, []int{1, 256}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range rec {
				errs[steps] = math.Max(errs[steps], math.Abs(rec[i]-image[i]))
			}
		}
		if errs[1000] > tc.tol || errs[100]/errs[1000] < 5 {
			t.Errorf("%s %s: reconstruction error %.3g at 100 steps, %.3g at 1000 (want < %.2g and first-order convergence)",
				tc.spec.Schedule, tc.param, errs[100], errs[1000], tc.tol)
		}
	}
}

func TestClipX0AndCancel(t *testing.T) {
	s, _ := NewSchedule(DiffusionSpec{Schedule: "cosine", Timesteps: 100})
	shape := []int{1, 500}
	xT, _ := NewSeededNoise(2).Normal(shape)
	x, err := Sample(context.Background(), SampleConfig{Schedule: s, Parameterization: PredictEps, Steps: 10, ClipX0: true, ClipRange: [2]float64{-0.5, 0.5}},
		gaussianModel(s, PredictEps, 0, 2), xT, shape, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range x {
		if v < -0.5 || v > 0.5 {
			t.Fatalf("value %g outside the clip range", v)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	_, err = Sample(ctx, SampleConfig{Schedule: s, Parameterization: PredictEps, Steps: 10, OnStep: func(step, total int) {
		steps = step
		if step == 3 {
			cancel()
		}
	}}, gaussianModel(s, PredictEps, 0, 1), xT, shape, nil)
	if !errors.Is(err, context.Canceled) || steps != 3 {
		t.Fatalf("cancel after step 3: err %v, steps %d", err, steps)
	}
}

func TestGuidedDenoiser(t *testing.T) {
	doubled := func(_ context.Context, x2 []float32, _ int) ([]float32, error) {
		out := make([]float32, len(x2))
		n := len(x2) / 2
		for i := range out {
			if i < n {
				out[i] = 1 // unconditional
			} else {
				out[i] = 3 // conditional
			}
		}
		return out, nil
	}
	den := GuidedDenoiser(4, doubled, nil)
	out, err := den(context.Background(), []float32{0, 0}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != 9 || out[1] != 9 { // 1 + 4·(3 − 1)
		t.Fatalf("guided output %v, want 9", out)
	}
}

func TestDynamicThreshold(t *testing.T) {
	x := []float64{0, 0, 0, 0, 0, 0.1, 0.2, 0.3, 0.4, 0.5}
	x0 := []float64{-4, -1, 0.5, 2, 3, 0.1, -0.2, 0.3, 0.9, -1.5}
	eps := make([]float64, len(x0))
	const ab = 0.64 // √ᾱ = 0.8, √(1−ᾱ) = 0.6
	dynamicThreshold(x, x0, eps, 2, ab, 0.5, 1)
	// Row 0: median of |x̂_0| = 2 → s = 2: clamp to ±2, divide by 2.
	// Row 1: median of |x̂_0| = 0.3 ≤ 1 → plain clamp to ±1; ε̂ changes only where it clamped.
	want := []float64{-1, -0.5, 0.25, 1, 1, 0.1, -0.2, 0.3, 0.9, -1}
	for i := range want {
		if math.Abs(x0[i]-want[i]) > 1e-12 {
			t.Fatalf("x̂_0 = %v, want %v", x0, want)
		}
	}
	for _, i := range []int{0, 1, 2, 3, 4, 9} {
		if w := (x[i] - 0.8*want[i]) / 0.6; math.Abs(eps[i]-w) > 1e-12 {
			t.Fatalf("ε̂[%d] = %g, want %g", i, eps[i], w)
		}
	}
	if eps[5] != 0 || eps[8] != 0 {
		t.Fatal("ε̂ of unclamped elements in a row with s = r must stay as predicted")
	}
}
