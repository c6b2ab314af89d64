package watermark

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestNullOverKeys checks the identity behind the detector's null distribution: at every
// shift and orientation the pilot correlation is Σ σ_c·G_c over the pilot cells, and the
// variance the detector divides by is Σ G_c², where G_c is the fold correlated with cell c's
// own (oriented) template. Both are computed here by brute force and compared.
func TestNullOverKeys(t *testing.T) {
	key := benchKey(t)
	lay, err := newLayout(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{tileBins, tileBins / 2} {
		t.Run(fmt.Sprintf("%dbins", n), func(t *testing.T) {
			d := newDetector(lay, n)
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			fold := make([]float64, n*n)
			for i := range fold {
				fold[i] = rng.NormFloat64()
			}
			d.scores(fold)
			// Each pilot cell's template in the embedding orientation.
			cellTpl := make(map[int][]float64)
			for _, c := range lay.pilotCells {
				one := make([]float64, tileCells*tileCells)
				one[c] = 1
				cellTpl[c] = shrinkTile(renderTile(one), n)
			}
			for _, o := range []int{0, 1, 3, 4, 5, 7} {
				perm := dihedral(o, n)
				for _, sh := range [][2]int{{0, 0}, {1, 0}, {3, 5}, {n - 1, n / 2}} {
					var corr, vars float64
					for _, c := range lay.pilotCells {
						g := 0.0
						for i, v := range cellTpl[c] {
							j := perm[i]
							x, y := j%n, j/n
							g += v * fold[((y+sh[1])%n)*n+(x+sh[0])%n]
						}
						corr += lay.sign[c] * g
						vars += g * g
					}
					idx := o*n*n + sh[1]*n + sh[0]
					if math.Abs(d.corr[idx]-corr) > 1e-9*math.Max(1, math.Abs(corr)) {
						t.Errorf("orientation %d shift %v: correlation %g, brute force %g", o, sh, d.corr[idx], corr)
					}
					if math.Abs(d.vars[idx]-vars) > 1e-9*math.Max(1, vars) {
						t.Errorf("orientation %d shift %v: null variance %g, brute force %g", o, sh, d.vars[idx], vars)
					}
				}
			}
		})
	}
}

// TestPeriodicHostNoFalsePositive: an unmarked image made of a pattern that repeats with
// exactly the mark's tile period (the case a null estimated from the image's own noise gets
// wrong) is not reported marked, whatever the key.
func TestPeriodicHostNoFalsePositive(t *testing.T) {
	img := periodicHost(7, 40, 3)
	th := PilotThresholds()
	var maxScore, maxPrimary float64
	for k := 0; k < 12; k++ {
		key, err := NewKey([]byte(fmt.Sprintf("periodic-host-key-%02d-0123456789", k)))
		if err != nil {
			t.Fatal(err)
		}
		r, err := Detect(img, key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Present || r.Payload != nil {
			t.Errorf("key %d: periodic unmarked image reported present (score %.1f, FP %.2g)", k, r.Score, r.FalsePositive)
		}
		// Each family's best score stays well under that family's threshold: the aligned
		// reads (a handful of hypotheses) and the full search (millions, whose largest null
		// score is about 6).
		lay, err := newLayout(key)
		if err != nil {
			t.Fatal(err)
		}
		reads := alignedCandidates(img, newDetector(lay, tileBins), nil)
		for _, f := range []struct {
			name     string
			score, z float64
		}{
			{"primary aligned read", reads.primary, th.Primary},
			{"alternate aligned reads", reads.alternate, th.Alternate},
			{"other aligned reads", reads.other, th.Aligned},
			{"aligned reads in other orientations", math.Abs(reads.oriented.z), th.Oriented},
			{"full search", r.Score, th.Search},
		} {
			if f.score > f.z-1 {
				t.Errorf("key %d: %s score %.2f is too close to its threshold %.2f for an unmarked image", k, f.name, f.score, f.z)
			}
		}
		maxScore, maxPrimary = max(maxScore, r.Score), max(maxPrimary, reads.primary)
	}
	t.Logf("periodic host, 12 keys: highest score %.2f, highest primary aligned read %.2f", maxScore, maxPrimary)
}

// TestEmbedSelfCheck: on an image whose texture repeats with exactly the tile period of the
// default geometry, the host outweighs the mark there; Embed's self-check notices and embeds
// with smaller cells instead, which the detector finds at another scale.
func TestEmbedSelfCheck(t *testing.T) {
	img := periodicHost(11, 25, 2)
	key := benchKey(t)
	p := Payload{ID: 0xABCDE, Version: 1}
	lay, bits := layoutAndBits(t, key, p)
	first, err := embedAt(img, lay, bits, geomLarge, floors{DefaultPSNR, DefaultSSIM}, coarseShare)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := Detect(first, key); r.Payload != nil && *r.Payload == p {
		t.Skip("the default geometry already verifies on this host: the test image no longer exercises the self-check")
	}
	m, err := Embed(img, key, p)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Detect(m, key)
	if err != nil {
		t.Fatal(err)
	}
	if r.Payload == nil || *r.Payload != p {
		t.Fatalf("self-checked embedding did not verify: %+v", r)
	}
	if math.Abs(r.Scale-1) < 0.03 {
		t.Errorf("found at scale %.3f: the self-check should have changed the cell size", r.Scale)
	}
	if ps, _ := PSNR(img, m); ps < 45 {
		t.Errorf("PSNR %.2f < 45", ps)
	}
	t.Logf("default geometry failed; verified at scale %.3f, score %.1f", r.Scale, r.Score)
}

// periodicHost is a 224 px 8-bit image (the large geometry: one working sample per pixel,
// tile period 32 px) made of a random pattern of standard deviation amp that repeats with
// exactly the tile period, plus noise of standard deviation noise.
func periodicHost(seed uint64, amp, noise float64) *Gray {
	const side = 224
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	period := make([]float64, tileBins*tileBins)
	for i := range period {
		period[i] = amp * rng.NormFloat64()
	}
	img := NewGray(side, side, 8)
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			v := 128 + period[(y%tileBins)*tileBins+x%tileBins] + noise*rng.NormFloat64()
			img.Pix[y*side+x] = uint16(max(0, min(255, math.Round(v))))
		}
	}
	return img
}

