package watermark

import (
	"fmt"
	"math"
)

// Embedding limits.
const (
	MinSide = 64
	MaxSide = 4096
)

// ssimBudget is the mean SSIM loss the perceptual model lets the mark cause at the default
// SSIM floor (scaled with 1 − the floor for other floors). The model overestimates the loss
// by about two on small radiographs, so the budget aims below the floor of 0.99 and the SSIM
// measured on the result (the floor) sets the final strength.
const ssimBudget = 0.022

// DefaultPSNR is the lowest peak signal-to-noise ratio, in the image's display range, that a
// marked image may have; the mark's strength aims psnrHeadroom dB above it, and a result
// that still falls below it (quantisation, the closed loop) is weakened until it does not.
const DefaultPSNR = 45.05

// psnrHeadroom is how far above the PSNR floor the strength aims.
const psnrHeadroom = 0.15

// Options tune embedding. The zero value means the defaults.
type Options struct {
	// PSNR is the lowest PSNR in dB of the marked image against the original, as displayed
	// (DefaultPSNR when 0). Lower is stronger and more robust; 45 dB is the invisibility
	// floor this package is tested at. The SSIM floor may make the mark weaker still.
	PSNR float64
	// SSIM is the lowest mean SSIM of the marked image against the original, as displayed
	// (DefaultSSIM when 0). Lower is stronger and more robust; 0.99 is the invisibility
	// floor this package is tested at. On smooth images this floor binds before the PSNR
	// floor, so a stronger mark needs both lowered.
	SSIM float64
}

// floors are the invisibility floors one embedding holds: PSNR in dB and mean SSIM, both
// in the image's display range.
type floors struct{ psnr, ssim float64 }

// floors resolves the options' floors, defaults filled in, and checks their ranges.
func (o Options) floors() (floors, error) {
	o = o.WithDefaults()
	f := floors{psnr: o.PSNR, ssim: o.SSIM}
	if f.psnr < 20 || f.psnr > 90 {
		return f, fmt.Errorf("PSNR %.1f dB is outside 20..90", f.psnr)
	}
	if f.ssim < 0.5 || f.ssim >= 1 {
		return f, fmt.Errorf("SSIM %g is outside 0.5..1 (1 excluded)", f.ssim)
	}
	return f, nil
}

// WithDefaults returns o with the default floors where it sets none: the floors a mark made
// with o is held at.
func (o Options) WithDefaults() Options {
	if o.PSNR == 0 {
		o.PSNR = DefaultPSNR
	}
	if o.SSIM == 0 {
		o.SSIM = DefaultSSIM
	}
	return o
}

// Validate checks that the options' floors are in range (PSNR 20..90 dB, SSIM 0.5..1).
func (o Options) Validate() error {
	_, err := o.floors()
	return err
}

// budget is the perceptual model's SSIM loss budget for the floor.
func (f floors) budget() float64 { return ssimBudget * (1 - f.ssim) / (1 - DefaultSSIM) }

// Embed returns a marked copy of img carrying p under key, at the default strength.
func Embed(img *Gray, key Key, p Payload) (*Gray, error) {
	return EmbedWith(img, key, p, Options{})
}

// EmbedWith is Embed with options.
func EmbedWith(img *Gray, key Key, p Payload, o Options) (*Gray, error) {
	out, _, err := embedChecked(img, key, p, o, false)
	return out, err
}

// EmbedVerified is EmbedWith that also says whether the detector reads the payload back
// from the result (on images above 1024 px, where Embed does not check itself, it runs the
// detector once more). A false means the mark is there but too weak on this image to
// identify it by its pixels alone; see docs/watermark.md.
func EmbedVerified(img *Gray, key Key, p Payload, o Options) (*Gray, bool, error) {
	return embedChecked(img, key, p, o, true)
}

