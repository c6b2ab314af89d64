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
	exact, err := SSIM(img, m)
	if err != nil {
		t.Fatal(err)
	}
	est, err := ssimEstimate(img, m)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(exact-est) > 5e-4 {
		t.Errorf("strided SSIM %.5f, exact %.5f", est, exact)
	}
	if exact < 0.99 {
		t.Errorf("SSIM %.4f is under the 0.99 floor", exact)
	}
	t.Logf("1100×900: exact SSIM %.5f, estimate %.5f", exact, est)
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