// TestAlignedRead: on marked images that were not cropped, the aligned reads (scale 1 at the
// embedding's own alignment, computed from the image's size) find the pilot at full strength
// in every orientation, for several shapes, both geometries and a cell size chosen by the
// self-check, and after a ×0.5 rescale; on the unmarked images they find nothing.
func TestAlignedRead(t *testing.T) {
	key := benchKey(t)
	lay, err := newLayout(key)
	if err != nil {
		t.Fatal(err)
	}
	df := newDetector(lay, tileBins)
	// The periodic host is TestEmbedSelfCheck's: the self-check moves it to another cell
	// size, and its host outweighs the mark once halved, so it skips that check.
	cases := []struct {
		name string
		img  *Gray
		min  float64
		half bool
	}{
		{"square 16-bit", syntheticCT(256, 256, 1), 9, true},
		{"wide odd", syntheticCT(301, 203, 2), 9, true},
		{"tall", syntheticCT(180, 333, 3), 9, true},
		{"small geometry", syntheticCT(120, 150, 4), 8, true},
		{"self-checked", periodicHost(11, 25, 2), 8, false},
		{"large, read from a copy", syntheticCT(1433, 1100, 5), 9, true},
	}
	th := PilotThresholds()
	za, zo := th.Primary, th.Oriented
	for _, c := range cases {
		m, err := Embed(c.img, key, Payload{ID: 7, Version: 1})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for o := 0; o < 8; o++ {
			reads := alignedCandidates(Orient(m, o), df, nil)
			got := reads.identity
			if o != 0 {
				got = reads.oriented
			}
			if math.Abs(got.z) < c.min || got.d != o {
				t.Errorf("%s %s: aligned read scores %.2f in orientation %d, want ≥ %.0f in %d", c.name, orientationNames[o], got.z, got.d, c.min, o)
			}
		}
		id := alignedCandidates(Rescale(m, 0.5), df, nil).identity
		// Halved, the read still stands above anything an unmarked image scores (under
		// za − 1, checked below).
		if c.half && math.Abs(id.z) < za-1 {
			t.Errorf("%s ×0.5: aligned read scores %.2f, under %.2f", c.name, id.z, za-1)
		}
		// Rotated after the rescale, the read is as strong as unrotated (within the rounding
		// of the long side's working grid).
		or := alignedCandidates(Orient(Rescale(m, 0.5), 5), df, nil).oriented
		if c.half && math.Abs(or.z) < math.Abs(id.z)-0.5 {
			t.Errorf("%s ×0.5 rotated: aligned read scores %.2f, unrotated %.2f", c.name, or.z, id.z)
		}
		un := alignedCandidates(c.img, df, nil)
		if math.Abs(un.identity.z) > za-1 || math.Abs(un.oriented.z) > zo-1 {
			t.Errorf("%s unmarked: aligned reads score %.2f and %.2f", c.name, un.identity.z, un.oriented.z)
		}
	}
}

