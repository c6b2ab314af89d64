package watermark

import (
	"cmp"
	"math"
	"slices"

	"gonum.org/v1/gonum/dsp/fourier"
)

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

// foldEnergy is the energy a w×h field folds into one tile of n×n bins at rx, ry samples per
// bin (nearest bin): how much of the field repeats with that period, whatever the tile
// holds. It folds the top and the bottom half separately and sums the products of their
// bins, so that noise, which the two halves do not share, adds nothing on average however
// its samples are correlated (an energy less the noise's expected share would favour
// periods that put fewer samples in a bin). Each fold's row and column means are removed
// first: a host that repeats along one axis only (the lines of an anti-scatter grid, scan
// lines) folds into them, a mark's tile, random in both axes, hardly. It also returns the
// energy's standard deviation were the samples independent noise.
func foldEnergy(f []float32, w, h int, rx, ry float64, n int) (float64, float64) {
	bx := make([]int, w)
	for x := range bx {
		bx[x] = int(math.Floor(float64(x)/rx+0.5)) % n
	}
	var halves [2][]float64
	var counts [2][]float64
	var s2 float64
	for k := range halves {
		sum, cnt := make([]float64, n*n), make([]float64, n*n)
		for y := k * (h / 2); y < (k+1)*(h/2); y++ {
			r := int(math.Floor(float64(y)/ry+0.5)) % n * n
			for x, v := range f[y*w : (y+1)*w] {
				sum[r+bx[x]] += float64(v)
				cnt[r+bx[x]]++
				s2 += float64(v) * float64(v)
			}
		}
		halves[k], counts[k] = centred(sum, cnt, n), cnt
	}
	s2 /= float64(max(1, 2*(h/2)*w))
	var e, v float64
	for i := range halves[0] {
		e += halves[0][i] * halves[1][i]
		if counts[0][i] > 0 && counts[1][i] > 0 {
			v += (s2 / counts[0][i]) * (s2 / counts[1][i])
		}
	}
	return e, math.Sqrt(v)
}

// centred turns bin sums into means and removes the tile's row and column means.
func centred(sum, cnt []float64, n int) []float64 {
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
	for i := range sum {
		sum[i] += all - rows[i/n] - cols[i%n]
	}
	return sum
}

// Crops of stretched images. The full search assumes square cells, so an image that was
// cropped and resized to another aspect (a crop taken for a training set, then brought to
// its input size) is found by neither it nor the aligned reads. The tile's period along
// each axis does not depend on where the crop was taken: the whitened field's
// autocorrelation along an axis peaks at multiples of it. stretchedCropRead takes the
// strongest periods of both axes (and twice and half of each), keeps the pair whose grid
// folds the most energy into the tile when it is clearly not square and clearly beats the
// square grids among them, resamples the image so that the cells are exactly binsPerCell
// samples on both axes, and searches every shift and orientation there, like refine. It is
// one more read of the full search (two grid phases), counted with it.

const (
	cropPeaks      = 2     // strongest periods per axis
	cropMinSNR     = 3.0   // comb score a period needs
	cropMinLag     = 12    // shorter lags carry the whitening's own correlation
	cropReach      = 0.7   // lags used, as a share of the axis
	cropLogStep    = 0.001 // log step of the period search
	cropSquare     = 0.005 // |ln(rx/ry)| under which cells are square
	cropHarmonic   = 0.8   // share of the most energy at which a pair counts as nearly the most
	cropCoarseStep = 0.004 // log step of the energy search for a period the comb misses
	cropFineSpan   = 5     // its refinement, in cropLogStep steps on each side
)

// stretchedCropRead returns the read of img at the non-square cells the periods of field
// (the large geometry's whitened working field) give, and whether there was one.
func stretchedCropRead(img *Gray, field []float32, df *detector) (candidate, bool) {
	g := geomLarge
	fw, fh := workSize(img.Width, img.Height, g)
	_, _, rw, rh := workRegion(fw, fh, g)
	lo, hi := minScale*tileBins, maxScale*tileBins
	options := func(alongX bool) []float64 {
		var out []float64
		for _, p := range newPeriodComb(axisAutocorr(field, rw, rh, alongX)).peaks(lo/2, hi, cropPeaks) {
			for _, q := range []float64{p, 2 * p, p / 2} {
				if q >= lo && q <= hi {
					out = append(out, q)
				}
			}
		}
		return out
	}
	px, py := options(true), options(false)
	// An axis whose comb shows no period (the comb is a weaker test than the fold) gets
	// one from the fold's energy, with the other axis's strongest period.
	switch {
	case len(px) == 0 && len(py) > 0:
		px = []float64{periodByEnergy(field, rw, rh, py[0], true)}
	case len(py) == 0 && len(px) > 0:
		py = []float64{periodByEnergy(field, rw, rh, px[0], false)}
	}
	type pair struct{ rx, ry, e, sd float64 }
	var pairs []pair
	bestE, squareE := math.Inf(-1), 0.0
	for _, x := range px {
		for _, y := range py {
			rx, ry := x/tileBins, y/tileBins
			e, sd := foldEnergy(field, rw, rh, rx, ry, tileBins)
			if math.Abs(math.Log(rx/ry)) < cropSquare {
				squareE = max(squareE, e)
				continue
			}
			pairs = append(pairs, pair{rx, ry, e, sd})
			bestE = max(bestE, e)
		}
	}
	// Twice the period on an axis folds two tiles into one and gathers as much energy as the
	// period itself: of the pairs that gather nearly the most, the smallest cells.
	var p pair
	for _, q := range pairs {
		if q.e >= cropHarmonic*bestE && (p.rx == 0 || q.rx*q.ry < p.rx*p.ry) {
			p = q
		}
	}
	if p.rx == 0 || p.e < aspectGain*squareE+aspectNoise*p.sd {
		return candidate{}, false
	}
	brx, bry := p.rx, p.ry
	kx, ky := float64(img.Width)/float64(fw)*brx, float64(img.Height)/float64(fh)*bry // pixels per sample
	c := readAtPitch(img, g, kx, ky, df)
	c.r = math.Sqrt(brx * bry)
	c.stretch = (kx * float64(fw) / float64(img.Width)) / (ky * float64(fh) / float64(img.Height))
	return c, true
}

