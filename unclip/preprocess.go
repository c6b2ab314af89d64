package unclip

import (
	"fmt"
	"math"
	"sort"
)

// Window is a display window on modality values (after Rescale Slope/Intercept), as DICOM's
// VOI LUT Window Center/Width: values in [Center − Width/2, Center + Width/2] map linearly to [0, 1].
type Window struct {
	Center, Width float64
}

// PreprocessModality turns one greyscale image of modality values (rows × cols, row-major) into the
// model's input [1, C, size, size] as docs/bundle.md says: window (the given one, else the bundle's
// percentiles of the values) to [0, 1] clamped, MONOCHROME1 inverted, padded to a square with 0
// (shorter side, equally on both sides, the odd pixel after), area-resized, mapped to the range.
func (s ImageSpec) PreprocessModality(values []float32, rows, cols int, window *Window, monochrome1 bool) (Tensor, error) {
	if rows <= 0 || cols <= 0 || len(values) != rows*cols {
		return Tensor{}, fmt.Errorf("preprocess: %d values for %d×%d pixels", len(values), rows, cols)
	}
	var lo, hi float64
	if window != nil && window.Width > 0 {
		lo, hi = window.Center-window.Width/2, window.Center+window.Width/2
	} else {
		pc := s.Percentiles
		if len(pc) != 2 {
			pc = []float64{0.5, 99.5}
		}
		sorted := toF64(values)
		sort.Float64s(sorted)
		lo, hi = Percentile(sorted, pc[0]), Percentile(sorted, pc[1])
	}
	if hi <= lo { // a flat image or a zero-width window: as the training kit, a window of width 1
		hi = lo + 1
	}
	unit := make([]float32, len(values))
	for i, v := range values {
		y := math.Max(0, math.Min(1, (float64(v)-lo)/(hi-lo)))
		if monochrome1 {
			y = 1 - y
		}
		unit[i] = float32(y)
	}
	n := max(rows, cols)
	sq := make([]float32, n*n)
	top, left := (n-rows)/2, (n-cols)/2
	for r := 0; r < rows; r++ {
		copy(sq[(top+r)*n+left:(top+r)*n+left+cols], unit[r*cols:(r+1)*cols])
	}
	size := s.Size
	img, err := ResizeArea(Tensor{Shape: []int{1, 1, n, n}, Data: sq}, size, size)
	if err != nil {
		return Tensor{}, err
	}
	lo2, hi2 := s.Range[0], s.Range[1]
	if lo2 == 0 && hi2 == 0 {
		lo2, hi2 = -1, 1
	}
	for i, v := range img.Data {
		img.Data[i] = float32(lo2 + float64(v)*(hi2-lo2))
	}
	c := max(s.Channels, 1)
	if c == 1 {
		return img, nil
	}
	out := Tensor{Shape: []int{1, c, size, size}}
	for k := 0; k < c; k++ {
		out.Data = append(out.Data, img.Data...)
	}
	return out, nil
}

// Percentile is numpy's default (linear) percentile p ∈ [0, 100] of sorted values.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := p / 100 * float64(len(sorted)-1)
	i := int(math.Floor(pos))
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(i)
	return sorted[i] + f*(sorted[i+1]-sorted[i])
}

// ResizeArea resizes images [B, C, H, W] to [B, C, h, w] by area averaging: output pixel i covers
// input rows [floor(i·H/h), ceil((i+1)·H/h)) (and likewise columns) and is their mean — PyTorch's
// adaptive average pooling, so that Go and the training kit agree.
func ResizeArea(images Tensor, h, w int) (Tensor, error) {
	if err := images.check(); err != nil {
		return Tensor{}, err
	}
	if len(images.Shape) != 4 || h <= 0 || w <= 0 {
		return Tensor{}, fmt.Errorf("resize: shape %v to %d×%d", images.Shape, h, w)
	}
	B, C, H, W := images.Shape[0], images.Shape[1], images.Shape[2], images.Shape[3]
	out := Tensor{Shape: []int{B, C, h, w}, Data: make([]float32, B*C*h*w)}
	for bc := 0; bc < B*C; bc++ {
		src := images.Data[bc*H*W : (bc+1)*H*W]
		dst := out.Data[bc*h*w : (bc+1)*h*w]
		for i := 0; i < h; i++ {
			r0, r1 := i*H/h, ((i+1)*H+h-1)/h
			for j := 0; j < w; j++ {
				c0, c1 := j*W/w, ((j+1)*W+w-1)/w
				var sum float64
				for r := r0; r < r1; r++ {
					for c := c0; c < c1; c++ {
						sum += float64(src[r*W+c])
					}
				}
				dst[i*w+j] = float32(sum / float64((r1-r0)*(c1-c0)))
			}
		}
	}
	return out, nil
}