// TestCoarsePhases checks that the coarse stage of the scale search finds marks whose cells
// straddle its 2×2 averaging blocks, as after many crops: on these three chest X-rays and
// crops, a single halving lost the mark (best search scores 4.6, 5.1 and 4.6 at wrong
// scales); the two halvings find it at the crop's scale, at 6.7 or more (8 or more before
// the coarse layer took 15 % of the mark's energy on small images).
func TestCoarsePhases(t *testing.T) {
	key := benchKey(t)
	lay, err := newLayout(key)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]float64{"cxr42-256x231": 0.85, "cxr56-256x256": 0.6, "cxr59-256x256": 0.75}
	for _, cc := range cropCases(t, cases) {
		name, area := cc.name, cc.area
		m, err := Embed(cc.img, key, Payload{ID: uint64(cc.index) + 7, Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		c := CropArea(m, area)
		dc, df := newDetector(lay, tileBins/2), newDetector(lay, tileBins)
		var best candidate
		for _, geo := range geometries {
			f, fw, fh := whitenedField(c, geo)
			for _, cand := range searchGeometry(f, fw, fh, geo, dc, df) {
				if math.Abs(cand.z) > math.Abs(best.z) {
					best = cand
				}
			}
		}
		t.Logf("%s, crop to %.0f %%: search found %.2f at scale %.3f", name, 100*area, best.z, best.r)
		want := 1 / math.Sqrt(area) // the crop's cell scale
		if best.z < 6.5 || math.Abs(best.r/want-1) > 0.02 {
			t.Errorf("%s, crop to %.0f %%: search found %.2f at scale %.3f, want a positive score of 6.5 or more at %.3f", name, 100*area, best.z, best.r, want)
		}
	}
}

// cropCase is a corpus image of the 100-image sample and the share of its area a test crops
// it to.
type cropCase struct {
	name  string
	index int // in the sample
	img   *Gray
	area  float64
}

// cropCases picks the named images (name → area) from testImages' 100-image sample.
func cropCases(t *testing.T, areas map[string]float64) []cropCase {
	t.Helper()
	names, imgs := testImages(t, 100)
	var out []cropCase
	for j, g := range imgs {
		if a, ok := areas[names[j]]; ok {
			out = append(out, cropCase{names[j], j, g, a})
		}
	}
	if len(out) != len(areas) {
		t.Fatalf("found %d of the %d test images in the corpus sample", len(out), len(areas))
	}
	return out
}

// TestPrimaryRead: the aligned read at the image's own base cell size, with its grey levels
// as marked, is one hypothesis with its own share of the false-positive budget, so a mark
// found there alone, above that family's threshold but under the other aligned families'
// (6.40 against 6.80), is present. The marked image is made noisier until its primary read
// falls into that window with no payload decoded.
func TestPrimaryRead(t *testing.T) {
	key := benchKey(t)
	lay, err := newLayout(key)
	if err != nil {
		t.Fatal(err)
	}
	df := newDetector(lay, tileBins)
	th := PilotThresholds()
	if !(th.Primary < th.Alternate && th.Alternate < th.Aligned && th.Aligned < th.Oriented && th.Oriented < th.Search) {
		t.Fatalf("thresholds out of order: %+v", th)
	}
	m, err := Embed(syntheticCT(256, 256, 3), key, Payload{ID: 11, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 400; i++ {
		noisy := AddNoise(m, 0.02+0.0005*float64(i), uint64(i))
		reads := alignedCandidates(noisy, df, nil)
		if reads.primary < th.Primary+0.02 || reads.primary > th.Alternate-0.02 {
			continue
		}
		r, err := Detect(noisy, key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Payload != nil {
			continue
		}
		t.Logf("noise %.4f of range: primary read %.2f, no payload, FP %.2g", 0.02+0.0005*float64(i), reads.primary, r.FalsePositive)
		if !r.Present || r.FalsePositive > FalsePositiveTarget {
			t.Errorf("primary read %.2f over its threshold %.2f, but present=%v FP %.2g", reads.primary, th.Primary, r.Present, r.FalsePositive)
		}
		return
	}
	t.Fatal("no noise level put the primary read between its threshold and the alternates' without a payload")
}

// TestRefinedRead checks the read of a cropped image at its found scale: the image is
// resampled so that the cells are exactly two samples wide, on two grids half a sample
// apart. On these crops of chest X-rays the payload was lost when the resampled grid only
// approximated the cell size (rounded to whole samples) on a single grid.
func TestRefinedRead(t *testing.T) {
	key := benchKey(t)
	cases := map[string]float64{"cxr6-248x256": 0.6, "cxr14-256x243": 0.75, "cxr42-256x231": 0.75, "cxr96-245x256": 0.75}
	for _, cc := range cropCases(t, cases) {
		name, area := cc.name, cc.area
		p := Payload{ID: 0x00C0FFEE00 + uint64(cc.index), Version: 1}
		m, err := Embed(cc.img, key, p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Detect(CropArea(m, area), key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Payload == nil || *r.Payload != p {
			t.Errorf("%s, crop to %.0f %%: payload %v (score %.2f), want %v", name, 100*area, r.Payload, r.Score, p)
		}
	}
}

// TestAlignedSelfCheck checks the embedder's self-check (detectWith without the search)
// against Detect: it never reports a smaller false-positive probability, and a payload it
// reads is Detect's, on marked, attacked, unmarked and wrong-key images.
func TestAlignedSelfCheck(t *testing.T) {
	key := benchKey(t)
	other, err := NewKey([]byte("another-key-for-the-self-check"))
	if err != nil {
		t.Fatal(err)
	}
	var read int
	for i, g := range cxrImages(t, 4) {
		p := Payload{ID: 0x5E1F + uint64(i), Version: 1}
		m, err := Embed(g, key, p)
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			img  *Gray
			key  Key
		}{
			{"marked", m, key},
			{"crop 75 %", CropArea(m, 0.75), key},
			{"×0.5", Rescale(m, 0.5), key},
			{"unmarked", g, key},
			{"wrong key", m, other},
		}
		for _, c := range cases {
			full, err := Detect(c.img, c.key)
			if err != nil {
				t.Fatal(err)
			}
			aligned, err := detectWith(c.img, c.key, false)
			if err != nil {
				t.Fatal(err)
			}
			if aligned.FalsePositive < full.FalsePositive*(1-1e-9) {
				t.Errorf("image %d, %s: aligned reads give false-positive probability %.3g, under Detect's %.3g", i, c.name, aligned.FalsePositive, full.FalsePositive)
			}
			if aligned.Payload != nil && (full.Payload == nil || *full.Payload != *aligned.Payload) {
				t.Errorf("image %d, %s: aligned reads decode %+v, Detect %+v", i, c.name, aligned.Payload, full.Payload)
			}
			if c.name == "marked" && (aligned.Payload == nil || *aligned.Payload != p) {
				t.Errorf("image %d: the aligned reads do not read the payload Embed verified: %+v", i, aligned)
			}
			if aligned.Payload != nil {
				read++
			}
		}
	}
	t.Logf("aligned reads decoded %d of 20 cases", read)
}

// TestPilotTerms: the per-cell terms the detector reads at a candidate (the weights of
// Chernoff's bound, readTail) sum to the candidate's correlation and give its score, at
// every orientation, at shifts, for both polarities.
func TestPilotTerms(t *testing.T) {
	key := benchKey(t)
	lay, err := newLayout(key)
	if err != nil {
		t.Fatal(err)
	}
	n := tileBins
	d := newDetector(lay, n)
	rng := rand.New(rand.NewPCG(3, 5))
	fold := make([]float64, n*n)
	for i := range fold {
		fold[i] = rng.NormFloat64()
	}
	d.scores(fold)
	for o := 0; o < 8; o++ {
		for _, sh := range [][2]int{{0, 0}, {1, 0}, {3, 5}, {n - 1, n / 2}} {
			idx := o*n*n + sh[1]*n + sh[0]
			z := d.corr[idx] / math.Sqrt(d.vars[idx])
			v := d.pilotTerms(candidate{d: o, sx: sh[0], sy: sh[1], z: z, fold: fold})
			if len(v) != len(lay.pilotCells) {
				t.Fatalf("%d terms for %d pilot cells", len(v), len(lay.pilotCells))
			}
			sum, sq := 0.0, 0.0
			for _, x := range v {
				sum += x
				sq += x * x
			}
			if math.Abs(sum-math.Abs(d.corr[idx])) > 1e-9*math.Max(1, math.Abs(sum)) {
				t.Errorf("orientation %d shift %v: terms sum to %g, correlation %g", o, sh, sum, d.corr[idx])
			}
			if math.Abs(sum/math.Sqrt(sq)-math.Abs(z)) > 1e-9 {
				t.Errorf("orientation %d shift %v: terms give score %g, detector %g", o, sh, sum/math.Sqrt(sq), z)
			}
		}
	}
}

// TestSharperBoundCrops: after a crop keeping half the area, the search often finds the
// pilot under the Gaussian form's threshold for its family, where most cells agree with
// the key; the tail at the read's own weights (readTail) still bounds the pilot's
// false-positive probability under 10⁻⁹ there, without the code's help. Some of these crops
// must be found so, none with a wrong payload, and the Gaussian form alone must not have
// sufficed at their scores.
func TestSharperBoundCrops(t *testing.T) {
	key := benchKey(t)
	imgs := cxrImages(t, 12)
	th := PilotThresholds()
	below := 0
	for j, g := range imgs {
		p := Payload{ID: 0x00C0FFEE00 + uint64(j), Version: 1}
		m, err := Embed(g, key, p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Detect(CropArea(m, 0.5), key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Payload != nil && *r.Payload != p {
			t.Errorf("image %d: wrong payload %v", j, r.Payload)
		}
		if r.Present && r.Score < th.Search && r.pilotFP <= FalsePositiveTarget {
			below++
			if gauss := signTail(searchTests(), r.Score) / searchWeight; gauss <= FalsePositiveTarget {
				t.Errorf("image %d: the Gaussian form alone gives %.2g at %.2fσ", j, gauss, r.Score)
			}
		}
		t.Logf("image %d: present %v, payload %v, score %.2f, FP %.2g, pilot alone %.2g", j, r.Present, r.Payload != nil, r.Score, r.FalsePositive, r.pilotFP)
	}
	if below == 0 {
		t.Errorf("no crop's pilot alone was found present under the search's Gaussian threshold %.2fσ", th.Search)
	}
	t.Logf("%d of %d crops present on the pilot alone below %.2fσ", below, len(imgs), th.Search)
}
