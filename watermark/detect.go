package watermark

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Detection settings.
const (
	// FalsePositiveTarget is the largest false-positive probability at which a mark is
	// reported present.
	FalsePositiveTarget = 1e-9
	// MinDetectSide is the smallest image side the detector accepts.
	MinDetectSide = 32
	minScale      = 0.65   // smallest cell scale searched (relative to the short side)
	maxScale      = 2.4    // largest: a crop that halves the short side needs 2
	coarseStep    = 0.01   // log-scale step of the coarse search (on a half-resolution field)
	fineStep      = 0.0025 // log-scale step of the fine search
	fineSpan      = 4      // fine steps on each side of a coarse peak
	coarsePeaks   = 3      // coarse peaks refined
	coarsePhases  = 2      // halvings searched by the coarse stage (offsets 0 and 1 sample)
	refinePhases  = 2      // resamplings of a refined candidate (offsets 0 and ½ sample)
	decodeTries   = 3      // candidates (best pilot peaks) at which the payload is decoded
	refineTries   = 6      // candidates (best pilot peaks) refine reads again at their pitch
	// Shares of the false-positive budget (weighted Bonferroni) of the pilot alone, by
	// family of hypotheses, and coarseWeight (coarse.go) to the primary read joined with the
	// coarse layer; the rest, 0.50, goes to the pilot joined with the code.
	// primaryWeight: the aligned read in the image's own orientation, at the base cell size
	// for its size, grey levels as marked (1 hypothesis: what most images need);
	// alternateWeight: the same at the self-check's three other cell sizes of that base;
	// alignedWeight: the rest of the own orientation (the other base's four cell sizes, and
	// inverted grey levels: 12); orientedWeight: the seven other orientations (112);
	// searchWeight: the full search.
	primaryWeight   = 0.25
	alternateWeight = 0.05
	alignedWeight   = 0.05
	orientedWeight  = 0.05
	searchWeight    = 0.05
)

// Result is what Detect finds.
type Result struct {
	// Present is true when the false-positive probability is at most FalsePositiveTarget.
	Present bool `json:"present"`
	// Payload is set only when Present and the code decoded with a matching CRC.
	Payload *Payload `json:"payload,omitempty"`
	// SymbolErrors and BitErrors are the errors the code corrected (erased bytes included).
	SymbolErrors int `json:"corrected_symbols"`
	BitErrors    int `json:"corrected_bits"`
	// Score is the pilot's correlation peak divided by its null standard deviation over
	// random keys (see Detect).
	Score float64 `json:"score"`
	// FalsePositive bounds the probability that an unmarked image (or one marked with
	// another key) scores as high. It joins seven bounds (weighted Bonferroni): the pilot's
	// null over random keys (a sum of random signs, tail.go; at the reads held in full, the
	// tail for the read's own weights where that is smaller) at the aligned reads of an
	// uncropped image (the primary read, the alternate cell sizes, the rest of its own orientation, the seven
	// other orientations); the same over every searched scale, orientation and shift; the
	// primary read joined with the coarse layer's read (CoarseScore); and
	// the product of the pilot's p-value with the code's chance of decoding random bits with
	// a matching CRC by the decoding attempt that succeeded (independent under the null).
	FalsePositive float64 `json:"false_positive_probability"`
	// Orientation is the operation that was applied to the marked image (rotate-90, ...).
	Orientation string `json:"orientation"`
	// Scale is the size of the found cells relative to the short side (1 = uncropped).
	Scale float64 `json:"scale"`
	// Inverted is true when the grey levels were inverted.
	Inverted bool `json:"inverted"`
	// Stretch is set when the mark was found in an image resized to another aspect (a
	// training pipeline's fixed input size, perhaps after a crop): its horizontal scale over
	// its vertical one, relative to the marked image. Zero when not stretched.
	Stretch float64 `json:"stretch,omitempty"`
	// Content is set when the image was letterboxed (padded with constant bands) and the
	// mark was read in the part inside the bands.
	Content *Rect `json:"content,omitempty"`
	// CoarseScore is the primary aligned read joined with the coarse layer's read, which
	// small images carry for quarter-size copies and heavy JPEG: (z_P + z_C)/√2, present on
	// its own at Thresholds.Coarse.
	CoarseScore float64 `json:"coarse_score"`
	// KeyID names the key that was tried.
	KeyID string `json:"key_id"`
	// pilotFP is the pilot's bound alone, without the code (its families joined).
	pilotFP float64
}

// Detect looks for a mark made with key in img. An unmarked image, one marked with another
// key or one whose mark was destroyed yields Present=false and no payload. A letterboxed
// image is read inside its bands (Result.Content).
func Detect(img *Gray, key Key) (Result, error) {
	return detectWith(img, key, true)
}

// detectWith is Detect, with the full search over scales and shifts or, where search is
// false, the aligned reads alone (the embedder's self-check: the image it has just marked
// is read where it put the mark). Without the search the false-positive probability is
// bounded as with it (the search's family counted, its score taken as zero, and the code's
// chance counted over as many decoding attempts), so an aligned read that verifies is one
// Detect verifies with the same payload: Detect decodes the aligned reads first.
func detectWith(img *Gray, key Key, search bool) (Result, error) {
	if err := img.Validate(); err != nil {
		return Result{}, fmt.Errorf("detect: %w", err)
	}
	if img.Width < MinDetectSide || img.Height < MinDetectSide {
		return Result{}, fmt.Errorf("detect: image %d×%d is smaller than %d px a side", img.Width, img.Height, MinDetectSide)
	}
	if r, ok := letterbox(img); ok {
		if sub := subImage(img, r); letterboxTrim(ownEnergy(img), ownEnergy(sub)) {
			res, err := detect(sub, img, key, search)
			res.Content = &r
			return res, err
		}
	}
	return detect(img, img, key, search)
}

