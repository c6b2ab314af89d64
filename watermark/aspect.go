package watermark

import "math"

// Aspect recovery. Training pipelines often resize images to a fixed input size (224×224,
// 512×512) whatever their aspect, which stretches the mark's tile by different factors along
// the two axes. The aligned reads assume the frame is kept with its aspect — the short side
// carries the geometry's cells and the long side as many more as the image's aspect says —
// so a stretched image would be read at the wrong cell size along one axis, and its tile
// would drift across the image. The mark itself says how the image was stretched: its tile
// repeats, so folding the whitened field at the right grid gathers energy into the tile,
// whichever key made it. The detector searches the original aspect (long side over short
// side, 1 to aspectMax) and which axis was the short one by that energy, and reads at the
// best grid when it gathers clearly more than the grids of the image's own aspect. The
// search uses no key, so reading at the grid it picks is still one hypothesis per read (the
// null over keys holds for any grid chosen from the pixels alone).

const (
	aspectMax     = 1.8  // largest original aspect searched (long side over short side)
	aspectCoarse  = 2    // long-side sample counts stepped by the coarse search
	aspectMiddle  = 3    // counts on each side of the coarse peak folded at full resolution
	aspectFine    = 1    // counts on each side of the middle peak resampled exactly
	aspectGain    = 1.25 // how much more tile energy the stretched grid must gather
	aspectNoise   = 4.0  // and by how many deviations of the energy's noise
	aspectOwnSpan = 1    // long-side counts this close to the image's own grid are its own
)

// stretch is a working grid for a stretched image: the axis that was the original image's
// short side (carrying the geometry's cells over its whole extent) and the number of
// samples on the other, for the large geometry (other geometries scale it). The zero value
// is the image's own aspect.
type stretch struct {
	xShort bool
	long   int
}

// aspect is the original image's long side over its short side.
func (s stretch) aspect() float64 { return float64(s.long) / float64(geomLarge.workShort()) }

// grid is the working grid of geometry g on a w×h image read with stretch s.
func (s stretch) grid(w, h int, g geometry) (int, int) {
	if s.long == 0 {
		return workSize(w, h, g)
	}
	short := g.workShort()
	long := max(1, int(math.Round(float64(short)*s.aspect())))
	if s.xShort {
		return short, long
	}
	return long, short
}

// distortion is the ratio of the image's horizontal scale to its vertical one, relative to
// the original (1 for the zero value).
func (s stretch) distortion(w, h int) float64 {
	if s.long == 0 {
		return 1
	}
	a := float64(w) / float64(h)
	if s.xShort {
		return a * s.aspect()
	}
	return a / s.aspect()
}