func embedChecked(img *Gray, key Key, p Payload, o Options, mustKnow bool) (*Gray, bool, error) {
	if err := img.Validate(); err != nil {
		return nil, false, fmt.Errorf("embed: %w", err)
	}
	if img.BitDepth < 8 {
		return nil, false, fmt.Errorf("embed: bit depth %d is below 8", img.BitDepth)
	}
	if img.Width < MinSide || img.Height < MinSide || img.Width > MaxSide || img.Height > MaxSide {
		return nil, false, fmt.Errorf("embed: image %d×%d is outside %d..%d px a side", img.Width, img.Height, MinSide, MaxSide)
	}
	fl, err := o.floors()
	if err != nil {
		return nil, false, fmt.Errorf("embed: %w", err)
	}
	lay, err := newLayout(key)
	if err != nil {
		return nil, false, fmt.Errorf("embed: %w", err)
	}
	cd, err := newCodec()
	if err != nil {
		return nil, false, fmt.Errorf("embed: %w", err)
	}
	bits, err := cd.encode(p)
	if err != nil {
		return nil, false, fmt.Errorf("embed: %w", err)
	}
	// Self-check: on images up to selfCheckSide, the result is verified with the detector
	// and, when the payload does not come back (the host image's texture at the cells' scale
	// outweighs a mark this faint) or its pilot is weak, embedded again with cells of another
	// size, which the detector finds as another scale; the first that verifies strongly is
	// kept, else the verified one with the strongest pilot, else the strongest pilot.
	// Above selfCheckSide, EmbedVerified (which checks anyway) tries the other cell sizes
	// only when the payload does not come back, and keeps any result that verifies.
	w, h := img.Width, img.Height
	base := geometryFor(w, h)
	small := min(w, h) <= selfCheckSide
	geoms := []geometry{base}
	if small {
		geoms = base.alternatives()
	}
	var best *Gray
	bestScore, bestOK := -1.0, false
	// How much of the mark the coarse layer gets depends on what a quarter-size copy of the
	// result would keep of it (chooseCoarse); it is chosen at the first cell size and kept
	// for the others, whose layer is the same pattern over the same host.
	share, chosen := coarseShare, !usesCoarse(w, h)
	for k := 0; k < len(geoms); k++ {
		out, err := embedAt(img, lay, bits, geoms[k], fl, share)
		if err != nil {
			return nil, false, err
		}
		if !chosen {
			if out, share, err = chooseCoarse(img, out, lay, bits, geoms[k], fl); err != nil {
				return nil, false, err
			}
			chosen = true
		}
		if !small && !mustKnow {
			return out, false, nil
		}
		// The aligned reads first: the result is read where the mark was put, and a payload
		// they read is one Detect reads (detectWith). Where they do not read it, Detect,
		// whose search may.
		r, err := detectWith(out, key, false)
		if err == nil && (r.Payload == nil || *r.Payload != p) {
			r, err = Detect(out, key)
		}
		if err != nil {
			return nil, false, fmt.Errorf("embed: self-check: %w", err)
		}
		ok := r.Payload != nil && *r.Payload == p
		if ok && (r.Score >= selfCheckStrong || !small) {
			return out, ok, nil
		}
		if (ok && !bestOK) || (ok == bestOK && r.Score > bestScore) {
			best, bestScore, bestOK = out, r.Score, ok
		}
		if !small && k == 0 {
			geoms = base.alternatives() // the base first, as tried
		}
	}
	return best, bestOK, nil
}

// selfCheckSide is the largest short side on which Embed verifies its result (above, the
// cells are wide and the check would cost more than the embedding). A result that verifies
// with a pilot score under selfCheckStrong is kept only if no other cell size verifies with
// a higher one: on the 103-image suite that raised every attacked payload row by 1 to 3.
const (
	selfCheckSide   = 1024
	selfCheckStrong = 9.5
)