// detect is Detect on an image without padding bands; frame is the image as given, in
// which the coarse layer is read (it covers the marked frame, and what looks like bands
// may be the marked image's own).
func detect(img, frame *Gray, key Key, search bool) (Result, error) {
	lay, err := newLayout(key)
	if err != nil {
		return Result{}, fmt.Errorf("detect: %w", err)
	}
	cd, err := newCodec()
	if err != nil {
		return Result{}, fmt.Errorf("detect: %w", err)
	}
	res := Result{KeyID: key.ID(), FalsePositive: 1}

	dc := newDetector(lay, tileBins/2)
	df := newDetector(lay, tileBins)
	var cands []candidate
	fields := map[geometry][]float32{} // whitened working grids, shared with the aligned reads
	nTry, nRefine := 0, 0
	best := candidate{r: 1}
	if search {
		for _, g := range geometries {
			field, fw, fh := whitenedField(img, g)
			fields[g] = field
			cands = append(cands, searchGeometry(field, fw, fh, g, dc, df)...)
		}
		sort.Slice(cands, func(i, j int) bool { return math.Abs(cands[i].z) > math.Abs(cands[j].z) })
		// The best refineTries candidates are read again at their pitch; the payload is
		// decoded at the best decodeTries of them as they ranked before, then at those read
		// again that outrank them (ranking them afresh alone let a noise peak read again push
		// out the candidate that carries the code: a JPEG 75 payload of the 103-image suite;
		// leaving the others out lost crops resized to 224×224 that they decode).
		nRefine = min(refineTries, len(cands))
		for i := range cands[:nRefine] {
			cands[i] = refine(img, cands[i], df)
		}
		nTry = min(decodeTries, len(cands))
		if c, ok := stretchedCropRead(img, fields[geomLarge], df); ok {
			cands = slices.Insert(cands, nTry, c)
			nTry++
			nRefine++
		}
		sort.Slice(cands[:nTry], func(i, j int) bool { return math.Abs(cands[i].z) > math.Abs(cands[j].z) })
		best = cands[0]
		for _, c := range cands[:nRefine] {
			if math.Abs(c.z) > math.Abs(best.z) {
				best = c
			}
		}
	}
	tests := searchTests()
	reads := alignedCandidates(img, df, fields)
	aligned, oriented := reads.identity, reads.oriented
	res.Score = math.Max(math.Abs(best.z), math.Max(math.Abs(aligned.z), math.Abs(oriented.z)))
	res.Orientation = orientationNames[best.d]
	res.Scale = best.r
	res.Inverted = best.z < 0
	res.Stretch = best.stretch
	// The tail of a normalised sum of random signs (tail.go), per test (one-sided: a sign is
	// a test of its own, so the search's and the other orientations' best is taken in
	// absolute value), for the best score of each family, weighed by its share (weighted
	// Bonferroni); the strongest family says where the mark was found.
	// At the reads the detector holds in full, the bounds for their own weights (readTail:
	// Chernoff's, and the counted tail) sharpen the tail; they are taken at each aligned
	// family's best read and at every candidate of the search, a subset of each family's
	// hypotheses, which the union bound over all of them allows.
	tail := func(n float64, cs ...candidate) float64 {
		var reads [][]float64
		for _, c := range cs {
			if c.fold != nil && c.z != 0 {
				reads = append(reads, df.pilotTerms(c))
			}
		}
		return readTail(n, reads...)
	}
	minP := 1 / searchWeight
	if search {
		minP = tail(tests, cands...) / searchWeight
	}
	if p := tail(alignedOrientedTests, oriented) / orientedWeight; p < minP {
		minP = p
		res.Orientation, res.Scale, res.Inverted, res.Stretch = orientationNames[oriented.d], oriented.r, oriented.z < 0, oriented.stretch
	}
	np := float64(len(primaryBases(img.Width, img.Height)))
	na := np * float64(len(geomLarge.alternatives())-1)
	idP := math.Min(tail(np, reads.primaryC)/primaryWeight,
		math.Min(tail(na, reads.alternateC)/alternateWeight,
			tail(identityTests-np-na, reads.otherC)/alignedWeight))
	// The primary read joined with the coarse layer's (coarse.go): a normalised sum of
	// independent signs, one hypothesis per primary base.
	if min(frame.Width, frame.Height) < coarseReadSide {
		res.CoarseScore = (max(0, reads.primary) + coarseRead(frame, lay.coarse)) / math.Sqrt2
		if p := joinedTail(np, res.CoarseScore) / coarseWeight; p < idP {
			idP = p
		}
	}
	if idP < minP {
		minP = idP
		res.Orientation, res.Scale, res.Inverted, res.Stretch = orientationNames[0], aligned.r, aligned.z < 0, aligned.stretch
	}
	pPilot := math.Min(1, pilotShare*minP)
	res.pilotFP = math.Min(1, minP)
	d := df

	// The aligned reads are decoded first, then the search's best candidates.
	var tryCands []candidate
	for _, c := range []candidate{aligned, oriented} {
		if c.fold != nil {
			tryCands = append(tryCands, c)
		}
	}
	tryCands = append(tryCands, cands[:nTry]...)
	if nTry > 0 && nRefine > nTry {
		extra := slices.Clone(cands[nTry:nRefine])
		sort.Slice(extra, func(i, j int) bool { return math.Abs(extra[i].z) > math.Abs(extra[j].z) })
		lowest := math.Abs(cands[nTry-1].z)
		for _, c := range extra[:min(len(extra), decodeTries)] {
			if math.Abs(c.z) > lowest {
				tryCands = append(tryCands, c)
			}
		}
	}
	var dec *decodeResult
	softs := make([][]float64, 0, len(tryCands)) // read as tried; all of them when none decodes
	for _, c := range tryCands {
		softs = append(softs, d.softBits(c))
		r, err := cd.decode(softs[len(softs)-1])
		if err == nil {
			dec = &r
			res.Orientation, res.Scale, res.Inverted, res.Stretch = orientationNames[c.d], c.r, c.z < 0, c.stretch
			break
		}
	}
	if dec == nil {
		// Accept the soft-decision search's codeword on the reliability bound (up to
		// osdCombinedBound): such a word alone is weak evidence, but it is independent of the
		// pilot's (the scrambling word makes the data bits of an unmarked image uniform
		// whatever the pilot found), so the two combine below. Every candidate is tried and
		// the smallest bound kept: the code's p-value counts every candidate anyway (a union
		// bound), and the first to pass is not always the best (a 50 % crop whose third
		// candidate passed at 10⁻⁴ and fourth at 10⁻⁷).
		if i, r, ok := cd.decodeBest(softs, osdCombinedBound); ok {
			r.falseProb += maxFalseDecodeProbability() // the full decode failed first
			dec = &r
			c := tryCands[i]
			res.Orientation, res.Scale, res.Inverted = orientationNames[c.d], c.r, c.z < 0
		}
	}
	// Four statistics, each a valid bound on its own: the aligned reads' pilot (identity,
	// other orientations), the full search's pilot, and the pilot's p-value times the code's
	// (independent under the null: P(U₁U₂ ≤ t) = t(1 − ln t)), joined by a weighted
	// Bonferroni bound (P(∃i: pᵢ ≤ wᵢx) ≤ x for Σwᵢ = 1).
	pCode := 1.0
	if dec != nil {
		attempts := len(tryCands)
		if !search {
			attempts += 2*decodeTries + 1 // as many as the search could have added
		}
		pCode = math.Min(1, float64(attempts)*dec.falseProb)
	}
	res.FalsePositive = math.Min(1, math.Min(
		pPilot/pilotShare,
		productTail(pPilot*pCode)/(1-pilotShare)))
	res.Present = res.FalsePositive <= FalsePositiveTarget
	if res.Present && dec != nil {
		p := dec.payload
		res.Payload = &p
		res.SymbolErrors, res.BitErrors = dec.symbolErrors, dec.bitErrors
	}
	return res, nil
}

