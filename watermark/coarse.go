package watermark

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// The coarse layer. On a small image (a 256 px radiograph) the tile's cells are about 2.3 px
// wide, and a quarter-size copy averages four of them into one pixel: the tile is gone.
// What survives is what is coarse. So on images whose short side is between
// coarseMinSide and coarseMaxSide the embedder adds, beside the tile, a second pattern with
// coarseShare of the mark's energy: coarseCells cells along each axis (4 px on a 256 px
// image, one pixel on its quarter-size copy), covering the whole frame once, not tiled,
// with key-random signs and the same perceptual shape as the tile. It carries no payload
// and has no synchronisation of its own: it is read only where the frame was kept
// (rescales, JPEG, blur, noise, grey-level changes), by resampling the image to
// coarseBins samples per cell, whitening it like the working grids, and correlating each
// cell's bilinear footprint with its sign. Its score over random keys is bounded exactly
// like the pilot's (tail.go; the signs come from their own key stream, independent of the
// tile's), and it is joined with the primary aligned read as (z_P + z_C)/√2, which
// is again a normalised sum of independent random signs: a family of its own with
// coarseWeight of the false-positive budget (one hypothesis per primary base geometry).
// How much of the mark the layer gets is chosen per image (chooseCoarse): coarseShare where
// a quarter-size copy of the result is found with that, coarseStrongShare where only the
// stronger layer makes it found, and none where neither would and the layer reads too
// weakly to help after the other attacks (coarseKeep); the detector reads it all the same.
const (
	coarseCells = 64
	coarseBins  = 3
	coarseShare = 0.11
	// coarseStrongShare is the layer's share on images whose quarter-size copy the base share
	// leaves unfound and this one does not. On 20 chest X-rays of the suite (the layer at
	// this share wherever the base share was not enough) ×0.25 presence went from 7 to 18
	// (with a Catmull-Rom downscaler the embedder does not simulate, 5 to 16; ×0.3, 15 to
	// 19) for one presence after a 50 % crop (18 to 17); 0.2 gave 11 for the same cost.
	coarseStrongShare = 0.30
	// coarseMidShare is tried before coarseStrongShare: where it is enough, the tile keeps
	// more of the mark (docs/watermark.md, *How much of the mark the layer gets*).
	coarseMidShare = 0.20
	// coarseMargin: the base share is kept without trying the strong one when the simulated
	// quarter-size copy reads this much above the join's threshold; the strong share is
	// taken when its copy reads coarseStrongMargin above it. Other downscalers than the
	// simulated one (area averaging) leave a little less.
	coarseMargin       = 0.5
	coarseStrongMargin = 0.1
	// coarseSkipSlack: a share is not tried where its copy's predicted read falls this much
	// or more short of what taking it needs (sharePredicted, which over 60 chest X-rays was
	// at most 1.1σ under the measured read).
	coarseSkipSlack = 1.2
	coarseMinSide   = 128
	coarseMaxSide   = 320
	coarseWeight    = 0.05
	// coarseKeep: where the strong share does not make a quarter-size copy found either,
	// the embedder reads the base share's layer on its own result and embeds again without
	// it where it scores under this. No image measured with a weaker layer was found after
	// a quarter-size copy (the lowest found: 4.67σ of 48 generated images, 6.48σ of 23 chest
	// X-rays), so there the layer only takes the tile's energy. It is left out on 10 of 100
	// chest X-rays and 18 of 48 generated images. Against the layer everywhere: ×0.5 100 →
	// 101 and crop 80 % to 224×224 97 → 98 on the 103-image suite, crop 80 % to 224×224 42 →
	// 44 and blur 47 → 46 on the 48 generated images, ×0.25 the same (29, 15). At 6.2σ the
	// suite gained crop 50 % (86 → 89) but the generated images lost ×0.25 (15 → 6).
	coarseKeep = 4.5
	// coarseReadSide: the detector reads the coarse layer on images whose short side is
	// under this (the marked sizes, their copies at any smaller scale and up to twice the
	// size). A larger image that came from a small marked one was enlarged, which keeps the
	// tile readable; skipping the read keeps verification at 2048 px within its budget.
	coarseReadSide = 2 * coarseMaxSide
)

