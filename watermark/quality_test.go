package watermark

import (
	"math"
	"testing"
)

// TestSSIMEstimate: the strided SSIM used on large images agrees with the exact mean, and
// the marked result meets the SSIM floor the embedder guarantees.
func TestSSIMEstimate(t *testing.T) {
	img := syntheticCT(1100, 900, 3)
	key := benchKey(t)
	m, err := Embed(img, key, Payload{ID: 7, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	exact, err := SSIMDisplay(img, m)
	if err != nil {
		t.Fatal(err)
	}
	est, err := ssimEstimate(img, m, displayRange(img))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(exact-est) > 5e-4 {
		t.Errorf("strided SSIM %.5f, exact %.5f", est, exact)
	}
	if exact < 0.99 {
		t.Errorf("SSIM %.4f (as displayed) is under the 0.99 floor", exact)
	}
	t.Logf("1100×900: exact SSIM %.5f, estimate %.5f", exact, est)
}

// TestInvisibleInPartOfTheRange: an image that holds a small part of its bit depth (a CT's
// 2 000 values in 16 bits, a 12-bit image in a 16-bit file) gets a mark as faint against its
// own span as a full-range image does: 45 dB of the span, not of the bit depth, which allowed
// a mark of 300 grey levels (16.7 dB of its span) on a real 16-bit CT slice.
func TestInvisibleInPartOfTheRange(t *testing.T) {
	key := benchKey(t)
	full := syntheticCT(384, 384, 4)
	part := &Gray{Width: full.Width, Height: full.Height, BitDepth: 16, Pix: make([]uint16, len(full.Pix))}
	lo, hi := displayRange(full).lo, displayRange(full).lo+displayRange(full).span
	for i, v := range full.Pix { // the same picture in 2 048 values around the middle of 16 bits
		part.Pix[i] = uint16(31000 + math.Round((float64(v)-lo)/(hi-lo)*2047))
	}
	for _, g := range []*Gray{full, part} {
		m, err := Embed(g, key, Payload{ID: 9, Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		ps, _ := PSNRDisplay(g, m)
		ss, _ := SSIMDisplay(g, m)
		pb, _ := PSNR(g, m)
		if ps < 45 || ss < 0.99 || pb < ps {
			t.Errorf("%d-value span in %d bits: PSNR %.1f dB of the span (%.1f of the bit depth), SSIM %.4f", int(displayRange(g).span)+1, g.BitDepth, ps, pb, ss)
		}
		if r, _ := Detect(m, key); !r.Present {
			t.Errorf("%d-value span: mark not found (score %.1f)", int(displayRange(g).span)+1, r.Score)
		}
	}
}

// TestEmbedVerified: the verified flag agrees with an independent detection, on an image
// Embed checks itself and on one above selfCheckSide where EmbedVerified detects once more.
func TestEmbedVerified(t *testing.T) {
	key := benchKey(t)
	for _, g := range []*Gray{syntheticCT(256, 256, 9), syntheticCT(1100, 1060, 10)} {
		p := Payload{ID: 0x1234, Version: 1}
		m, ok, err := EmbedVerified(g, key, p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Detect(m, key)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Payload != nil && *r.Payload == p; got != ok || !ok {
			t.Errorf("%d×%d: EmbedVerified says %v, detection says %v", g.Width, g.Height, ok, got)
		}
	}
}

// TestMarkShape: the mark's shape is uniform when the SSIM budget allows it, and otherwise
// grows with the perceptual amplitude and meets the budget exactly (both floors bind).
func TestMarkShape(t *testing.T) {
	lossPerEnergy := func(den, amp []float32) float64 {
		var s1, s2 float64
		for i, d := range den {
			a := float64(amp[i])
			s1 += a * a / float64(d)
			s2 += a * a
		}
		return s1 / s2
	}
	// Half the samples smooth (A² = 1), half textured (A² = 100).
	den := make([]float32, 1000)
	for i := range den {
		den[i] = 1
		if i%2 == 1 {
			den[i] = 100
		}
	}
	uniform := lossPerEnergy(den, markShape(den, 1)) // a uniform mark: (1 + 0.01)/2
	for _, tc := range []struct {
		name     string
		maxRatio float64
		uniform  bool
	}{
		{"budget allows a uniform mark", 0.6, true},
		{"budget binds", 0.2, false},
		{"budget binds hard", 0.02, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			amp := markShape(den, tc.maxRatio)
			got := lossPerEnergy(den, amp)
			if tc.uniform {
				if amp[0] != amp[1] || math.Abs(got-uniform) > 1e-9 {
					t.Errorf("want a uniform mark, got amplitudes %.3f and %.3f", amp[0], amp[1])
				}
				return
			}
			if !(amp[0] < amp[1]) {
				t.Errorf("smooth samples %.3f should carry less than textured ones %.3f", amp[0], amp[1])
			}
			if got > tc.maxRatio*1.001 || got < tc.maxRatio*0.98 {
				t.Errorf("loss per unit energy %.4f, want just under %.4f (both floors binding)", got, tc.maxRatio)
			}
		})
	}
}

// TestEmbedVerifiedRetriesLarge: above selfCheckSide Embed marks once, unchecked; EmbedVerified
// checks, and when the payload does not come back it tries the other cell sizes as the
// self-check does on smaller images. A 4096 px 16-bit pattern whose texture defeats the base
// cell size (it read back when the mark was held at the bit depth, 12 dB stronger) is the case.
func TestEmbedVerifiedRetriesLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("4096 px: skipped with -short")
	}
	key, err := NewKey([]byte("weak-test-key-0123456789abcd"))
	if err != nil {
		t.Fatal(err)
	}
	g := NewGray(4096, 4096, 16)
	for i := range g.Pix {
		x, y := float64(i%g.Width), float64(i/g.Width)
		g.Pix[i] = uint16(20000 + 8000*math.Sin(x/97)*math.Cos(y/61) + float64((i*7919)%500))
	}
	p := Payload{ID: 9, Version: PayloadVersion}
	plain, err := Embed(g, key, p)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := Detect(plain, key); r.Payload != nil {
		t.Skipf("the base cell size reads back on this pattern now (%.1fσ): the retry is not exercised", r.Score)
	}
	m, ok, err := EmbedVerified(g, key, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := Detect(m, key)
	if !ok || r.Payload == nil || *r.Payload != p {
		t.Errorf("EmbedVerified: verified %v, payload %v (%.1fσ): the other cell sizes were not tried or none read back", ok, r.Payload, r.Score)
	}
	if ps, _ := PSNRDisplay(g, m); ps < 45 {
		t.Errorf("PSNR %.2f dB as displayed", ps)
	}
}

// TestStrength: Options' floors set how strong the mark is. Lower floors give a mark that
// holds them (one of the two binding) and is stronger, so that a JPEG 50 round trip leaves a
// higher score; floors out of range are refused.
func TestStrength(t *testing.T) {
	key := benchKey(t)
	ct := syntheticCT(256, 256, 3)
	cxr := syntheticCT(256, 240, 11)
	cxr.BitDepth = 8
	for i := range cxr.Pix {
		cxr.Pix[i] >>= 8
	}
	for _, img := range []struct {
		name string
		g    *Gray
	}{{"16-bit", ct}, {"8-bit", cxr}} {
		t.Run(img.name, func(t *testing.T) {
			prevPSNR, prevScore := math.Inf(1), 0.0
			for _, o := range []Options{{}, {PSNR: 42, SSIM: 0.98}, {PSNR: 39, SSIM: 0.96}} {
				fl, err := o.floors()
				if err != nil {
					t.Fatal(err)
				}
				p := Payload{ID: 77, Version: PayloadVersion}
				m, err := EmbedWith(img.g, key, p, o)
				if err != nil {
					t.Fatal(err)
				}
				ps, _ := PSNRDisplay(img.g, m)
				ss, _ := SSIMDisplay(img.g, m)
				if ps < fl.psnr-0.01 || ss < fl.ssim-0.0005 {
					t.Errorf("floors %.2f dB, %.4f: got %.2f dB, %.4f", fl.psnr, fl.ssim, ps, ss)
				}
				if ps > fl.psnr+0.6 && ss > fl.ssim+0.003 {
					t.Errorf("floors %.2f dB, %.4f: got %.2f dB, %.4f, neither binds", fl.psnr, fl.ssim, ps, ss)
				}
				if ps > prevPSNR-1.5 {
					t.Errorf("floors %.2f dB, %.4f: PSNR %.2f dB, not stronger than the previous floors' %.2f dB", fl.psnr, fl.ssim, ps, prevPSNR)
				}
				j, err := JPEGRoundTrip(m, 50)
				if err != nil {
					t.Fatal(err)
				}
				r, err := Detect(j, key)
				if err != nil {
					t.Fatal(err)
				}
				if r.Score <= prevScore {
					t.Errorf("floors %.2f dB, %.4f: JPEG 50 leaves %.2fσ, not more than the previous floors' %.2fσ", fl.psnr, fl.ssim, r.Score, prevScore)
				}
				t.Logf("floors %.2f dB, %.4f: %.2f dB, SSIM %.4f; after JPEG 50 %.2fσ", fl.psnr, fl.ssim, ps, ss, r.Score)
				prevPSNR, prevScore = ps, r.Score
			}
		})
	}
	for _, o := range []Options{{PSNR: 10}, {PSNR: 95}, {SSIM: 1}, {SSIM: 0.3}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
		if _, err := EmbedWith(ct, key, Payload{ID: 1}, o); err == nil {
			t.Errorf("EmbedWith %+v: no error", o)
		}
	}
}