// embedAt marks img with the coded bits at geometry geom (cells on the short side), with
// share of the mark's energy in the coarse layer where the image carries one (0: none).
func embedAt(img *Gray, lay *layout, bits []byte, geom geometry, fl floors, share float64) (*Gray, error) {
	w, h := img.Width, img.Height
	k := float64(min(w, h)) / float64(geom.workShort()) // image pixels per working sample
	ww, wh := workSize(w, h, geom)
	mean, sq := resampleGray(img, ww, wh, true)
	m1, m2 := boxMean(mean, ww, wh, 1), boxMean(sq, ww, wh, 1)
	sigma := make([]float32, len(m1))
	for i := range sigma {
		sigma[i] = float32(math.Sqrt(math.Max(0, float64(m2[i]-m1[i]*m1[i]))))
	}
	// Perceptual strength from SSIM. A mark m with local variance vm lowers the local SSIM's
	// contrast-structure term by about vm/(2σ²+C2) and, since it is smooth at the scale of
	// the SSIM window, the luminance term by about m²/(2μ²+C1), where μ and σ² are the local
	// mean and variance of the image and C1 = (0.01·peak)², C2 = (0.03·peak)²: the model's
	// loss is mean(m²/A²) with A² = 1/(1/(2σ²+C2) + 1/(2μ²+C1)), small in dark flat
	// regions. markShape spreads the mark over the image as the two floors allow, and the
	// gain is the smaller of the PSNR target's and the SSIM budget's. Both are taken in the
	// window a viewer shows the image in (displayRange), which for deep images is the span of
	// their values, not their bit depth: a CT slice that holds 2 000 of its 65 536 values
	// would otherwise get a mark 30 dB too strong to be invisible.
	vr := displayRange(img)
	peak := vr.span
	c1 := (0.01 * peak) * (0.01 * peak)
	c2 := (0.03 * peak) * (0.03 * peak)
	den := make([]float32, len(sigma))
	for i, s := range sigma {
		mu := float64(m1[i]) - vr.lo
		den[i] = float32(1 / (1/(2*float64(s)*float64(s)+c2) + 1/(2*mu*mu+c1)))
	}
	psnr, ssimFloor, budget := fl.psnr, fl.ssim, fl.budget()
	level := peak * math.Pow(10, -(psnr+psnrHeadroom)/20) // the mark's rms at the PSNR target
	amp := markShape(den, budget/(level*level))

	signs := lay.cellValues(bits)
	uniTile := renderMark(amp, ww, wh, signs)
	// The coarse layer (coarse.go), on small images: share of the mark's energy, shaped like
	// the tile. mark renders the whole mark from the tile's cell values.
	var coarse []float32
	if share > 0 && usesCoarse(w, h) {
		coarse = newCoarsePattern(lay.coarse).render(ww, wh)
		for i := range coarse {
			coarse[i] *= amp[i]
		}
		if ec := meanSquare(coarse); ec > 0 {
			sc := float32(math.Sqrt(share / (1 - share) * meanSquare(uniTile) / ec))
			for i := range coarse {
				coarse[i] *= sc
			}
		}
	}
	mark := func(cells []float64) []float32 {
		m := renderMark(amp, ww, wh, cells)
		for i, c := range coarse {
			m[i] += c
		}
		return m
	}
	uni := append([]float32(nil), uniTile...) // mark(signs), the tile drawn once
	for i, c := range coarse {
		uni[i] += c
	}
	rms := upsampledRMS(newUpsampler(uni, ww, wh, w, h, k), w, h)
	if rms == 0 {
		return nil, fmt.Errorf("embed: mark has no energy")
	}
	gain := level / rms
	// SSIM budget: the model's loss is gain²·mean(mark²/A²) on the working grid.
	var p2 float64
	for i, m := range uni {
		p2 += float64(m) * float64(m) / float64(den[i])
	}
	p2 /= float64(len(uni))
	if p2 > 0 {
		gain = math.Min(gain, math.Sqrt(budget/p2))
	}
	// The informed cells keep the uniform tile's rms, so the gain stays valid. The coarse
	// layer is known, so the tile's cells are informed of it as of the host.
	target := lay.cellTargets()
	host := mean
	if coarse != nil {
		host = make([]float32, len(mean))
		for i := range host {
			host[i] = mean[i] + float32(gain)*coarse[i]
		}
	}
	cells, gmed := informedCells(host, amp, ww, wh, geom, signs, target, gain, img.Max()) // clipping at the bit depth
	out := quantiseMarked(img, mark(cells), ww, wh, k, gain)
	// Closed loop: measure the cells as the detector will see them (at the embedding's own
	// alignment) and strengthen those that fell short of the margin, which the working-grid
	// model misses when the image is resampled or quantised coarsely.
	if gmed > 0 {
		x0, y0, rw, rh := workRegion(ww, wh, geom)
		uniRMS := math.Sqrt(meanSquare(uniTile))
		for pass := 0; pass < closedLoopPasses; pass++ {
			f, _, _ := whitenedField(out, geom)
			got := cellStats(f, rw, rh, x0, y0, geom.foldHighPass())
			short := 0
			for c := range cells {
				if signs[c]*got[c] < closedLoopMargin*target[c]*gmed {
					short++
					a := math.Abs(cells[c]) + (closedLoopMargin*target[c]*gmed-signs[c]*got[c])/gmed
					cells[c] = signs[c] * math.Min(informedMax, a)
				}
			}
			if short == 0 {
				break
			}
			m := renderMark(amp, ww, wh, cells)
			sc := uniRMS / math.Sqrt(meanSquare(m))
			for c := range cells {
				cells[c] *= sc
			}
			out = quantiseMarked(img, mark(cells), ww, wh, k, gain)
		}
	}
	// Meet the floors on the result itself: SSIM measured on it (the model above is
	// conservative by about two on small radiographs, so its budget aims past the floor and
	// the measurement pulls it back), then PSNR. On some images the model is more
	// conservative still and leaves both well above their floors; the gain is then raised
	// towards the nearer of the two.
	final := mark(cells)
	for try := 0; try < 6; try++ {
		gs, err := ssimEstimate(img, out, vr)
		if err != nil {
			break
		}
		gp, err := psnrIn(img, out, peak)
		if err != nil {
			break
		}
		var f float64
		switch {
		case gs < ssimFloor:
			f = math.Sqrt((1-ssimFloor)/(1-gs)) * 0.995
		case gp < psnr:
			f = math.Pow(10, (gp-psnr-0.1)/20)
		default:
			f = math.Min(math.Sqrt((1-ssimFloor)/(1-gs))*0.995, math.Pow(10, (gp-psnr-psnrHeadroom)/20))
			if f < raiseMin {
				return out, nil
			}
		}
		gain *= f
		out = quantiseMarked(img, final, ww, wh, k, gain)
	}
	// The loop may end on a raise that overshot: weaken until both floors hold.
	for try := 0; try < 4; try++ {
		gs, err := ssimEstimate(img, out, vr)
		if err != nil {
			break
		}
		gp, err := psnrIn(img, out, peak)
		if err != nil || (gs >= ssimFloor && gp >= psnr) {
			break
		}
		f := math.Pow(10, (gp-psnr-0.1)/20)
		if gs < ssimFloor {
			f = math.Min(f, math.Sqrt((1-ssimFloor)/(1-gs))*0.99)
		}
		gain *= math.Min(f, 0.995)
		out = quantiseMarked(img, final, ww, wh, k, gain)
	}
	return out, nil
}

