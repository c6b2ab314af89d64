package unclip

import (
	"fmt"
	"math/rand/v2"
)

// Noise is the source of every random draw of the samplers, consumed in the order documented in
// docs/bundle.md ("Noise order and parity files"). Implementations need not be safe for concurrent
// use: give each concurrent request its own source.
type Noise interface {
	// Normal returns standard-normal values for a tensor of the given shape, C order.
	Normal(shape []int) ([]float64, error)
	// Uniform returns n values uniform in [0, 1).
	Uniform(n int) ([]float64, error)
}

// SeededNoise draws from math/rand/v2's PCG generator seeded by a uint64: the same seed gives the
// same draws on every machine.
type SeededNoise struct {
	rng *rand.Rand
}

// NewSeededNoise returns a noise source seeded by seed.
func NewSeededNoise(seed uint64) *SeededNoise {
	return &SeededNoise{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Normal implements Noise.
func (s *SeededNoise) Normal(shape []int) ([]float64, error) {
	n, err := shapeSize(shape)
	if err != nil {
		return nil, err
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = s.rng.NormFloat64()
	}
	return out, nil
}

// Uniform implements Noise.
func (s *SeededNoise) Uniform(n int) ([]float64, error) {
	if n < 0 {
		return nil, fmt.Errorf("uniform: negative count %d", n)
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = s.rng.Float64()
	}
	return out, nil
}

// NoiseTensor is one recorded draw.
type NoiseTensor struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

// ReplayNoise returns recorded draws in order (the golden files' "noise"); a draw whose shape does
// not match the recording, or one past its end, is an error.
type ReplayNoise struct {
	Normals  []NoiseTensor `json:"normal"`
	Uniforms []NoiseTensor `json:"uniform"`
	ni, ui   int
}

// Normal implements Noise.
func (r *ReplayNoise) Normal(shape []int) ([]float64, error) {
	if r.ni >= len(r.Normals) {
		return nil, fmt.Errorf("replay noise: normal draw %d with shape %v is past the %d recorded", r.ni+1, shape, len(r.Normals))
	}
	rec := r.Normals[r.ni]
	if !equalShape(rec.Shape, shape) {
		return nil, fmt.Errorf("replay noise: normal draw %d has shape %v, the recording %v", r.ni+1, shape, rec.Shape)
	}
	r.ni++
	return append([]float64(nil), rec.Data...), nil
}

// Uniform implements Noise.
func (r *ReplayNoise) Uniform(n int) ([]float64, error) {
	if r.ui >= len(r.Uniforms) {
		return nil, fmt.Errorf("replay noise: uniform draw %d of %d values is past the %d recorded", r.ui+1, n, len(r.Uniforms))
	}
	rec := r.Uniforms[r.ui]
	if len(rec.Data) != n {
		return nil, fmt.Errorf("replay noise: uniform draw %d has %d values, the recording %d", r.ui+1, n, len(rec.Data))
	}
	r.ui++
	return append([]float64(nil), rec.Data...), nil
}

// Remaining reports the recorded draws not consumed yet (a parity run should use them all).
func (r *ReplayNoise) Remaining() (normals, uniforms int) {
	return len(r.Normals) - r.ni, len(r.Uniforms) - r.ui
}

func shapeSize(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		n *= d
	}
	return n, nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// noNoise stands in for a nil Noise: a sampler that needs a draw reports it instead of panicking.
type noNoise struct{}

func (noNoise) Normal(shape []int) ([]float64, error) {
	return nil, fmt.Errorf("no noise source given (a draw of shape %v is needed)", shape)
}

func (noNoise) Uniform(n int) ([]float64, error) {
	return nil, fmt.Errorf("no noise source given (%d uniform values are needed)", n)
}

func orNoNoise(n Noise) Noise {
	if n == nil {
		return noNoise{}
	}
	return n
}