// readStretch returns the stretch at which the aligned reads read img, and the whitened
// working field of geometry g there (nil for the image's own aspect); field is g's whitened
// field at the image's own aspect, eOwn the most tile energy g's grids (its own cell size and
// the self-check's others) gather at that aspect (foldEnergy). The original image's long side has a whole number of
// working samples (the embedder's grid), so the search runs over those counts, with either
// axis as the original short side: a coarse search folds a half-resolution copy of field at
// every other count; the best, when it gathers clearly more energy than the image's own
// grid, is refined by folding field itself at the counts around it, and the best of those
// and its neighbours are resampled exactly; the best exact grid is kept when it still
// gathers clearly more energy than any grid at the image's own aspect. Energies depend on
// the pixels alone.
func readStretch(img *Gray, g geometry, field []float32, eOwn float64) (stretch, []float32) {
	w, h := img.Width, img.Height
	fw, fh := workSize(w, h, g)
	_, _, rw, rh := workRegion(fw, fh, g)
	ownLong, ownXShort := max(fw, fh), fw < fh
	short := g.workShort()
	isOwn := func(s stretch) bool {
		return (s.xShort == ownXShort || fw == fh) && abs(s.long-ownLong) <= aspectOwnSpan
	}
	ratio := func(s stretch) (float64, float64) {
		dw, dh := s.grid(w, h, g)
		return float64(fw) / float64(dw), float64(fh) / float64(dh)
	}
	half, hw, hh := halve(field, rw, rh)
	e0, sd := foldEnergy(half, hw, hh, 1, 1, tileBins/2)
	var best stretch
	bestE := math.Inf(-1)
	for _, xShort := range []bool{true, false} {
		for l := short; l <= int(aspectMax*float64(short)); l += aspectCoarse {
			s := stretch{xShort, l}
			if isOwn(s) {
				continue
			}
			rx, ry := ratio(s)
			if e, _ := foldEnergy(half, hw, hh, rx, ry, tileBins/2); e > bestE {
				best, bestE = s, e
			}
		}
	}
	if bestE < aspectGain*max(e0, 0)+aspectNoise*sd {
		return stretch{}, nil
	}
	middle := best
	bestE = math.Inf(-1)
	for l := best.long - aspectMiddle; l <= best.long+aspectMiddle; l++ {
		s := stretch{best.xShort, l}
		if l < short || isOwn(s) {
			continue
		}
		rx, ry := ratio(s)
		if e, _ := foldEnergy(field, rw, rh, rx, ry, tileBins); e > bestE {
			middle, bestE = s, e
		}
	}
	_, sd1 := foldEnergy(field, rw, rh, 1, 1, tileBins)
	found, bestE := stretch{}, aspectGain*max(eOwn, 0)+aspectNoise*sd1
	var bestF []float32
	for l := middle.long - aspectFine; l <= middle.long+aspectFine; l++ {
		s := stretch{middle.xShort, l}
		if l < short || isOwn(s) {
			continue
		}
		dw, dh := s.grid(w, h, g)
		f, fw2, fh2 := whitenedGrid(img, g, dw, dh)
		if e, _ := foldEnergy(f, fw2, fh2, 1, 1, tileBins); e > bestE {
			found, bestE, bestF = s, e, f
		}
	}
	return found, bestF
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// foldEnergy is the energy of a w×h field folded into one tile of n×n bins at rx, ry samples
// per bin (nearest bin), less what the samples' own spread puts there: how much of the field
// repeats with that period, whatever the tile holds. The folded tile's row and column means
// are removed first: a host that repeats along one axis only (the lines of an anti-scatter
// grid, scan lines) folds into them, a mark's tile, random in both axes, hardly. It also
// returns the energy's standard deviation were the samples independent noise.
func foldEnergy(f []float32, w, h int, rx, ry float64, n int) (float64, float64) {
	sum := make([]float64, n*n)
	cnt := make([]float64, n*n)
	bx := make([]int, w)
	for x := range bx {
		bx[x] = int(math.Floor(float64(x)/rx+0.5)) % n
	}
	var s2 float64
	for y := 0; y < h; y++ {
		r := int(math.Floor(float64(y)/ry+0.5)) % n * n
		for x, v := range f[y*w : (y+1)*w] {
			sum[r+bx[x]] += float64(v)
			cnt[r+bx[x]]++
			s2 += float64(v) * float64(v)
		}
	}
	s2 /= float64(max(1, w*h))
	rows, cols := make([]float64, n), make([]float64, n)
	var all float64
	for i := range sum {
		if cnt[i] > 0 {
			sum[i] /= cnt[i]
		}
		rows[i/n] += sum[i] / float64(n)
		cols[i%n] += sum[i] / float64(n)
		all += sum[i] / float64(n*n)
	}
	keep := (1 - 1/float64(n)) * (1 - 1/float64(n)) // share of a bin's noise left by the centring
	var e, v float64
	for i := range sum {
		if cnt[i] > 0 {
			m := sum[i] - rows[i/n] - cols[i%n] + all
			q := keep * s2 / cnt[i]
			e += m*m - q
			v += 2 * q * q
		}
	}
	return e, math.Sqrt(v)
}