// usesCoarse says whether the embedder may add the coarse layer to a w×h image
// (chooseCoarse decides how much).
func usesCoarse(w, h int) bool {
	s := min(w, h)
	return s >= coarseMinSide && s < coarseMaxSide
}

// coarsePattern is the coarse layer's cell signs for one image shape: nx×ny cells over the
// whole frame.
type coarsePattern struct {
	nx, ny int
	signs  []float32
}

// coarseSeed derives the coarse layer's key stream, separate from the tile's.
func coarseSeed(k Key) [32]byte {
	mac := hmac.New(sha256.New, k.secret)
	mac.Write([]byte("augment/watermark/coarse/v1"))
	var seed [32]byte
	copy(seed[:], mac.Sum(nil))
	return seed
}

// newCoarsePattern draws the signs of the coarse cells: coarseCells along each axis
// whatever the image's aspect, so that the cells follow the frame (on a 256×218 image they
// are 4×3.4 px). A resize of any aspect, which rounds the size to whole pixels, keeps the
// pattern exactly, and the detector needs no hypothesis about the marked image's aspect.
// Each row of cells is drawn from its own stream.
func newCoarsePattern(seed [32]byte) coarsePattern {
	nx, ny := coarseCells, coarseCells
	p := coarsePattern{nx: nx, ny: ny, signs: make([]float32, nx*ny)}
	for y := 0; y < ny; y++ {
		s := seed
		binary.LittleEndian.PutUint32(s[28:], binary.LittleEndian.Uint32(s[28:])^uint32(y))
		rng := rand.New(rand.NewChaCha8(s))
		var bits uint64
		for x := 0; x < nx; x++ {
			if x%64 == 0 {
				bits = rng.Uint64()
			}
			p.signs[y*nx+x] = float32(1 - 2*int(bits&1))
			bits >>= 1
		}
	}
	return p
}

// cellAt maps sample i of n (covering the frame) onto m cells: the lower cell and the
// weight of the upper one, for bilinear interpolation between cell centres (interpAt with
// n/m samples per cell).
func cellAt(i, n, m int) (int, float32) {
	return interpAt(i, float64(n)/float64(m), m)
}

// render draws the pattern on a fw×fh grid covering the whole frame.
func (p coarsePattern) render(fw, fh int) []float32 {
	out := make([]float32, fw*fh)
	xs, wx := make([]int, fw), make([]float32, fw)
	for x := range xs {
		xs[x], wx[x] = cellAt(x, fw, p.nx)
	}
	for y := 0; y < fh; y++ {
		y0, fy := cellAt(y, fh, p.ny)
		r0, r1 := p.signs[y0*p.nx:], p.signs[(y0+1)*p.nx:]
		for x := 0; x < fw; x++ {
			x0, fx := xs[x], wx[x]
			a := r0[x0] + fx*(r0[x0+1]-r0[x0])
			b := r1[x0] + fx*(r1[x0+1]-r1[x0])
			out[y*fw+x] = a + fy*(b-a)
		}
	}
	return out
}

// read scores the pattern on a whitened fw×fh field covering the whole frame: each cell's
// statistic G_c is the field summed over the cell's bilinear footprint, and the score is
// Σ s_c·G_c / √(Σ G_c²), a normalised sum of random signs, whose tail signTail bounds.
func (p coarsePattern) read(field []float32, fw, fh int) float64 {
	g := make([]float64, len(p.signs))
	xs, wx := make([]int, fw), make([]float64, fw)
	for x := range xs {
		var f float32
		xs[x], f = cellAt(x, fw, p.nx)
		wx[x] = float64(f)
	}
	for y := 0; y < fh; y++ {
		y0, f := cellAt(y, fh, p.ny)
		fy := float64(f)
		r0, r1 := g[y0*p.nx:], g[(y0+1)*p.nx:]
		for x, v := range field[y*fw : (y+1)*fw] {
			x0, fx := xs[x], wx[x]
			a, b := float64(v)*(1-fy), float64(v)*fy
			r0[x0] += a * (1 - fx)
			r0[x0+1] += a * fx
			r1[x0] += b * (1 - fx)
			r1[x0+1] += b * fx
		}
	}
	var num, den float64
	for c, v := range g {
		num += float64(p.signs[c]) * v
		den += v * v
	}
	if den <= 0 {
		return 0
	}
	return num / math.Sqrt(den)
}

