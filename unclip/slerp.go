package unclip

import (
	"fmt"
	"math"
)

// Slerp interpolates spherically between a and b at θ ∈ [0, 1]. The angle comes from the dot
// product of the normalised vectors, clamped to [−1, 1] (never an element-wise acos); when the
// vectors are (anti)parallel (sin Ω < 1e-6) it falls back to linear interpolation.
func Slerp(a, b []float32, theta float64) ([]float32, error) {
	if len(a) != len(b) {
		return nil, fmt.Errorf("slerp: lengths %d and %d differ", len(a), len(b))
	}
	na, nb := norm(a), norm(b)
	out := make([]float32, len(a))
	if na == 0 || nb == 0 {
		return lerp(out, a, b, theta), nil
	}
	var dot float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	cos := math.Max(-1, math.Min(1, dot/(na*nb)))
	omega := math.Acos(cos)
	so := math.Sin(omega)
	if so < 1e-6 {
		return lerp(out, a, b, theta), nil
	}
	wa, wb := math.Sin((1-theta)*omega)/so, math.Sin(theta*omega)/so
	for i := range a {
		out[i] = float32(wa*float64(a[i]) + wb*float64(b[i]))
	}
	return out, nil
}

func lerp(out, a, b []float32, theta float64) []float32 {
	for i := range a {
		out[i] = float32((1-theta)*float64(a[i]) + theta*float64(b[i]))
	}
	return out
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// TextDiffDirection is z_d = normalise(z_t − z_t0) rescaled to the norm of zi, the target of a
// text-diff slerp from zi.
func TextDiffDirection(zi, zt, zt0 []float32) ([]float32, error) {
	if len(zt) != len(zt0) || len(zi) != len(zt) {
		return nil, fmt.Errorf("text diff: lengths %d, %d, %d differ", len(zi), len(zt), len(zt0))
	}
	d := make([]float32, len(zt))
	var s float64
	for i := range zt {
		v := float64(zt[i]) - float64(zt0[i])
		s += v * v
	}
	s = math.Sqrt(s)
	if s == 0 {
		return nil, fmt.Errorf("text diff: the two captions have the same embedding")
	}
	scale := norm(zi) / s
	for i := range zt {
		d[i] = float32((float64(zt[i]) - float64(zt0[i])) * scale)
	}
	return d, nil
}