// upsampler interpolates a working-grid field bilinearly to image pixels, where working
// sample X has its centre at image coordinate (X+0.5)·k.
type upsampler struct {
	f      []float32
	fw, fh int
	x0     []int
	fx     []float32
	k      float64
	tmp    []float32
}

func newUpsampler(f []float32, fw, fh, w, _ int, k float64) *upsampler {
	u := &upsampler{f: f, fw: fw, fh: fh, k: k, x0: make([]int, w), fx: make([]float32, w), tmp: make([]float32, fw)}
	for x := 0; x < w; x++ {
		u.x0[x], u.fx[x] = interpAt(x, k, fw)
	}
	return u
}

// interpAt gives the lower working index and the weight of the upper one for pixel i.
func interpAt(i int, k float64, n int) (int, float32) {
	p := (float64(i)+0.5)/k - 0.5
	if p <= 0 {
		return 0, 0
	}
	if p >= float64(n-1) {
		return max(0, n-2), float32(min(1, float64(n-1)))
	}
	p0 := math.Floor(p)
	return int(p0), float32(p - p0)
}

func (u *upsampler) row(y int, out []float32) {
	y0, fy := interpAt(y, u.k, u.fh)
	y1 := min(y0+1, u.fh-1)
	a, b := u.f[y0*u.fw:(y0+1)*u.fw], u.f[y1*u.fw:(y1+1)*u.fw]
	for i := range u.tmp {
		u.tmp[i] = a[i] + fy*(b[i]-a[i])
	}
	t := u.tmp
	last := u.fw - 1
	for x := range out {
		x0 := u.x0[x]
		x1 := min(x0+1, last)
		out[x] = t[x0] + u.fx[x]*(t[x1]-t[x0])
	}
}

