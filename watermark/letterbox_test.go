package watermark

import (
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"
)

// padded places g on a w×h canvas of value v at (x0, y0).
func padded(g *Gray, w, h, x0, y0 int, v uint16) *Gray {
	out := NewGray(w, h, g.BitDepth)
	for i := range out.Pix {
		out.Pix[i] = v
	}
	for y := 0; y < g.Height; y++ {
		copy(out.Pix[(y0+y)*w+x0:], g.Pix[y*g.Width:(y+1)*g.Width])
	}
	return out
}

func TestLetterbox(t *testing.T) {
	content := syntheticCT(120, 200, 3) // air reaches the borders, but never one value along a line
	framed := padded(content, 124, 204, 2, 2, 0)
	for _, tc := range []struct {
		name string
		img  *Gray
		want *Rect
	}{
		{"centred bands left and right", padded(content, 200, 200, 40, 0, 0), &Rect{40, 0, 120, 200}},
		{"centred bands top and bottom", padded(Orient(content, 4), 200, 200, 0, 40, 7), &Rect{0, 40, 200, 120}},
		{"one band, right", padded(content, 200, 200, 0, 0, 0), &Rect{0, 0, 120, 200}},
		{"uneven within the slack", padded(content, 200, 200, 36, 0, 0), &Rect{36, 0, 120, 200}},
		{"no bands", content, nil},
		{"bands along the long side only (the cells stay as marked)", padded(content, 120, 260, 0, 30, 0), nil},
		{"bands on both axes (a frame, or a dark border clipped)", framed, nil},
		{"bands too narrow", padded(content, 130, 200, 5, 0, 0), nil},
		{"uneven bands", padded(content, 200, 200, 10, 0, 0), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := letterbox(tc.img)
			switch {
			case tc.want == nil && ok:
				t.Errorf("found bands %+v in an image without letterboxing", r)
			case tc.want != nil && !ok:
				t.Errorf("no bands found, want content %+v", *tc.want)
			case tc.want != nil && r != *tc.want:
				t.Errorf("content %+v, want %+v", r, *tc.want)
			}
		})
	}
	// Bands of two values are not one letterbox.
	two := padded(content, 200, 200, 40, 0, 0)
	for y := 0; y < 200; y++ {
		for x := 160; x < 200; x++ {
			two.Pix[y*200+x] = 9
		}
	}
	if r, ok := letterbox(two); ok {
		t.Errorf("bands of two values read as a letterbox: %+v", r)
	}
}

// TestLetterboxedRead marks images much longer than wide (a whole-body scan's aspect), pads
// them to squares, as a training pipeline keeps the aspect, and reads the payload inside the
// bands, also after a JPEG round trip that blurs the bands' inner edges.
func TestLetterboxedRead(t *testing.T) {
	key := benchKey(t)
	for i, sz := range [][2]int{{96, 384}, {400, 150}} {
		g := syntheticCT(sz[0], sz[1], uint64(10+i))
		p := Payload{ID: 0xB0C5 + uint64(i), Version: 1}
		m, err := Embed(g, key, p)
		if err != nil {
			t.Fatal(err)
		}
		sq := PadSquare(m)
		j, err := JPEGRoundTrip(sq, 90)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			img  *Gray
		}{{"padded", sq}, {"padded-jpeg90", j}} {
			r, err := Detect(c.img, key)
			if err != nil {
				t.Fatal(err)
			}
			if r.Payload == nil || *r.Payload != p {
				t.Errorf("%dx%d %s: payload %v, want %v (score %.1f)", sz[0], sz[1], c.name, r.Payload, p, r.Score)
			}
			if r.Content == nil {
				t.Errorf("%dx%d %s: letterbox not reported", sz[0], sz[1], c.name)
			}
		}
		if r, _ := Detect(m, key); r.Content != nil {
			t.Errorf("%dx%d: unpadded image read as letterboxed %+v", sz[0], sz[1], *r.Content)
		}
		// Lines an attack saturated (the first fifth of the short side clipped white) are
		// bands too, but the frame is the marked one: it is read whole.
		clipped := m.Clone()
		for y := 0; y < clipped.Height; y++ {
			for x := 0; x < clipped.Width; x++ {
				if (clipped.Width < clipped.Height && x < clipped.Width/5) || (clipped.Width >= clipped.Height && y < clipped.Height/5) {
					clipped.Pix[y*clipped.Width+x] = uint16(clipped.Max())
				}
			}
		}
		if _, ok := letterbox(clipped); !ok {
			t.Fatalf("%dx%d: the clipped rows are not bands", sz[0], sz[1])
		}
		r, err := Detect(clipped, key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Content != nil || r.Payload == nil || *r.Payload != p {
			t.Errorf("%dx%d clipped: content %v, payload %v, want the whole frame and %v", sz[0], sz[1], r.Content, r.Payload, p)
		}
	}
}