// coarseRead is the coarse layer's score on img in its own orientation.
func coarseRead(img *Gray, seed [32]byte) float64 {
	f, fw, fh := coarseField(img)
	return newCoarsePattern(seed).read(f, fw, fh)
}

// coarseField is what the coarse layer is read from: the image resampled to coarseBins
// samples per cell along each axis, whitened as the working grids are.
func coarseField(img *Gray) ([]float32, int, int) {
	fw, fh := coarseCells*coarseBins, coarseCells*coarseBins
	v, _ := resampleGray(img, fw, fh, false)
	f, _ := normalisedField(v, fw, fh)
	return f, fw, fh
}

// chooseCoarse decides how much of the mark the coarse layer gets on img, given weak, img
// marked with the base share at geometry g, and returns the result with the share it took
// (0: no layer). The mark exists for the quarter-size copy, so the embedder makes one of its
// result (area averaging, as Rescale) and reads it as the detector's joined read does. The
// base share is kept where the copy reads well over the join's threshold; else the mid and
// then the strong share are tried, and the first whose copy is found is taken; else the base
// share is kept where the layer reads at coarseKeep or more on the marked image (it helps
// heavy JPEG and stays ready for milder downscales), and the layer is left out where it
// does not. A share whose copy the base copy's reads predict (sharePredicted) to fall
// coarseSkipSlack or more short of the threshold is not tried.
func chooseCoarse(img, weak *Gray, lay *layout, bits []byte, g geometry, fl floors) (*Gray, float64, error) {
	qw, qh := int(math.Round(float64(img.Width)/4)), int(math.Round(float64(img.Height)/4))
	need := joinedThreshold(float64(len(primaryBases(qw, qh))), coarseWeight*FalsePositiveTarget)
	keep := coarseRead(weak, lay.coarse) >= coarseKeep
	df := newDetector(lay, tileBins) // one set of templates for every copy read
	p, c := quarterReads(weak, lay, df)
	if keep && joined(p, c) >= need+coarseMargin {
		return weak, coarseShare, nil
	}
	for _, share := range []float64{coarseMidShare, coarseStrongShare} {
		if sharePredicted(p, c, share) < need+coarseStrongMargin-coarseSkipSlack {
			continue
		}
		strong, err := embedAt(img, lay, bits, g, fl, share)
		if err != nil {
			return nil, 0, err
		}
		if joined(quarterReads(strong, lay, df)) >= need+coarseStrongMargin {
			return strong, share, nil
		}
	}
	if keep {
		return weak, coarseShare, nil
	}
	none, err := embedAt(img, lay, bits, g, fl, 0)
	return none, 0, err
}

// quarterReads are the primary aligned read and the coarse read of a quarter-size copy of
// marked, as Detect computes them on a copy it finds unstretched (primaryRead), read with df
// (the key's detector at tileBins); zero where the copy is under MinDetectSide.
func quarterReads(marked *Gray, lay *layout, df *detector) (primary, coarse float64) {
	q := Rescale(marked, 0.25)
	if q.Width < MinDetectSide || q.Height < MinDetectSide {
		return 0, 0
	}
	return primaryRead(q, df), coarseRead(q, lay.coarse)
}

// joined is the detector's join of a primary read and a coarse read, (max(0, z_P) + z_C)/√2.
func joined(primary, coarse float64) float64 {
	return (max(0, primary) + coarse) / math.Sqrt2
}

// sharePredicted predicts the joined read of a quarter-size copy of the image marked with
// share of the mark in the coarse layer from the reads of one marked with coarseShare: the
// layer's amplitude goes as the square root of its share and the tile's as that of the rest,
// the mark's total energy being set by the floors. On 60 chest X-rays the measured read was
// at most 0.62σ above the prediction for 20 % (up to 2.1σ below it, on one image whose
// primary read moved) and at most 1.1σ above it for 30 %.
func sharePredicted(primary, coarse, share float64) float64 {
	return joined(primary*math.Sqrt((1-share)/(1-coarseShare)), coarse*math.Sqrt(share/coarseShare))
}
