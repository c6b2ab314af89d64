package watermark

import "fmt"

// Gray is a greyscale image of stored values: Width×Height samples, row by row, each in
// [0, 2^BitDepth − 1]. Signed data must be offset to unsigned by the caller.
type Gray struct {
	Width, Height int
	BitDepth      int
	Pix           []uint16
}

// NewGray allocates a black image.
func NewGray(width, height, bitDepth int) *Gray {
	return &Gray{Width: width, Height: height, BitDepth: bitDepth, Pix: make([]uint16, width*height)}
}

// Max is the largest value the bit depth allows.
func (g *Gray) Max() float64 { return float64(int(1)<<g.BitDepth - 1) }

// At returns the value at column x, row y.
func (g *Gray) At(x, y int) uint16 { return g.Pix[y*g.Width+x] }

// Clone returns a deep copy.
func (g *Gray) Clone() *Gray {
	c := *g
	c.Pix = append([]uint16(nil), g.Pix...)
	return &c
}

// Validate checks the shape and the values.
func (g *Gray) Validate() error {
	if g == nil {
		return fmt.Errorf("image is nil")
	}
	if g.BitDepth < 1 || g.BitDepth > 16 {
		return fmt.Errorf("bit depth %d is outside 1..16", g.BitDepth)
	}
	if g.Width <= 0 || g.Height <= 0 {
		return fmt.Errorf("image size %d×%d is empty", g.Width, g.Height)
	}
	if len(g.Pix) != g.Width*g.Height {
		return fmt.Errorf("image has %d values for %d×%d", len(g.Pix), g.Width, g.Height)
	}
	m := uint16(g.Max())
	for i, v := range g.Pix {
		if v > m {
			return fmt.Errorf("value %d at (%d,%d) exceeds %d-bit range", v, i%g.Width, i/g.Width, g.BitDepth)
		}
	}
	return nil
}

// floats returns the values as float32.
func (g *Gray) floats() []float32 {
	f := make([]float32, len(g.Pix))
	for i, v := range g.Pix {
		f[i] = float32(v)
	}
	return f
}
