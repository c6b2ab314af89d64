package watermark

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestMedianFilter checks the detector's 5×5 median against sorting every window, on grids
// smaller and larger than the window, with many ties (as on 8-bit images) and without.
func TestMedianFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct{ w, h, levels int }{
		{1, 1, 7}, {3, 2, 7}, {5, 5, 3}, {17, 9, 7}, {40, 33, 1000}, {64, 48, 0},
	} {
		t.Run(fmt.Sprintf("%dx%d", tc.w, tc.h), func(t *testing.T) {
			v := make([]float32, tc.w*tc.h)
			for i := range v {
				if tc.levels > 0 {
					v[i] = float32(rng.IntN(tc.levels))
				} else {
					v[i] = float32(rng.NormFloat64())
				}
			}
			want := make([]float32, len(v))
			buf := make([]float32, 0, 25)
			for y := 0; y < tc.h; y++ {
				for x := 0; x < tc.w; x++ {
					buf = buf[:0]
					for j := -2; j <= 2; j++ {
						for i := -2; i <= 2; i++ {
							buf = append(buf, v[min(tc.h-1, max(0, y+j))*tc.w+min(tc.w-1, max(0, x+i))])
						}
					}
					slices.Sort(buf)
					want[y*tc.w+x] = buf[12]
				}
			}
			if got := medianFilter(v, tc.w, tc.h); !slices.Equal(got, want) {
				t.Errorf("median differs from sorting each window")
			}
		})
	}
}

// TestMedianKeys checks the median's building blocks: the keys order as the floats do and
// map back exactly, sort5 sorts every 0-1 input (which proves a comparator network) and
// every permutation of five distinct keys, and mergeKeys merges.
func TestMedianKeys(t *testing.T) {
	fs := []float32{float32(math.Inf(-1)), -3e38, -2, -1.5, -1e-30, 0, 1e-30, 0.5, 1, 255, 65535, 3e38, float32(math.Inf(1))}
	for i, f := range fs {
		if back := medianValue(medianKey(f)); back != f {
			t.Errorf("key of %g maps back to %g", f, back)
		}
		if i > 0 && medianKey(fs[i-1]) >= medianKey(f) {
			t.Errorf("key of %g is not below key of %g", fs[i-1], f)
		}
	}
	check := func(in [5]int32) {
		a, b, c, d, e := sort5(in[0], in[1], in[2], in[3], in[4])
		want := in[:]
		want = slices.Clone(want)
		slices.Sort(want)
		if got := []int32{a, b, c, d, e}; !slices.Equal(got, want) {
			t.Errorf("sort5(%v) = %v", in, got)
		}
	}
	for m := 0; m < 32; m++ {
		var in [5]int32
		for i := range in {
			in[i] = int32(m >> i & 1)
		}
		check(in)
	}
	var perm func(p []int32, k int)
	perm = func(p []int32, k int) {
		if k == len(p) {
			check([5]int32(p))
			return
		}
		for i := k; i < len(p); i++ {
			p[k], p[i] = p[i], p[k]
			perm(p, k+1)
			p[k], p[i] = p[i], p[k]
		}
	}
	perm([]int32{4, 1, 3, 0, 2}, 0)
	a := []int32{1, 3, 3, 7, 9, math.MaxInt32, math.MaxInt32, math.MaxInt32}
	b := []int32{2, 3, 8, 8, 10, math.MaxInt32, math.MaxInt32, math.MaxInt32}
	dst := make([]int32, 10)
	mergeKeys(dst, a, b)
	if want := []int32{1, 2, 3, 3, 3, 7, 8, 8, 9, 10}; !slices.Equal(dst, want) {
		t.Errorf("mergeKeys = %v, want %v", dst, want)
	}
}

// BenchmarkMedianFilter times the detector's 5×5 median on a large-geometry working grid
// (224×336 samples of a synthetic CT slice) against the 5×5 local mean it replaced, measured in the same run:
//
//	go test ./watermark -run '^$' -bench BenchmarkMedianFilter
func BenchmarkMedianFilter(b *testing.B) {
	const w, h = 224, 336
	ct := syntheticCT(w, h, 3)
	v := make([]float32, w*h)
	for i, p := range ct.Pix {
		v[i] = float32(p)
	}
	timeOf := func(f func()) time.Duration {
		const n = 20
		start := time.Now()
		for range n {
			f()
		}
		return time.Since(start) / n
	}
	for b.Loop() {
		med := timeOf(func() { medianFilter(v, w, h) })
		mean := timeOf(func() { boxMean(v, w, h, 2) })
		b.ReportMetric(float64(med.Microseconds())/1000, "median-ms")
		b.ReportMetric(float64(med)/float64(mean), "x-mean")
	}
}