// searchGeometry searches one geometry's whitened working grid: a coarse search on a half-resolution field (one bin
// per cell) over the whole scale range, then a fine search around the best coarse scales.
// The false-positive bound counts every point of the fine grid over the whole scale range,
// whether visited or not, so it holds whatever the coarse stage picked.
func searchGeometry(field []float32, fw, fh int, g geometry, dc, df *detector) []candidate {
	// The coarse field averages 2×2 blocks into one sample per cell. Where the cells
	// straddle those blocks (an odd offset, as after many crops), neighbouring cells cancel
	// in it and the mark can vanish from the coarse search (a 75 % crop of one generated
	// image: coarse score 4.2 against 7.8 one sample over, fine score 8.6), so two halvings
	// are searched, offset by one sample on both axes.
	var coarse []candidate
	for off := 0; off < coarsePhases; off++ {
		cf, cw, ch := halve(cropField(field, fw, off, off, fw-off, fh-off), fw-off, fh-off)
		for _, r := range scaleGrid(coarseStep) {
			coarse = append(coarse, dc.search(cf, cw, ch, r, g.foldHighPass()))
		}
	}
	sort.Slice(coarse, func(i, j int) bool { return math.Abs(coarse[i].z) > math.Abs(coarse[j].z) })
	seen := map[int]bool{}
	var cands []candidate
	for _, c := range coarse[:min(coarsePeaks, len(coarse))] {
		j0 := int(math.Round(math.Log(c.r) / fineStep))
		for j := j0 - fineSpan; j <= j0+fineSpan; j++ {
			if seen[j] {
				continue
			}
			seen[j] = true
			c := df.search(field, fw, fh, math.Exp(float64(j)*fineStep), g.foldHighPass())
			c.g = g
			cands = append(cands, c)
		}
	}
	return cands
}

// refine resamples the image so that candidate c's cells are exactly binsPerCell samples
// wide and searches again at scale 1: the fold's nearest-bin assignment blurs the tile when
// the scale is not 1 (after a crop), and this read does not. The grid's phase relative to
// the cells is unknown, so it resamples twice, the second grid offset by half a sample on
// both axes. It returns the best of the three reads.
func refine(img *Gray, c candidate, df *detector) candidate {
	if math.Abs(math.Log(c.r)) < refineMin {
		return c
	}
	k := float64(min(img.Width, img.Height)) / float64(c.g.workShort()) * c.r // pixels per sample
	if rc := readAtPitch(img, c.g, k, k, df); math.Abs(rc.z) > math.Abs(c.z) {
		rc.r = c.r
		return rc
	}
	return c
}

// readAtPitch resamples img to kx×ky pixels per sample (cells of binsPerCell samples when
// that is the cells' pitch), on refinePhases grids offset by a fraction of a sample on both
// axes since the cells' phase is unknown, whitens the central region geometry g reads, and
// searches every shift and orientation at scale 1; it returns the best of the reads.
func readAtPitch(img *Gray, g geometry, kx, ky float64, df *detector) candidate {
	var best candidate
	for ph := 0; ph < refinePhases; ph++ {
		off := float64(ph) / refinePhases // samples
		fw := max(1, int(float64(img.Width)/kx-off))
		fh := max(1, int(float64(img.Height)/ky-off))
		v, _ := resampleKernels(img, 0, 0, img.Width, img.Height,
			newKernelAt(img.Width, fw, kx, off), newKernelAt(img.Height, fh, ky, off), false)
		rw, rh := min(fw, g.maxWorkLong()), min(fh, g.maxWorkLong())
		f, _ := normalisedField(cropField(v, fw, (fw-rw)/2, (fh-rh)/2, rw, rh), rw, rh)
		if rc := df.search(f, rw, rh, 1, g.foldHighPass()); ph == 0 || math.Abs(rc.z) > math.Abs(best.z) {
			rc.g = g
			best = rc
		}
	}
	return best
}

// refineMin is the smallest |ln r| at which refine resamples (below, the fold is exact enough).
const refineMin = 0.03

// productTail is P(U₁U₂ ≤ t) for independent uniform U₁, U₂.
func productTail(t float64) float64 {
	if t <= 0 {
		return 0
	}
	return math.Min(1, t*(1-math.Log(t)))
}

// scaleGrid lists cell scales from minScale to maxScale on a geometric grid through 1.
func scaleGrid(step float64) []float64 {
	var s []float64
	lo := int(math.Floor(math.Log(minScale) / step))
	hi := int(math.Ceil(math.Log(maxScale) / step))
	for j := lo; j <= hi; j++ {
		s = append(s, math.Exp(float64(j)*step))
	}
	return s
}

