package watermark

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCoarsePatternRead checks the coarse read against its definition: Σ s_c·G_c equals the
// field's correlation with the rendered pattern (the read is the render's adjoint), and the
// score is that over √(Σ G_c²) computed from each cell's own rendered footprint.
func TestCoarsePatternRead(t *testing.T) {
	key := benchKey(t)
	seed := coarseSeed(key)
	for _, sz := range [][2]int{{256, 220}, {178, 256}, {200, 200}} {
		w, h := sz[0], sz[1]
		p := newCoarsePattern(seed)
		nx, ny := coarseCells, coarseCells
		if p.nx != nx || p.ny != ny || len(p.signs) != nx*ny {
			t.Fatalf("%d×%d: pattern %d×%d cells, want %d×%d", w, h, p.nx, p.ny, nx, ny)
		}
		pos := 0
		for _, s := range p.signs {
			if s != 1 && s != -1 {
				t.Fatalf("%d×%d: sign %v", w, h, s)
			}
			if s > 0 {
				pos++
			}
		}
		if f := float64(pos) / float64(len(p.signs)); f < 0.45 || f > 0.55 {
			t.Errorf("%d×%d: %.2f of the signs are positive", w, h, f)
		}
		fw, fh := 3*nx-1, 3*ny+1 // any grid covering the frame
		field := syntheticCT(fw, fh, 9)
		f := make([]float32, fw*fh)
		for i, v := range field.Pix {
			f[i] = float32(v)/1000 - 30
		}
		// Brute force: each cell's footprint is the render of a pattern with only that cell.
		var num, den float64
		one := coarsePattern{nx: nx, ny: ny, signs: make([]float32, nx*ny)}
		for c := range one.signs {
			one.signs[c] = 1
			fp := one.render(fw, fh)
			one.signs[c] = 0
			var g float64
			for i, v := range fp {
				g += float64(v) * float64(f[i])
			}
			num += float64(p.signs[c]) * g
			den += g * g
		}
		want := num / math.Sqrt(den)
		if got := p.read(f, fw, fh); math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("%d×%d: read %.6f, brute force %.6f", w, h, got, want)
		}
	}
}