// quantiseMarked adds gain × the upsampled working-grid mark to img and quantises with
// Floyd–Steinberg error diffusion: plain rounding would erase the parts of the mark smaller
// than half a grey level (most of it on 8-bit images), while diffusion keeps its local mean
// and pushes the rounding error to frequencies the detector ignores.
func quantiseMarked(img *Gray, mark []float32, ww, wh int, k, gain float64) *Gray {
	w, h := img.Width, img.Height
	up := newUpsampler(mark, ww, wh, w, h, k)
	row := make([]float32, w)
	out := &Gray{Width: w, Height: h, BitDepth: img.BitDepth, Pix: make([]uint16, len(img.Pix))}
	pk := float32(img.Max())
	fg := float32(gain)
	if img.BitDepth > 10 {
		// A grey level is far below the mark's amplitude: plain rounding loses nothing.
		for y := 0; y < h; y++ {
			up.row(y, row)
			src := img.Pix[y*w : (y+1)*w]
			dst := out.Pix[y*w : (y+1)*w]
			for x, v := range src {
				f := float32(v) + fg*row[x] + 0.5
				dst[x] = uint16(max(0, min(pk, f)))
			}
		}
		return out
	}
	errCur, errNext := make([]float32, w+2), make([]float32, w+2)
	for y := 0; y < h; y++ {
		up.row(y, row)
		src := img.Pix[y*w : (y+1)*w]
		dst := out.Pix[y*w : (y+1)*w]
		for x, v := range src {
			f := float32(v) + fg*row[x] + errCur[x+1]
			q := max(0, min(pk, float32(int32(f+0.5+1024)-1024)))
			dst[x] = uint16(q)
			e := f - q
			if e > 1 || e < -1 { // clipped: do not carry the clipped excess
				e = 0
			}
			errCur[x+2] += e * 7 / 16
			errNext[x] += e * 3 / 16
			errNext[x+1] += e * 5 / 16
			errNext[x+2] += e * 1 / 16
		}
		errCur, errNext = errNext, errCur
		clear(errNext)
	}
	return out
}

// renderMark multiplies the strength field by the tile drawn from cell values.
func renderMark(amp []float32, ww, wh int, cells []float64) []float32 {
	tile := renderTile(cells)
	mark := make([]float32, ww*wh)
	for y := 0; y < wh; y++ {
		trow := tile[(y%tileBins)*tileBins:]
		for x := 0; x < ww; x++ {
			mark[y*ww+x] = amp[y*ww+x] * float32(trow[x%tileBins])
		}
	}
	return mark
}

// Informed embedding. The detector sums, for each cell of the tile, the whitened image over
// all copies of the tile; the host image adds its own term to that sum (the main source of
// bit errors on smooth images), and neighbouring cells leak into each other through the
// interpolation and the whitening. Knowing the host, the embedder adjusts the amplitude of
// every cell so that all cells reach about the same margin over those terms, at the same
// total energy as a uniform mark (improved spread spectrum, Malvar & Florêncio 2003, solved
// per cell with the detector's own model, linearised by keeping its normaliser fixed).
const (
	informedFloor = 0.4 // smallest cell amplitude, relative to the uniform mark
	informedMax   = 2.5 // largest
	informedIters = 10
	// closedLoopPasses re-measure the marked image and strengthen cells whose margin is
	// below closedLoopMargin of the median response.
	closedLoopPasses = 2
	closedLoopMargin = 0.35
)