// halve averages 2×2 blocks.
func halve(f []float32, w, h int) ([]float32, int, int) {
	hw, hh := w/2, h/2
	out := make([]float32, hw*hh)
	for y := 0; y < hh; y++ {
		a, b := f[2*y*w:], f[(2*y+1)*w:]
		for x := 0; x < hw; x++ {
			out[y*hw+x] = (a[2*x] + a[2*x+1] + b[2*x] + b[2*x+1]) / 4
		}
	}
	return out, hw, hh
}

// whitenedField resamples img to the working grid of geometry g (the region workRegion
// says), removes the local median and divides by the local deviation, clipped to ±3.
// Brightness, contrast and the host image's smooth content and edges drop out; what is left
// is fine texture, noise and the mark.
func whitenedField(img *Gray, g geometry) ([]float32, int, int) {
	fw, fh := workSize(img.Width, img.Height, g)
	return whitenedGrid(img, g, fw, fh)
}

// whitenedGrid is whitenedField on a working grid of fw×fh samples.
func whitenedGrid(img *Gray, g geometry, fw, fh int) ([]float32, int, int) {
	v, _ := resampleGray(img, fw, fh, false)
	x0, y0, rw, rh := workRegion(fw, fh, g)
	f, _ := normalisedField(cropField(v, fw, x0, y0, rw, rh), rw, rh)
	return f, rw, rh
}

// workSize is the working grid of a w×h image: g.workShort() samples on the short side.
func workSize(w, h int, g geometry) (int, int) {
	k := float64(min(w, h)) / float64(g.workShort())
	return max(1, int(math.Round(float64(w)/k))), max(1, int(math.Round(float64(h)/k)))
}

// workRegion is the centred part of the working grid the detector reads: at most
// g.maxWorkLong() samples on the long side, so that a scale error drifts little across it.
func workRegion(fw, fh int, g geometry) (x0, y0, rw, rh int) {
	rw, rh = min(fw, g.maxWorkLong()), min(fh, g.maxWorkLong())
	return (fw - rw) / 2, (fh - rh) / 2, rw, rh
}

func cropField(v []float32, fw, x0, y0, rw, rh int) []float32 {
	if x0 == 0 && y0 == 0 && rw == fw && rh*fw == len(v) {
		return v
	}
	out := make([]float32, rw*rh)
	for y := 0; y < rh; y++ {
		copy(out[y*rw:(y+1)*rw], v[(y0+y)*fw+x0:(y0+y)*fw+x0+rw])
	}
	return out
}

// normalisedField whitens a working-grid image: normaliseWith its own hostLevel.
func normalisedField(v []float32, fw, fh int) (field, inv []float32) {
	return normaliseWith(v, hostLevel(v, fw, fh), fw, fh)
}

// hostLevel is the detector's estimate of the host image on a working grid, which the
// whitening subtracts: the 5×5 median. Unlike a local mean it follows the host's edges
// (ribs, vessels, the borders of the lungs) and leaves out the mark, whose cells are two
// samples wide.
func hostLevel(v []float32, w, h int) []float32 {
	return medianFilter(v, w, h)
}

// normaliseWith whitens v with a given estimate of the host (hostLevel of v, or, in the
// embedder's model of the detector, of the unmarked image): v minus the estimate, divided by
// the local deviation plus normEps of its median, clipped to ±3. It also returns the
// divisor's inverse.
func normaliseWith(v, level []float32, fw, fh int) (field, inv []float32) {
	hp := make([]float32, len(v))
	for i := range v {
		hp[i] = v[i] - level[i]
	}
	sq := make([]float32, len(v))
	for i := range hp {
		sq[i] = hp[i] * hp[i]
	}
	loc := boxMean(sq, fw, fh, 2)
	for i := range loc {
		loc[i] = float32(math.Sqrt(float64(loc[i])))
	}
	eps := normEps*median32(loc) + 1e-6
	inv = make([]float32, len(hp))
	for i := range hp {
		inv[i] = 1 / (loc[i] + eps)
		hp[i] = max(-3, min(3, hp[i]*inv[i]))
	}
	return hp, inv
}

// cellStats folds a working-grid field whose first sample is at (ox, oy) of the embedding's
// grid, at the embedding's own alignment (bin = sample mod tileBins), and returns, for each
// cell, the detector's statistic: the whitened fold summed over the cell's bilinear footprint.
func cellStats(field []float32, fw, fh, ox, oy, hp int) []float64 {
	const n = tileBins
	sum := make([]float64, n*n)
	cnt := make([]float64, n*n)
	for y := 0; y < fh; y++ {
		r := ((y + oy) % n) * n
		for x, v := range field[y*fw : (y+1)*fw] {
			b := r + (x+ox)%n
			sum[b] += float64(v)
			cnt[b]++
		}
	}
	mean := 0.0
	for i := range sum {
		if cnt[i] > 0 {
			sum[i] /= cnt[i]
		}
		mean += sum[i]
	}
	mean /= float64(len(sum))
	for i := range sum {
		sum[i] -= mean
	}
	return footprints(cyclicHighPass(sum, n, hp))
}

// footprints sums a whitened tile over each cell's bilinear footprint.
func footprints(hw []float64) []float64 {
	const n = tileBins
	wts := [4]float64{0.25, 0.75, 0.75, 0.25}
	out := make([]float64, tileCells*tileCells)
	for cell := range out {
		cx, cy := cell%tileCells, cell/tileCells
		s := 0.0
		for dy := 0; dy < 4; dy++ {
			yy := ((2*cy - 1 + dy) + n) % n
			for dx := 0; dx < 4; dx++ {
				xx := ((2*cx - 1 + dx) + n) % n
				s += wts[dy] * wts[dx] * hw[yy*n+xx]
			}
		}
		out[cell] = s
	}
	return out
}

// candidate is the best pilot match at one scale.
type candidate struct {
	g       geometry
	r       float64
	d       int     // orientation
	sx, sy  int     // cyclic shift of the tile
	z       float64 // pilot correlation in null standard deviations (sign: polarity)
	fold    []float64
	stretch float64 // the image's x:y scale distortion the read corrected (0: none)
}