// BenchmarkLetterboxCost measures, on one core, verifying marked images and the same images
// padded to squares (whose bands are cut off, after comparing the two frames' tile
// energies):
//
//	go test ./watermark -run '^$' -bench BenchmarkLetterboxCost -benchtime 3x
func BenchmarkLetterboxCost(b *testing.B) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	key := benchKey(b)
	for _, sz := range [][2]int{{384, 512}, {1024, 2048}} {
		m, err := Embed(syntheticCT(sz[0], sz[1], 5), key, Payload{ID: 1, Version: 1})
		if err != nil {
			b.Fatal(err)
		}
		sq := PadSquare(m)
		b.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(b *testing.B) {
			var tWhole, tPadded time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				r1, err := Detect(m, key)
				t1 := time.Now()
				r2, err2 := Detect(sq, key)
				t2 := time.Now()
				if err != nil || err2 != nil || r1.Payload == nil || r2.Payload == nil || r2.Content == nil {
					b.Fatalf("not read: %+v %+v %v %v", r1, r2, err, err2)
				}
				tWhole += t1.Sub(t0)
				tPadded += t2.Sub(t1)
			}
			n := time.Duration(b.N)
			b.Logf("%d×%d px, one core: verify %v; padded to a square %v (%.2f×)", sz[0], sz[1], tWhole/n, tPadded/n, float64(tPadded)/float64(tWhole))
		})
	}
}

// TestLetterboxOnSuite checks the letterbox choice on the suite's chest X-rays: every one
// padded to a square (bands of a tenth of the side or more) is read inside its bands, and
// none whose lines a brightness change saturated is. It logs the tile energies the choice
// compares (docs/watermark.md, *Letterboxed images*).
func TestLetterboxOnSuite(t *testing.T) {
	key := benchKey(t)
	imgs := cxrImages(t, 20)
	padded, clipped := 0, 0
	minIn, maxWhole := math.Inf(1), math.Inf(-1)
	for j, g := range imgs {
		m, err := Embed(g, key, Payload{ID: 0x00C0FFEE00 + uint64(j), Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		if sq := PadSquare(m); sq.Width != m.Width || sq.Height != m.Height {
			if r, ok := letterbox(sq); ok {
				padded++
				ew, ei := ownEnergy(sq), ownEnergy(subImage(sq, r))
				minIn, maxWhole = min(minIn, ei), max(maxWhole, ew)
				if !letterboxTrim(ew, ei) {
					t.Errorf("cxr%d padded to a square: read whole (energy %.0f whole, %.0f inside)", j, ew, ei)
				}
			}
		}
		for _, f := range []float64{0.2, -0.2} {
			b := Brightness(m, f)
			if r, ok := letterbox(b); ok {
				clipped++
				ew, ei := ownEnergy(b), ownEnergy(subImage(b, r))
				t.Logf("cxr%d brightness %+.0f%%: saturated lines %+v; energy %.0f whole, %.0f inside", j, 100*f, r, ew, ei)
				if letterboxTrim(ew, ei) {
					t.Errorf("cxr%d brightness %+.0f%%: read inside the saturated lines", j, 100*f)
				}
			}
		}
	}
	if padded == 0 {
		t.Fatal("no padded image had bands")
	}
	t.Logf("%d padded images: energy inside the bands at least %.0f, of the whole frame at most %.0f; %d with saturated lines",
		padded, minIn, maxWhole, clipped)
}