func informedCells(mean, amp []float32, ww, wh int, geom geometry, signs, target []float64, g float64, peak float64) ([]float64, float64) {
	nc := len(signs)
	uniRMS := math.Sqrt(meanSquare(renderMark(amp, ww, wh, signs)))
	if uniRMS == 0 {
		return signs, 0
	}
	pk := float32(peak)
	marked := make([]float32, len(mean))
	x0, y0, rw, rh := workRegion(ww, wh, geom) // what the detector reads
	// The detector subtracts its estimate of the host (a median); the model keeps the
	// unmarked image's, which the mark barely moves.
	hostCrop := cropField(mean, ww, x0, y0, rw, rh)
	level := hostLevel(hostCrop, rw, rh)
	// total rescales v to the uniform mark's rms and returns the detector's cell statistics
	// on the marked working image: its own whitening, normalisation and clipping, and the
	// value range's clipping.
	total := func(v []float64) []float64 {
		m := renderMark(amp, ww, wh, v)
		sc := uniRMS / math.Sqrt(meanSquare(m))
		for c := range v {
			v[c] *= sc
		}
		f := float32(g * sc)
		for i := range m {
			marked[i] = max(0, min(pk, mean[i]+f*m[i]))
		}
		field, _ := normaliseWith(cropField(marked, ww, x0, y0, rw, rh), level, rw, rh)
		return cellStats(field, rw, rh, x0, y0, geom.foldHighPass())
	}
	field, _ := normaliseWith(hostCrop, level, rw, rh)
	host := cellStats(field, rw, rh, x0, y0, geom.foldHighPass())
	v := append([]float64(nil), signs...)
	r0 := total(v)
	gs := make([]float32, nc)
	for c := range gs {
		gs[c] = float32(signs[c] * (r0[c] - host[c]))
	}
	gmed := float64(median32(gs))
	if gmed <= 0 {
		return signs, 0
	}
	r := r0
	for it := 0; it < informedIters; it++ {
		for c := range v {
			marg := signs[c] * r[c]
			a := math.Abs(v[c]) + 0.7*(target[c]*gmed-marg)/gmed
			v[c] = signs[c] * math.Max(informedFloor, math.Min(informedMax, a))
		}
		r = total(v)
	}
	return v, gmed
}

// upsampledRMS is the rms of the upsampled field, from every third row.
func upsampledRMS(up *upsampler, w, h int) float64 {
	var e float64
	var n int
	row := make([]float32, w)
	for y := 0; y < h; y += 3 {
		up.row(y, row)
		for _, v := range row {
			e += float64(v) * float64(v)
		}
		n += w
	}
	return math.Sqrt(e / float64(n))
}

func meanSquare(m []float32) float64 {
	e := 0.0
	for _, v := range m {
		e += float64(v) * float64(v)
	}
	return e / float64(max(1, len(m)))
}

// raiseMin is the smallest gain increase worth another quantisation.
const raiseMin = 1.02

// markShape returns the mark's local amplitude on the working grid, A²/(A²+β), from the
// perceptual amplitude A² (den) of the SSIM model. A correlation detector sums the mark, so
// the shape that gives the largest sum Σa for a given energy Σa² (the PSNR floor) and model
// loss Σa²/A² (the SSIM floor) is, by Lagrange, a = A²/(λ₁A² + λ₂) ∝ A²/(A²+β): even where
// the image hides a mark well (A² ≫ β), fading as A² in dark flat regions (A² ≪ β). β is
// where both floors bind together: the smallest β ≥ 0 whose loss per unit energy,
// mean(a²/A²)/mean(a²), is at most maxRatio (the SSIM budget over the PSNR target's mean
// square). On textured images, where even a uniform mark stays within the SSIM budget at
// the PSNR floor, β is 0 and the mark is uniform.
func markShape(den []float32, maxRatio float64) []float32 {
	ratio := func(beta float64) float64 {
		var s1, s2 float64
		for _, d := range den {
			dd := float64(d)
			a := dd / (dd + beta)
			s1 += a * a / dd
			s2 += a * a
		}
		return s1 / s2
	}
	beta := 0.0
	if ratio(beta) > maxRatio {
		maxD := 0.0
		for _, d := range den {
			maxD = max(maxD, float64(d))
		}
		// Bisection on log β; the loss per unit energy falls as β grows.
		lo, hi := math.Log(maxD*1e-6), math.Log(maxD*1e4)
		if ratio(math.Exp(hi)) > maxRatio {
			lo = hi
		}
		for it := 0; it < 40 && hi-lo > 0.01; it++ {
			mid := (lo + hi) / 2
			if ratio(math.Exp(mid)) > maxRatio {
				lo = mid
			} else {
				hi = mid
			}
		}
		beta = math.Exp(hi)
	}
	amp := make([]float32, len(den))
	for i, d := range den {
		amp[i] = float32(float64(d) / (float64(d) + beta))
	}
	return amp
}
