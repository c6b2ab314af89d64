package watermark

import "math"

// Separable resampling with pixel-centre alignment: area averaging when shrinking (each
// output sample is the mean of the input it covers), linear interpolation when enlarging.
// It is written here rather than taken from golang.org/x/image/draw because that works on
// 8/16-bit colour images and would round; the mark needs float samples and both image
// and squared-image averages in one pass.

type tap struct {
	idx int
	w   float32
}

// kernel lists, for every output index, the input indices and weights (summing to 1).
type kernel [][]tap

func newKernel(n, m int) kernel {
	return newKernelAt(n, m, float64(n)/float64(m), 0)
}

// newKernelAt is newKernel with s input samples per output sample, the output grid starting
// off output samples into the input (output i covers [(i+off)·s, (i+1+off)·s)).
func newKernelAt(n, m int, s, off float64) kernel {
	k := make(kernel, m)
	if s > 1 {
		for i := 0; i < m; i++ {
			a, b := (float64(i)+off)*s, (float64(i+1)+off)*s
			var taps []tap
			for j := int(a); j < n && float64(j) < b; j++ {
				lo := math.Max(a, float64(j))
				hi := math.Min(b, float64(j+1))
				if hi > lo {
					taps = append(taps, tap{j, float32((hi - lo) / s)})
				}
			}
			k[i] = taps
		}
		return k
	}
	for i := 0; i < m; i++ {
		x := (float64(i)+off+0.5)*s - 0.5
		x0 := math.Floor(x)
		f := x - x0
		j0, j1 := clampInt(int(x0), 0, n-1), clampInt(int(x0)+1, 0, n-1)
		if j0 == j1 || f == 0 {
			k[i] = []tap{{j0, 1}}
		} else {
			k[i] = []tap{{j0, float32(1 - f)}, {j1, float32(f)}}
		}
	}
	return k
}

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// resampleGray resizes img to dw×dh float samples; with squares it also returns the
// resampled squares of the values (for local variances).
func resampleGray(g *Gray, dw, dh int, squares bool) (out, outSq []float32) {
	return resampleRegion(g, 0, 0, g.Width, g.Height, dw, dh, squares)
}

// resampleRegion is resampleGray on the w×h rectangle at (x0, y0).
func resampleRegion(g *Gray, x0, y0, w, h, dw, dh int, squares bool) (out, outSq []float32) {
	return resampleKernels(g, x0, y0, w, h, newKernel(w, dw), newKernel(h, dh), squares)
}

// resampleKernels resamples the w×h rectangle at (x0, y0) with the given kernels.
func resampleKernels(g *Gray, x0, y0, w, h int, kx, ky kernel, squares bool) (out, outSq []float32) {
	dw, dh := len(kx), len(ky)
	row := make([]float32, w)
	tmp := make([]float32, dw*h)
	var tmpSq []float32
	if squares {
		tmpSq = make([]float32, dw*h)
	}
	for y := 0; y < h; y++ {
		for x, v := range g.Pix[(y0+y)*g.Width+x0 : (y0+y)*g.Width+x0+w] {
			row[x] = float32(v)
		}
		o := tmp[y*dw : (y+1)*dw]
		for x, taps := range kx {
			var s, q float32
			for _, t := range taps {
				v := row[t.idx]
				s += t.w * v
				q += t.w * v * v
			}
			o[x] = s
			if squares {
				tmpSq[y*dw+x] = q
			}
		}
	}
	out = make([]float32, dw*dh)
	vert := func(dst, srcT []float32) {
		for y, taps := range ky {
			o := dst[y*dw : (y+1)*dw]
			for _, t := range taps {
				r := srcT[t.idx*dw : (t.idx+1)*dw]
				for x := range o {
					o[x] += t.w * r[x]
				}
			}
		}
	}
	vert(out, tmp)
	if squares {
		outSq = make([]float32, dw*dh)
		vert(outSq, tmpSq)
	}
	return out, outSq
}

// boxMean returns the mean over a (2r+1)² window of a w×h field, using only the samples
// inside the field at the borders.
func boxMean(src []float32, w, h, r int) []float32 {
	tmp := make([]float32, w*h)
	for y := 0; y < h; y++ {
		row := src[y*w : (y+1)*w]
		for x := 0; x < w; x++ {
			a, b := max(0, x-r), min(w-1, x+r)
			var s float32
			for i := a; i <= b; i++ {
				s += row[i]
			}
			tmp[y*w+x] = s / float32(b-a+1)
		}
	}
	out := make([]float32, w*h)
	for y := 0; y < h; y++ {
		a, b := max(0, y-r), min(h-1, y+r)
		inv := 1 / float32(b-a+1)
		o := out[y*w : (y+1)*w]
		for j := a; j <= b; j++ {
			r := tmp[j*w : (j+1)*w]
			for x := range o {
				o[x] += r[x]
			}
		}
		for x := range o {
			o[x] *= inv
		}
	}
	return out
}
