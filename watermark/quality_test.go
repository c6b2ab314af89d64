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