// detector holds the key's templates and FFT scratch space for one tile size.
//
// The null distribution is taken over keys, not images: for a fixed image (any image,
// periodic structures included) and a random key, the pilot correlation at any shift and
// orientation is a sum over the pilot cells of independent random signs times what the
// fold holds at those cells, Σ σ_c·G(c), because the template is linear in the pilot
// signs. Its tail is bounded by c·Q(z) (tail.go) with z = corr/√(Σ G(c)²), which the
// detector computes at every shift and orientation with two more FFTs.
type detector struct {
	n      int
	lay    *layout
	fft    *fourier.CmplxFFT
	pilotF [8][]complex128 // conjugated spectra of the pilot template in each orientation
	maskF  [8][]complex128 // conjugated spectra of the pilot cells' positions in each orientation
	cellF  []complex128    // conjugated spectrum of one cell's template
	perm   [8][]int
	buf    []complex128
	col    []complex128
	colOut []complex128
	prod   []complex128
	g2     []complex128
	corr   []float64
	vars   []float64
	bx, by []int
	sum    []float64
	cnt    []float64
}

// newDetector makes a detector for tiles of n bins (tileBins, or tileBins/2 for the coarse
// search, whose templates are 2×2 sums of the full ones).
func newDetector(lay *layout, n int) *detector {
	d := &detector{n: n, lay: lay, fft: fourier.NewCmplxFFT(n),
		buf: make([]complex128, n*n), col: make([]complex128, n), colOut: make([]complex128, n),
		prod: make([]complex128, n*n), g2: make([]complex128, n*n), corr: make([]float64, 8*n*n),
		vars: make([]float64, 8*n*n), sum: make([]float64, n*n), cnt: make([]float64, n*n)}
	cells := make([]float64, tileCells*tileCells)
	for _, c := range lay.pilotCells {
		cells[c] = lay.sign[c]
	}
	pilot := shrinkTile(renderTile(cells), n)
	one := make([]float64, tileCells*tileCells)
	one[0] = 1
	d.cellF = d.spectrum(shrinkTile(renderTile(one), n))
	per := n / tileCells // bins per cell
	for o := 0; o < 8; o++ {
		d.perm[o] = dihedral(o, n)
		t := make([]float64, n*n)
		for i, v := range pilot {
			t[d.perm[o][i]] = v
		}
		d.pilotF[o] = d.spectrum(t)
		// A cell's template is one kernel, symmetric about the cell's centre, so the oriented
		// template is the same kernel at the oriented cells' positions.
		cp := dihedral(o, tileCells)
		m := make([]float64, n*n)
		for _, c := range lay.pilotCells {
			oc := cp[c]
			m[(oc/tileCells)*per*n+(oc%tileCells)*per] = 1
		}
		d.maskF[o] = d.spectrum(m)
	}
	return d
}

// shrinkTile sums a full-resolution tile into n×n bins.
func shrinkTile(t []float64, n int) []float64 {
	if n == tileBins {
		return t
	}
	f := tileBins / n
	small := make([]float64, n*n)
	for y := 0; y < tileBins; y++ {
		for x := 0; x < tileBins; x++ {
			small[(y/f)*n+x/f] += t[y*tileBins+x]
		}
	}
	return small
}

// spectrum is the conjugated 2-D spectrum of an n×n array.
func (d *detector) spectrum(v []float64) []complex128 {
	t := make([]complex128, len(v))
	for i, x := range v {
		t[i] = complex(x, 0)
	}
	d.fft2(t, false)
	for i := range t {
		t[i] = complex(real(t[i]), -imag(t[i]))
	}
	return t
}

// fft2 transforms an n×n array in place (rows, then columns); the inverse is not scaled.
func (d *detector) fft2(a []complex128, inverse bool) {
	n := d.n
	tr := d.fft.Coefficients
	if inverse {
		tr = d.fft.Sequence
	}
	for y := 0; y < n; y++ {
		copy(d.col, a[y*n:(y+1)*n])
		tr(a[y*n:(y+1)*n], d.col)
	}
	for x := 0; x < n; x++ {
		for y := 0; y < n; y++ {
			d.col[y] = a[y*n+x]
		}
		tr(d.colOut, d.col)
		for y := 0; y < n; y++ {
			a[y*n+x] = d.colOut[y]
		}
	}
}

// fold averages the field into one tile of bins at cell scale r (working samples per bin,
// nearest bin, about the field's centre), less its mean and, with hp > 0, its cyclic local
// mean over (2·hp+1)² bins of a full tile (see geometry.foldHighPass).
func (d *detector) fold(f []float32, fw, fh int, r float64, hp int) []float64 {
	n := d.n
	if cap(d.bx) < fw {
		d.bx = make([]int, fw)
	}
	if cap(d.by) < fh {
		d.by = make([]int, fh)
	}
	bx, by := d.bx[:fw], d.by[:fh]
	for x := range bx {
		b := int(math.Floor(float64(x-fw/2)/r + 0.5))
		bx[x] = (b%n + n) % n
	}
	for y := range by {
		b := int(math.Floor(float64(y-fh/2)/r + 0.5))
		by[y] = (b%n + n) % n * n
	}
	sum, cnt := d.sum, d.cnt
	clear(sum)
	clear(cnt)
	for y := 0; y < fh; y++ {
		row := f[y*fw : (y+1)*fw]
		ro := by[y]
		for x, v := range row {
			i := ro + bx[x]
			sum[i] += float64(v)
			cnt[i]++
		}
	}
	out := make([]float64, n*n)
	mean := 0.0
	for i := range out {
		if cnt[i] > 0 {
			out[i] = sum[i] / cnt[i]
		}
		mean += out[i]
	}
	mean /= float64(n * n)
	for i := range out {
		out[i] -= mean
	}
	return cyclicHighPass(out, n, hp*n/tileBins)
}

// search folds at scale r and correlates the tile with the pilot in all 8 orientations and
// all cyclic shifts; it returns the strongest match in units of its null deviation over keys.
func (d *detector) search(f []float32, fw, fh int, r float64, hp int) candidate {
	n := d.n
	nn := n * n
	fold := d.fold(f, fw, fh, r, hp)
	best := candidate{r: r, fold: fold}
	d.scores(fold)
	for i, v := range d.corr {
		q := d.vars[i]
		if q <= 1e-12 {
			continue
		}
		if z := v / math.Sqrt(q); math.Abs(z) > math.Abs(best.z) {
			o, s := i/nn, i%nn
			best.z, best.d, best.sx, best.sy = z, o, s%n, s/n
		}
	}
	return best
}