// periodByEnergy returns the period along x (alongX) or y, in working samples, at which the
// w×h field folds the most tile energy when the other axis's period is other: a coarse
// search on a half-resolution copy, refined on the field itself.
func periodByEnergy(f []float32, w, h int, other float64, alongX bool) float64 {
	fold := func(f []float32, w, h int, p float64, n int) float64 {
		rx, ry := p/tileBins, other/tileBins
		if !alongX {
			rx, ry = ry, rx
		}
		e, _ := foldEnergy(f, w, h, rx, ry, n)
		return e
	}
	half, hw, hh := halve(f, w, h)
	best, bestE := 0.0, math.Inf(-1)
	for lp := math.Log(minScale * tileBins); lp <= math.Log(maxScale*tileBins); lp += cropCoarseStep {
		if e := fold(half, hw, hh, math.Exp(lp), tileBins/2); e > bestE {
			best, bestE = math.Exp(lp), e
		}
	}
	c := best
	bestE = math.Inf(-1)
	for k := -cropFineSpan; k <= cropFineSpan; k++ {
		p := c * math.Exp(float64(k)*cropLogStep)
		if e := fold(f, w, h, p, tileBins); e > bestE {
			best, bestE = p, e
		}
	}
	return best
}

// axisAutocorr is the autocorrelation of a w×h field along x (alongX) or y, averaged over the
// other axis, for lags 0..n−1 (n the axis length), each lag normalised by its overlap.
func axisAutocorr(f []float32, w, h int, alongX bool) []float64 {
	n, m := w, h
	if !alongX {
		n, m = h, w
	}
	nfft := 1
	for nfft < 2*n {
		nfft *= 2
	}
	fft := fourier.NewFFT(nfft)
	pow := make([]float64, nfft/2+1)
	seq := make([]float64, nfft)
	var coef []complex128
	for j := 0; j < m; j++ {
		clear(seq)
		for i := 0; i < n; i++ {
			if alongX {
				seq[i] = float64(f[j*w+i])
			} else {
				seq[i] = float64(f[i*w+j])
			}
		}
		coef = fft.Coefficients(coef, seq)
		for i, c := range coef {
			pow[i] += real(c)*real(c) + imag(c)*imag(c)
		}
	}
	pc := make([]complex128, len(pow))
	for i, p := range pow {
		pc[i] = complex(p, 0)
	}
	r := fft.Sequence(nil, pc)
	out := make([]float64, n)
	for t := range out {
		out[t] = r[t] / float64(nfft) / float64(m*(n-t))
	}
	return out
}

// periodComb scores a period P for an autocorrelation R: the mean, over the multiples kP
// within reach, of R(kP) − R((k−½)P) (peaks against the troughs between them, so that 2P
// scores nothing and P/2 half), in units of its noise (R's robust spread at lags in reach).
type periodComb struct {
	r     []float64
	sigma float64
}

func newPeriodComb(r []float64) periodComb {
	hi := int(cropReach * float64(len(r)))
	var dev []float64
	for t := cropMinLag; t < hi; t++ {
		dev = append(dev, math.Abs(r[t]))
	}
	if len(dev) == 0 {
		return periodComb{r: r}
	}
	slices.Sort(dev)
	return periodComb{r: r, sigma: 1.4826 * dev[len(dev)/2]}
}

func (c periodComb) at(x float64) float64 {
	i := int(x)
	if i+1 >= len(c.r) {
		return 0
	}
	f := x - float64(i)
	return c.r[i]*(1-f) + c.r[i+1]*f
}

func (c periodComb) score(p float64) float64 {
	if c.sigma == 0 {
		return 0
	}
	reach := cropReach * float64(len(c.r))
	var s float64
	k := 0
	for j := 1; float64(j)*p <= reach; j++ {
		if (float64(j)-0.5)*p < cropMinLag {
			continue
		}
		s += c.at(float64(j)*p) - c.at((float64(j)-0.5)*p)
		k++
	}
	if k == 0 {
		return 0
	}
	return s / float64(k) / (c.sigma * math.Sqrt(2/float64(k)))
}

// peaks returns up to k periods in [lo, hi] where the score has a local maximum of at least
// cropMinSNR, strongest first.
func (c periodComb) peaks(lo, hi float64, k int) []float64 {
	type peak struct{ p, s float64 }
	var found []peak
	prev, cur := math.Inf(-1), c.score(lo)
	for lp := math.Log(lo); lp <= math.Log(hi); lp += cropLogStep {
		next := c.score(math.Exp(lp + cropLogStep))
		if cur >= cropMinSNR && cur >= prev && cur > next {
			found = append(found, peak{math.Exp(lp), cur})
		}
		prev, cur = cur, next
	}
	slices.SortFunc(found, func(a, b peak) int { return cmp.Compare(b.s, a.s) })
	out := make([]float64, 0, k)
	for _, f := range found[:min(k, len(found))] {
		out = append(out, f.p)
	}
	return out
}
