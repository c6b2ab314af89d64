package watermark

import (
	"math"
	"math/rand/v2"
	"testing"
)

// syntheticEcho draws an 8-bit ultrasound-like image: a fan-shaped sector of coarse speckle
// on a black surround that covers most of the image.
func syntheticEcho(w, h int, seed uint64) *Gray {
	rng := rand.New(rand.NewPCG(seed, 3))
	g := NewGray(w, h, 8)
	// Speckle: noise smoothed over about 3 px, so that its grain is coarser than a pixel.
	noise := make([]float64, w*h)
	for i := range noise {
		noise[i] = rng.NormFloat64()
	}
	sm := make([]float64, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var s float64
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					s += noise[min(h-1, max(0, y+dy))*w+min(w-1, max(0, x+dx))]
				}
			}
			sm[y*w+x] = s / 3
		}
	}
	ax, ay := float64(w)/2, 0.05*float64(h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := float64(x)-ax, float64(y)-ay
			r, a := math.Hypot(dx, dy), math.Atan2(dx, dy)
			if r > 0.9*float64(h) || math.Abs(a) > 0.5 {
				continue // the black surround
			}
			v := 60 + 40*math.Sin(r/25) + 45*sm[y*w+x]
			g.Pix[y*w+x] = uint16(max(1, min(254, math.Round(v))))
		}
	}
	return g
}

// framed8Bit puts an 8-bit copy of a synthetic CT slice inside a black border that covers
// about 40 % of the image, as a collimated radiograph's.
func framed8Bit(w, h int, seed uint64) *Gray {
	ct := syntheticCT(w*3/4, h*3/4, seed)
	g := NewGray(w, h, 8)
	x0, y0 := w/8, h/8
	for y := 0; y < ct.Height; y++ {
		for x := 0; x < ct.Width; x++ {
			v := float64(ct.Pix[y*ct.Width+x]) / 65535 * 255 * 4
			g.Pix[(y0+y)*w+x0+x] = uint16(max(1, min(254, math.Round(v))))
		}
	}
	return g
}

func TestMarkReliance(t *testing.T) {
	key := benchKey(t)
	for _, tc := range []struct {
		name        string
		img         *Gray
		checked     bool // at least a quarter of the pixels at an end of the range
		wantFragile bool
	}{
		{"echo-like sector on black", syntheticEcho(512, 384, 1), true, true},
		{"radiograph-like frame, content textured", framed8Bit(384, 384, 2), true, false},
		{"CT slice, 16-bit", syntheticCT(256, 256, 3), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Embed(tc.img, key, Payload{ID: 77, Version: 1})
			if err != nil {
				t.Fatal(err)
			}
			r, err := MarkReliance(tc.img, m, key)
			if err != nil {
				t.Fatal(err)
			}
			if (r.RangeEndShare >= relianceShare) != tc.checked {
				t.Errorf("share at the range's ends %.2f, want checked=%v", r.RangeEndShare, tc.checked)
			}
			if r.Fragile != tc.wantFragile {
				t.Errorf("fragile %v, want %v (share %.2f)", r.Fragile, tc.wantFragile, r.RangeEndShare)
			}
			// A fragile mark is one JPEG 75 removes; a sound one survives it (on these images).
			j, err := JPEGRoundTrip(m, 75)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Detect(j, key)
			if err != nil {
				t.Fatal(err)
			}
			if (d.Payload != nil) == r.Fragile {
				t.Errorf("fragile %v, yet after JPEG 75 the payload is read: %v (score %.1f)", r.Fragile, d.Payload != nil, d.Score)
			}
		})
	}
	// The real images of those kinds: the echocardiogram's mark lives in its black surround,
	// the radiograph's does not.
	for _, tc := range []struct {
		img         largeImage
		wantFragile bool
	}{{largeImages[2], true}, {largeImages[0], false}} {
		t.Run(tc.img.name, func(t *testing.T) {
			g := readLarge(t, tc.img)
			m, err := Embed(g, key, Payload{ID: 78, Version: 1})
			if err != nil {
				t.Fatal(err)
			}
			r, err := MarkReliance(g, m, key)
			if err != nil {
				t.Fatal(err)
			}
			if r.Fragile != tc.wantFragile || r.RangeEndShare < relianceShare {
				t.Errorf("fragile %v with %.2f of the pixels at the range's ends, want fragile %v", r.Fragile, r.RangeEndShare, tc.wantFragile)
			}
		})
	}
	if _, err := MarkReliance(syntheticCT(64, 64, 1), syntheticCT(64, 80, 1), key); err == nil {
		t.Error("images of different shapes accepted")
	}
}