// scores fills d.corr with the pilot correlation of a fold at every orientation and shift
// (index o·n² + sy·n + sx) and d.vars with its null variance over keys there.
func (d *detector) scores(fold []float64) {
	nn := d.n * d.n
	for i, v := range fold {
		d.buf[i] = complex(v, 0)
	}
	d.fft2(d.buf, false)
	// G: the fold correlated with one cell's template; its squares summed over the pilot
	// cells' positions give each shift's null variance.
	for i := range d.g2 {
		d.g2[i] = d.buf[i] * d.cellF[i]
	}
	d.fft2(d.g2, true)
	scale := 1 / float64(nn)
	for i, v := range d.g2 {
		g := real(v) * scale
		d.g2[i] = complex(g*g, 0)
	}
	d.fft2(d.g2, false)
	for o := 0; o < 8; o++ {
		d.inversePair(d.buf, d.pilotF[o], d.g2, d.maskF[o], d.corr[o*nn:(o+1)*nn], d.vars[o*nn:(o+1)*nn])
	}
}

// inversePair writes the scaled inverse transforms of a·b and c·e into re and im. All four
// are spectra of real fields (or their conjugates), so both products are spectra of real
// fields and one complex transform of a·b + i·c·e carries the two: the first in its real
// part, the second in its imaginary part. This halves the transforms scores makes.
func (d *detector) inversePair(a, b, c, e []complex128, re, im []float64) {
	for i := range d.prod {
		d.prod[i] = a[i]*b[i] + complex(0, 1)*c[i]*e[i]
	}
	d.fft2(d.prod, true)
	scale := 1 / float64(len(d.prod))
	for i, v := range d.prod {
		re[i], im[i] = real(v)*scale, imag(v)*scale
	}
}

// softBits reads the coded bits at candidate c: the tile is shifted back, put back in the
// embedding orientation, whitened, and each data cell's bilinear footprint is summed.
func (d *detector) softBits(c candidate) []float64 {
	resp := footprints(d.embeddingTile(c))
	pol := 1.0
	if c.z < 0 {
		pol = -1
	}
	soft := make([]float64, codedBits)
	for i, cell := range d.lay.dataCells {
		s := resp[cell]
		v := s * pol * d.lay.sign[cell]
		if d.lay.scramble[i] == 1 {
			v = -v
		}
		soft[i] = v
	}
	return soft
}

// pilotTerms reads the pilot at candidate c cell by cell: each pilot cell's G_c (the fold,
// shifted back and put back in the embedding orientation, summed over the cell's bilinear
// footprint) times the key's sign there and the read's polarity, so that the terms sum to
// the read's correlation |corr| and Σ v/√(Σ v²) is |c.z| (TestPilotTerms). They are the
// weights of Chernoff's bound at that read (readTail).
func (d *detector) pilotTerms(c candidate) []float64 {
	resp := footprints(d.embeddingTile(c))
	pol := 1.0
	if c.z < 0 {
		pol = -1
	}
	v := make([]float64, len(d.lay.pilotCells))
	for i, cell := range d.lay.pilotCells {
		v[i] = resp[cell] * pol * d.lay.sign[cell]
	}
	return v
}

// embeddingTile is candidate c's fold shifted back and put back in the embedding
// orientation: G(b) = fold(b + s), then H(i) = G(perm(i)).
func (d *detector) embeddingTile(c candidate) []float64 {
	n := d.n
	h := make([]float64, n*n)
	perm := d.perm[c.d]
	for i := range h {
		j := perm[i]
		x, y := j%n, j/n
		h[i] = c.fold[((y+c.sy)%n)*n+(x+c.sx)%n]
	}
	return h
}

// Whitening: the detector subtracts the 5×5 median (hostLevel), then divides by the local
// deviation plus normEps of its median.
const normEps float32 = 0.1

// alignedReads are the aligned reads' results: the best read in the image's own orientation
// and the best in the other seven (the candidates decoded), and the best score of each family
// of hypotheses in the own orientation: primary (the base geometry for the image's size,
// grey levels as marked), alternate (that base's other cell sizes, as marked) and other
// (the other base, and inverted grey levels; absolute value).
type alignedReads struct {
	identity, oriented        candidate
	primary, alternate, other float64
	// The reads those three scores come from (fold nil where the family scored nothing).
	primaryC, alternateC, otherC candidate
	stretch                      float64 // the distortion read at (readStretch; 1: none)
}

