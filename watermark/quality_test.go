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