// TestCoarsePatternKeyed: the signs are the same for the same key and depend on the key.
func TestCoarsePatternKeyed(t *testing.T) {
	k1 := benchKey(t)
	k2, err := NewKey([]byte("a-different-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	a := newCoarsePattern(coarseSeed(k1))
	again := newCoarsePattern(coarseSeed(k1))
	b := newCoarsePattern(coarseSeed(k2))
	same := 0
	for i := range a.signs {
		if a.signs[i] == b.signs[i] {
			same++
		}
		if a.signs[i] != again.signs[i] {
			t.Fatalf("cell %d differs between two draws with the same key", i)
		}
	}
	if f := float64(same) / float64(len(a.signs)); f < 0.45 || f > 0.55 {
		t.Errorf("two keys agree on %.2f of the cells", f)
	}
	if l, _ := newLayout(k1); l.coarse != coarseSeed(k1) || l.coarse == coarseSeed(k2) {
		t.Error("the layout does not carry the key's coarse stream")
	}
}

// TestCoarseNullOverKeys: on fixed unmarked images, the coarse score over random keys has
// the null the bound assumes (mean 0, variance at most 1) and never comes near the coarse
// family's threshold.
func TestCoarseNullOverKeys(t *testing.T) {
	imgs := []*Gray{syntheticCT(256, 230, 4), periodicHost(7, 40, 3)}
	if testing.Short() {
		imgs = imgs[:1]
	}
	th := PilotThresholds()
	for n, img := range imgs {
		var s1, s2, hi float64
		const keys = 300
		for k := 0; k < keys; k++ {
			key, err := NewKey([]byte(fmt.Sprintf("coarse-null-key-%04d-0123456789abcdef", k)))
			if err != nil {
				t.Fatal(err)
			}
			z := coarseRead(img, coarseSeed(key))
			s1 += z
			s2 += z * z
			hi = max(hi, z)
		}
		mean, sd := s1/keys, math.Sqrt(s2/keys-(s1/keys)*(s1/keys))
		t.Logf("image %d: coarse score over %d keys: mean %.2f, sd %.2f, highest %.2f (threshold joined %.2f)", n, keys, mean, sd, hi, th.Coarse)
		if math.Abs(mean) > 0.25 || sd > 1.2 || sd < 0.6 {
			t.Errorf("image %d: coarse null mean %.2f sd %.2f, want about 0 and 1", n, mean, sd)
		}
		if hi > th.Coarse-1.5 {
			t.Errorf("image %d: unmarked coarse score %.2f near the threshold %.2f", n, hi, th.Coarse)
		}
	}
}

// TestCoarseLayer: small images carry the coarse layer and larger ones do not; on
// quarter-size copies of marked chest X-rays, whose tile is all but averaged away, the
// primary read joined with the coarse read scores well above the pilot alone and finds
// some marks (the tile alone found 3 of the suite's 23, docs/watermark.md); and the layer
// survives a resize to another aspect.
func TestCoarseLayer(t *testing.T) {
	for _, c := range []struct {
		w, h int
		want bool
	}{{64, 64, false}, {127, 300, false}, {128, 128, true}, {256, 178, true}, {319, 400, true}, {320, 320, false}, {2048, 2048, false}} {
		if got := usesCoarse(c.w, c.h); got != c.want {
			t.Errorf("usesCoarse(%d, %d) = %v, want %v", c.w, c.h, got, c.want)
		}
	}
	// The detector reads the layer only where it may be (coarseReadSide).
	for _, c := range []struct {
		side int
		read bool
	}{{256, true}, {639, true}, {640, false}} {
		m, err := Embed(syntheticCT(c.side, c.side, 3), benchKey(t), Payload{ID: 5, Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Detect(m, benchKey(t))
		if err != nil {
			t.Fatal(err)
		}
		if (r.CoarseScore != 0) != c.read {
			t.Errorf("%d px: joined coarse score %.2f, read %v", c.side, r.CoarseScore, c.read)
		}
	}
	imgs := cxrImages(t, 12)
	key := benchKey(t)
	l, err := newLayout(key)
	if err != nil {
		t.Fatal(err)
	}
	found, kept := 0, 0
	var gain float64
	for i, g := range imgs {
		m, err := Embed(g, key, Payload{ID: 0x3C00 + uint64(i), Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Detect(Rescale(m, 0.25), key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Payload != nil && r.Payload.ID != 0x3C00+uint64(i) {
			t.Errorf("image %d: wrong payload %v", i, r.Payload)
		}
		if r.Present {
			found++
		}
		t.Logf("image %d (%d×%d) ×0.25: present %v, score %.1f, joined with the coarse read %.1f", i, g.Width, g.Height, r.Present, r.Score, r.CoarseScore)
		// The layer is kept where it reads at coarseKeep or more, and left out elsewhere
		// (the read is then the null's: the tile's signs are independent of it).
		z0 := coarseRead(m, l.coarse)
		switch {
		case z0 >= coarseKeep:
			kept++
			gain += r.CoarseScore - r.Score
			// The cells follow the frame: a resize to another aspect keeps the layer.
			if z := coarseRead(Resize(m, 224, 224), l.coarse); z < 0.7*z0 {
				t.Errorf("image %d (%d×%d): coarse read %.1f, resized to 224×224 %.1f", i, g.Width, g.Height, z0, z)
			}
		case math.Abs(z0) > 4.5:
			t.Errorf("image %d (%d×%d): coarse read %.1f: a weak layer was kept (under %.1f)", i, g.Width, g.Height, z0, coarseKeep)
		}
	}
	gain /= float64(max(1, kept))
	t.Logf("×0.25: %d of %d present; the layer kept on %d, where the joined read is %.1fσ above the pilot's best on average", found, len(imgs), kept, gain)
	if found < 6 || gain < 0.8 || kept < 4 {
		t.Errorf("×0.25: %d of %d present (want 6 or more); layer kept on %d (want 4 or more), where the joined read is %.1fσ above the pilot's (want 0.8 or more)", found, len(imgs), kept, gain)
	}
}

// TestCoarseKeepRule: the embedder leaves the coarse layer out where it reads too weakly,
// and the tile then has the whole energy: on a host whose content at the coarse cells'
// scale drowns the layer, the tile reads stronger than with the layer forced in.
func TestCoarseKeepRule(t *testing.T) {
	key := benchKey(t)
	lay, bits := layoutAndBits(t, key, Payload{ID: 0x3D00, Version: 1})
	fl := floors{DefaultPSNR, DefaultSSIM}
	// Chest X-rays with blotches at the coarse cells' scale added (what generated images
	// often have), which drown the layer on some, and the plain ones, which keep it.
	var imgs []*Gray
	for i, g := range cxrImages(t, 6) {
		imgs = append(imgs, g, blotched(g, 12, uint64(i)))
	}
	var dropped int
	var gain float64
	for i, g := range imgs {
		with, err := embedAt(g, lay, bits, geomLarge, fl, coarseShare)
		if err != nil {
			t.Fatal(err)
		}
		without, err := embedAt(g, lay, bits, geomLarge, fl, 0)
		if err != nil {
			t.Fatal(err)
		}
		zw, zo := coarseRead(with, lay.coarse), coarseRead(without, lay.coarse)
		if math.Abs(zo) > 4.5 {
			t.Errorf("image %d: coarse read %.1f without the layer", i, zo)
		}
		if zw >= coarseKeep {
			continue
		}
		dropped++
		m, err := Embed(g, key, Payload{ID: 0x3D00, Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		if z := coarseRead(m, lay.coarse); math.Abs(z) > 4.5 {
			t.Errorf("image %d: the layer reads %.1f with it forced in, %.1f as embedded (want it left out)", i, zw, z)
		}
		// What the layer costs shows where the tile is read at its weakest: a crop.
		rw, err := Detect(CropArea(with, 0.5), key)
		if err != nil {
			t.Fatal(err)
		}
		ro, err := Detect(CropArea(without, 0.5), key)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("image %d: coarse read %.1f; crop 50 %%: pilot %.2f with the layer, %.2f without", i, zw, rw.Score, ro.Score)
		gain += ro.Score - rw.Score
	}
	if dropped == 0 || dropped == len(imgs) {
		t.Fatalf("the layer read under coarseKeep on %d of %d images: the sample does not exercise the rule", dropped, len(imgs))
	}
	gain /= float64(dropped)
	t.Logf("the layer left out on %d of %d; crop 50 %% reads %.2fσ higher on average without it", dropped, len(imgs), gain)
	if gain <= 0 {
		t.Errorf("crop 50 %%: the tile reads %.2fσ lower without the layer than with it", -gain)
	}
}

// TestCoarseShareChoice: the embedder gives the coarse layer the mid or the strong share
// exactly where the base share leaves a quarter-size copy unfound and that one does not (the
// mid share first), and such copies are then found; it keeps the base share where it
// suffices.
func TestCoarseShareChoice(t *testing.T) {
	key := benchKey(t)
	lay, bits := layoutAndBits(t, key, Payload{ID: 0x3E00, Version: 1})
	fl := floors{DefaultPSNR, DefaultSSIM}
	df := newDetector(lay, tileBins) // the key's templates, for every copy read
	var base, strongN, none, gained, skipped int
	for i, g := range cxrImages(t, 12) {
		weak, err := embedAt(g, lay, bits, geomLarge, fl, coarseShare)
		if err != nil {
			t.Fatal(err)
		}
		mid, err := embedAt(g, lay, bits, geomLarge, fl, coarseMidShare)
		if err != nil {
			t.Fatal(err)
		}
		strong, err := embedAt(g, lay, bits, geomLarge, fl, coarseStrongShare)
		if err != nil {
			t.Fatal(err)
		}
		got, share, err := chooseCoarse(g, weak, lay, bits, geomLarge, fl)
		if err != nil {
			t.Fatal(err)
		}
		need := joinedThreshold(float64(len(primaryBases(g.Width/4, g.Height/4))), coarseWeight*FalsePositiveTarget)
		pw, cw := quarterReads(weak, lay, df)
		jw, jm, js := joined(pw, cw), joined(quarterReads(mid, lay, df)), joined(quarterReads(strong, lay, df))
		keep := coarseRead(weak, lay.coarse) >= coarseKeep
		weakEnough := keep && jw >= need+coarseMargin
		midEnough, strongEnough := jm >= need+coarseStrongMargin, js >= need+coarseStrongMargin
		// A share the prediction rules out must be one that would not have been enough.
		skipMid := sharePredicted(pw, cw, coarseMidShare) < need+coarseStrongMargin-coarseSkipSlack
		skipStrong := sharePredicted(pw, cw, coarseStrongShare) < need+coarseStrongMargin-coarseSkipSlack
		if (skipMid && midEnough) || (skipStrong && strongEnough) {
			t.Errorf("image %d: a share was not tried (predicted %.2f, %.2f) whose copy reads %.2f, %.2f (need %.2f)", i,
				sharePredicted(pw, cw, coarseMidShare), sharePredicted(pw, cw, coarseStrongShare), jm, js, need+coarseStrongMargin)
		}
		if skipMid || skipStrong {
			skipped++
		}
		midEnough, strongEnough = midEnough && !skipMid, strongEnough && !skipStrong
		wantShare := map[*Gray]float64{weak: coarseShare, mid: coarseMidShare, strong: coarseStrongShare}
		for m, s := range wantShare {
			if slices.Equal(got.Pix, m.Pix) && share != s {
				t.Errorf("image %d: share %.2f reported for the result marked with %.2f", i, share, s)
			}
		}
		t.Logf("image %d (%d×%d): quarter-size copy reads %.2f with the base share, %.2f with the mid one, %.2f with the strong one (need %.2f; share %.2f)", i, g.Width, g.Height, jw, jm, js, need, share)
		switch {
		case slices.Equal(got.Pix, weak.Pix):
			base++
			if !keep || (!weakEnough && (midEnough || strongEnough)) {
				t.Errorf("image %d: base share kept (layer read %.2f) though the mid or strong share's copy reads %.2f or %.2f", i, coarseRead(weak, lay.coarse), jm, js)
			}
		case slices.Equal(got.Pix, mid.Pix) || slices.Equal(got.Pix, strong.Pix):
			strongN++
			isMid := slices.Equal(got.Pix, mid.Pix)
			if weakEnough || (isMid && !midEnough) || (!isMid && (midEnough || !strongEnough)) {
				t.Errorf("image %d: share %s taken, base copy %.2f, mid %.2f, strong %.2f", i, map[bool]string{true: "mid", false: "strong"}[isMid], jw, jm, js)
			}
			rs, err := Detect(Rescale(got, 0.25), key)
			if err != nil {
				t.Fatal(err)
			}
			rw, err := Detect(Rescale(weak, 0.25), key)
			if err != nil {
				t.Fatal(err)
			}
			if !rs.Present {
				t.Errorf("image %d: strong share, but its quarter-size copy is not found (joined %.2f)", i, rs.CoarseScore)
			}
			if rs.Present && !rw.Present {
				gained++
			}
		default:
			none++
			if share != 0 {
				t.Errorf("image %d: share %.2f reported for a result that is none of the shares' (no layer)", i, share)
			}
			if keep || midEnough || strongEnough {
				t.Errorf("image %d: layer left out, though it read %.2f and the strong copy %.2f", i, coarseRead(weak, lay.coarse), js)
			}
		}
	}
	t.Logf("base share on %d, mid or strong on %d (%d quarter-size copies found that the base share left unfound), none on %d; a share not tried on %d", base, strongN, gained, none, skipped)
	if strongN == 0 || base == 0 || gained == 0 || skipped == 0 {
		t.Errorf("base share on %d, strong on %d, gaining %d, skipping on %d: the sample does not exercise the choice", base, strongN, gained, skipped)
	}
}

// blotched adds smooth random blotches about 4 px wide with an rms of amp grey levels.
func blotched(g *Gray, amp float64, seed uint64) *Gray {
	rng := rand.New(rand.NewPCG(seed, 0xB10))
	n := make([]float32, len(g.Pix))
	for i := range n {
		n[i] = float32(rng.NormFloat64())
	}
	for range 3 { // a 5×5 box three times: about a Gaussian of σ 2.4 px
		n = boxMean(n, g.Width, g.Height, 2)
	}
	var ss float64
	for _, v := range n {
		ss += float64(v) * float64(v)
	}
	sc := amp / math.Sqrt(ss/float64(len(n)))
	out := g.Clone()
	m := g.Max()
	for i, v := range g.Pix {
		out.Pix[i] = uint16(math.Max(0, math.Min(m, math.Round(float64(v)+sc*float64(n[i])))))
	}
	return out
}

// layoutAndBits returns the key's layout and the payload's coded bits, for tests that call
// embedAt directly.
func layoutAndBits(t testing.TB, key Key, p Payload) (*layout, []byte) {
	t.Helper()
	lay, err := newLayout(key)
	if err != nil {
		t.Fatal(err)
	}
	cd, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	bits, err := cd.encode(p)
	if err != nil {
		t.Fatal(err)
	}
	return lay, bits
}

// TestQuarterPrimaryRead checks that the embedder's read of its quarter-size copies
// (primaryRead, without the stretch search) is the detector's primary read on them.
func TestQuarterPrimaryRead(t *testing.T) {
	key := benchKey(t)
	lay, bits := layoutAndBits(t, key, Payload{ID: 0x3E01, Version: 1})
	fl := floors{DefaultPSNR, DefaultSSIM}
	df := newDetector(lay, tileBins)
	var positive int
	for i, g := range cxrImages(t, 8) {
		m, err := embedAt(g, lay, bits, geometryFor(g.Width, g.Height), fl, coarseShare)
		if err != nil {
			t.Fatal(err)
		}
		q := Rescale(m, 0.25)
		want, got := alignedCandidates(q, df, nil), primaryRead(q, df)
		if want.stretch != 1 {
			t.Logf("image %d: the detector finds its quarter-size copy stretched (%.3f); not compared", i, want.stretch)
			continue
		}
		if math.Abs(got-want.primary) > 1e-9 {
			t.Errorf("image %d: primaryRead %.6f, the detector's primary read %.6f", i, got, want.primary)
		}
		if got > 0 {
			positive++
		}
	}
	if positive < 4 {
		t.Errorf("only %d of 8 quarter-size copies read above zero: the comparison says little", positive)
	}
}