// alignedCandidates read the pilot where an image that was not cropped carries it: on the
// working grid of each geometry the embedder may have used (both base geometries and their
// alternatives), at scale 1 and at the embedding's own alignment, which follows from the
// image's size alone, in each of the 8 orientations (rotations by 90° and flips map the frame
// onto itself), both signs. These few hypotheses, fixed before the pixels are seen, get their
// own shares of the false-positive budget, so an image that was only re-encoded, rescaled,
// blurred, made noisier, rotated, flipped or had its grey levels changed needs a lower score
// than one found by the full search. It returns the best read in the identity orientation and
// the best in the other seven. fields may hold whitened working grids of img already made
// (by the search); they are used when img is read as it is.
func alignedCandidates(img *Gray, df *detector, fields map[geometry][]float32) alignedReads {
	n := df.n
	nn := n * n
	var ar alignedReads
	primary := primaryBases(img.Width, img.Height)
	if src := shrinkForReads(img); src != img {
		img, fields = src, nil
	}
	// Every geometry's working grid at the image's own aspect; the tile energy the best of
	// the large geometry's gathers is what a stretched grid of it must beat (readStretch).
	// (The small geometry's grids are left out of that: a large-geometry tile stretched by a
	// simple ratio, 3:2, can fold coherently onto them, at two or three periods per bin tile.)
	own := map[geometry][]float32{}
	eOwn := math.Inf(-1)
	for _, base := range geometries {
		for _, g := range base.alternatives() {
			f, ok := fields[g]
			if !ok {
				f, _, _ = whitenedField(img, g)
			}
			own[g] = f
			if base != geomLarge {
				continue
			}
			fw, fh := workSize(img.Width, img.Height, g)
			_, _, rw, rh := workRegion(fw, fh, g)
			if e, _ := foldEnergy(f, rw, rh, 1, 1, tileBins); e > eOwn {
				eOwn = e
			}
		}
	}
	// A stretched image (resized to another aspect) is read on the grid its mark's tile
	// gives; the grid is chosen from the pixels alone, so the hypotheses stay the same.
	st, fd := readStretch(img, geomLarge, own[geomLarge], eOwn)
	ar.stretch = st.distortion(img.Width, img.Height)
	if fd != nil {
		own = map[geometry][]float32{geomLarge: fd}
	}
	for _, base := range geometries {
		for _, g := range base.alternatives() {
			fw, fh := st.grid(img.Width, img.Height, g)
			x0, y0, rw, rh := workRegion(fw, fh, g)
			f, ok := own[g]
			if !ok {
				f, _, _ = whitenedGrid(img, g, fw, fh)
			}
			fold := df.fold(f, rw, rh, 1, g.foldHighPass())
			df.scores(fold)
			for o := 0; o < 8; o++ {
				sx, sy := alignedShift(o&1 != 0, fw, x0, rw, n), alignedShift(o&2 != 0, fh, y0, rh, n)
				i := o*nn + sy*n + sx
				q := df.vars[i]
				if q <= 1e-12 {
					continue
				}
				z := df.corr[i] / math.Sqrt(q)
				best := &ar.identity
				if o != 0 {
					best = &ar.oriented
				}
				if math.Abs(z) > math.Abs(best.z) {
					*best = candidate{g: g, r: float64(base) / float64(g), d: o, sx: sx, sy: sy, z: z, fold: fold}
					if ar.stretch != 1 {
						best.stretch = ar.stretch
					}
				}
				read := candidate{g: g, r: float64(base) / float64(g), d: o, sx: sx, sy: sy, z: z, fold: fold}
				switch {
				case o != 0:
				case slices.Contains(primary, base) && g == base && z > 0:
					if z > ar.primary {
						ar.primary, ar.primaryC = z, read
					}
				case slices.Contains(primary, base) && z > 0:
					if z > ar.alternate {
						ar.alternate, ar.alternateC = z, read
					}
				default:
					if math.Abs(z) > ar.other {
						ar.other, ar.otherC = math.Abs(z), read
					}
				}
			}
		}
	}
	return ar
}

// primaryRead is alignedReads.primary without the stretch search: the pilot, grey levels
// as marked, at the aligned shift of each primary base geometry's own working grid in the
// image's own orientation. The embedder reads its quarter-size copies with it (coarse.go):
// they keep the marked aspect, so the stretch search, and the other geometries' grids it
// needs, would only cost time.
func primaryRead(img *Gray, df *detector) float64 {
	n := df.n
	var z float64
	for _, g := range primaryBases(img.Width, img.Height) {
		fw, fh := workSize(img.Width, img.Height, g)
		x0, y0, rw, rh := workRegion(fw, fh, g)
		f, _, _ := whitenedGrid(img, g, fw, fh)
		df.scores(df.fold(f, rw, rh, 1, g.foldHighPass()))
		i := alignedShift(false, fh, y0, rh, n)*n + alignedShift(false, fw, x0, rw, n)
		if q := df.vars[i]; q > 1e-12 {
			z = max(z, df.corr[i]/math.Sqrt(q))
		}
	}
	return z
}

// shrinkForReads returns img, or, when its short side is above readSide, a 16-bit copy
// resampled to readSide on the short side: the aligned reads resample the image to eight
// working grids, and from this copy that costs a fraction of what it costs from a 4096 px
// image. The copy keeps sub-level detail (values scaled to 16 bits), and area averaging
// twice is close to averaging once when the copy is at least 4.5 times the working grid.
func shrinkForReads(img *Gray) *Gray {
	short := min(img.Width, img.Height)
	if short <= readSide {
		return img
	}
	k := float64(readSide) / float64(short)
	w := max(readSide, int(math.Round(float64(img.Width)*k)))
	h := max(readSide, int(math.Round(float64(img.Height)*k)))
	v, _ := resampleGray(img, w, h, false)
	out := NewGray(w, h, 16)
	sc := 65535 / img.Max()
	for i, f := range v {
		out.Pix[i] = uint16(math.Max(0, math.Min(65535, math.Round(float64(f)*sc))))
	}
	return out
}

// readSide is the short side above which the aligned reads work on a resampled copy.
const readSide = 1024

// alignedShift is the cyclic shift at which the fold of an uncropped image holds the
// pilot, along one axis of f working samples of which the detector reads rw from x0. The
// fold puts region sample x in bin x − rw/2; the embedder put working sample X in bin X, and
// X = x + x0, or f − 1 − (x + x0) when the axis was flipped (the oriented template is then
// flipped too: bin b holds what bin n − 1 − b held).
func alignedShift(flipped bool, f, x0, rw, n int) int {
	s := -(rw/2 + x0)
	if flipped {
		s = f - x0 - rw/2
	}
	return (s%n + n) % n
}

// The aligned hypotheses: in the identity orientation 8 geometries × 2 signs, of which the
// primary bases' own cell sizes with grey levels as marked are the primary reads and their
// other cell sizes the alternates; 7 times as many in the other orientations.
var (
	identityTests        = float64(len(geometries)*len(geomLarge.alternatives())) * 2
	alignedOrientedTests = 7 * identityTests
	pilotShare           = primaryWeight + alternateWeight + alignedWeight + orientedWeight + searchWeight + coarseWeight
)

// primaryBases are the base geometries the primary aligned read tries on a w×h image: the
// one the embedder uses at that size and, under smallSide, also the large one, since the image
// may be a downscaled copy of a larger one.
func primaryBases(w, h int) []geometry {
	g := geometryFor(w, h)
	if g == geomLarge {
		return []geometry{g}
	}
	return []geometry{g, geomLarge}
}

// Thresholds are the pilot scores at which the pilot alone makes a mark present, by family
// of hypotheses, whatever the read's weights (the Gaussian form of the tail). With a decoded
// payload, or at a read whose cells agree with the key evenly enough that the tail for its
// own weights is smaller (readTail), lower scores suffice.
type Thresholds struct {
	// Primary: the aligned read of an image that was not cropped, in its own orientation, at
	// the base cell size for its size, grey levels as marked.
	Primary float64 `json:"primary"`
	// Alternate: the same at the self-check's other cell sizes.
	Alternate float64 `json:"alternate"`
	// Aligned: the same at the other base geometry's cell sizes, or with inverted grey levels.
	Aligned float64 `json:"aligned"`
	// Oriented: an aligned read in one of the seven other orientations.
	Oriented float64 `json:"oriented"`
	// Search: the full search over scales, orientations and shifts (crops).
	Search float64 `json:"search"`
	// Coarse: the primary read joined with the coarse layer's read (Result.CoarseScore).
	Coarse float64 `json:"coarse"`
}

// PilotThresholds returns the pilot-alone thresholds of each family for images whose short
// side is at least 160 px (below, the primary read tries two base geometries and its
// thresholds are about 0.1σ higher).
func PilotThresholds() Thresholds {
	z := func(n, w float64) float64 { return signThreshold(n, w*FalsePositiveTarget) }
	na := float64(len(geomLarge.alternatives()) - 1)
	return Thresholds{
		Primary:   z(1, primaryWeight),
		Alternate: z(na, alternateWeight),
		Aligned:   z(identityTests-1-na, alignedWeight),
		Oriented:  z(alignedOrientedTests, orientedWeight),
		Search:    z(searchTests(), searchWeight),
		Coarse:    joinedThreshold(1, coarseWeight*FalsePositiveTarget),
	}
}

// searchTests counts the full search's hypotheses, each a full search over 8 orientations,
// all shifts and two signs: every point of the fine grid in both geometries; the refined
// reads, refinePhases resamplings at the pitch of a candidate's scale, counted at every fine
// scale refine would resample for (which candidates are refined depends on the key, so every
// one it could refine is a hypothesis); and the stretched crop read, whose pitch follows from
// the pixels alone (refinePhases resamplings).
func searchTests() float64 {
	refinable := 0
	for _, r := range scaleGrid(fineStep) {
		if math.Abs(math.Log(r)) >= refineMin {
			refinable++
		}
	}
	grids := len(geometries)*(len(scaleGrid(fineStep))+refinable*refinePhases) + refinePhases
	return float64(grids) * 8 * tileBins * tileBins * 2
}

// medianFilter is the exact 5×5 median with the window clamped at the borders (edge samples
// repeated). It works on integer keys that order as the values do (medianKey), so that every
// comparison compiles to a conditional move rather than a branch, whose outcome on image
// noise no predictor guesses. Per row, each column of five is sorted once (a 9-comparator
// network) and each two neighbouring columns are merged into a sorted ten. A window's five
// columns are then two such tens and one five: merging the tens' first 13 values, the
// window's 13th smallest is min over i of max(m[12−i], c[i−1]) (i = 0…5, the smallest
// value that 13 taken from the two sorted lists can end on). Hand-written because no
// library in use provides a 2-D median.
func medianFilter(v []float32, w, h int) []float32 {
	out := make([]float32, len(v))
	keys := make([]int32, len(v))
	for i, f := range v {
		keys[i] = medianKey(f)
	}
	const inf = math.MaxInt32
	cols := make([][8]int32, w+4) // sorted columns x−2 … w+1, padded with inf
	pairs := make([][16]int32, w+3)
	for i := range cols {
		cols[i] = [8]int32{5: inf, 6: inf, 7: inf}
	}
	for i := range pairs {
		pairs[i] = [16]int32{10: inf, 11: inf, 12: inf, 13: inf, 14: inf, 15: inf}
	}
	var m [16]int32
	for y := 0; y < h; y++ {
		var rows [5][]int32
		for j := range rows {
			yy := min(h-1, max(0, y+j-2))
			rows[j] = keys[yy*w : (yy+1)*w]
		}
		for x := -2; x < w+2; x++ {
			xx := min(w-1, max(0, x))
			c := &cols[x+2]
			c[0], c[1], c[2], c[3], c[4] = sort5(rows[0][xx], rows[1][xx], rows[2][xx], rows[3][xx], rows[4][xx])
		}
		for x := range pairs {
			mergeKeys(pairs[x][:10], cols[x][:], cols[x+1][:])
		}
		o := out[y*w : (y+1)*w]
		for x := range o {
			mergeKeys(m[:13], pairs[x][:], pairs[x+2][:])
			c := &cols[x+4]
			k := m[12]
			k = min(k, max(m[11], c[0]))
			k = min(k, max(m[10], c[1]))
			k = min(k, max(m[9], c[2]))
			k = min(k, max(m[8], c[3]))
			k = min(k, max(m[7], c[4]))
			o[x] = medianValue(k)
		}
	}
	return out
}

// medianKey maps a float32 to an int32 that orders as the floats do (negative values have
// their magnitude bits flipped); medianValue is its inverse.
func medianKey(f float32) int32 {
	b := int32(math.Float32bits(f))
	return b ^ (b >> 31 & math.MaxInt32)
}

func medianValue(k int32) float32 {
	return math.Float32frombits(uint32(k ^ (k >> 31 & math.MaxInt32)))
}

// sort5 sorts five keys with the 9-comparator network.
func sort5(a, b, c, d, e int32) (int32, int32, int32, int32, int32) {
	a, b = min(a, b), max(a, b)
	d, e = min(d, e), max(d, e)
	c, e = min(c, e), max(c, e)
	c, d = min(c, d), max(c, d)
	b, e = min(b, e), max(b, e)
	a, d = min(a, d), max(a, d)
	a, c = min(a, c), max(a, c)
	b, d = min(b, d), max(b, d)
	b, c = min(b, c), max(b, c)
	return a, b, c, d, e
}

// mergeKeys writes the len(dst) smallest of two sorted key lists into dst, without branches
// on the keys. Each list must hold, after its keys, at least len(dst) values of
// math.MaxInt32 or run past len(dst) keys.
func mergeKeys(dst, a, b []int32) {
	ia, ib := 0, 0
	for j := range dst {
		x, y := a[ia], b[ib]
		t := 0
		if x <= y {
			t = 1
		}
		dst[j] = min(x, y)
		ia += t
		ib += 1 - t
	}
}
