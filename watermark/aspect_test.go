package watermark

import (
	"fmt"
	"math"
	"testing"
)

// TestStretchedRead resizes marked images to other aspects, as training pipelines do to
// reach a fixed input size, and checks that the payload is read and the stretch reported;
// images resized without changing their aspect are not read as stretched.
func TestStretchedRead(t *testing.T) {
	key := benchKey(t)
	for _, tc := range []struct {
		w, h, tw, th int
		stretched    bool
	}{
		{320, 256, 224, 224, true},
		{256, 200, 256, 256, true},
		{200, 300, 224, 224, true},
		{300, 300, 400, 260, true},
		{512, 384, 224, 224, true},
		{320, 256, 160, 128, false},
		{256, 256, 224, 224, false},
	} {
		t.Run(fmt.Sprintf("%dx%d-to-%dx%d", tc.w, tc.h, tc.tw, tc.th), func(t *testing.T) {
			img := syntheticCT(tc.w, tc.h, uint64(tc.w*tc.h))
			p := Payload{ID: uint64(tc.w*1000 + tc.h), Version: 1}
			m, err := Embed(img, key, p)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Detect(Resize(m, tc.tw, tc.th), key)
			if err != nil {
				t.Fatal(err)
			}
			if r.Payload == nil || *r.Payload != p {
				t.Fatalf("payload not read: %+v", r)
			}
			want := (float64(tc.tw) / float64(tc.w)) / (float64(tc.th) / float64(tc.h))
			switch {
			case tc.stretched && math.Abs(r.Stretch/want-1) > 0.005:
				t.Errorf("stretch %.4f, want %.4f", r.Stretch, want)
			case !tc.stretched && r.Stretch != 0:
				t.Errorf("stretch %.4f reported for an image resized at its own aspect", r.Stretch)
			}
		})
	}
}

// TestPaddedRead frames marked images in larger black squares, with borders on all four
// sides (so not letterbox bands, which are cut off: TestLetterboxedRead), where the mark's
// cells span less of the short side (scales down to 0.65), and checks that the full search
// reads the payload.
func TestPaddedRead(t *testing.T) {
	key := benchKey(t)
	for _, tc := range []struct{ w, h, side int }{{256, 180, 264}, {300, 220, 320}, {200, 160, 240}} {
		t.Run(fmt.Sprintf("%dx%d-in-%d", tc.w, tc.h, tc.side), func(t *testing.T) {
			img := syntheticCT(tc.w, tc.h, uint64(tc.w+tc.h))
			p := Payload{ID: uint64(tc.w*1000 + tc.h), Version: 1}
			m, err := Embed(img, key, p)
			if err != nil {
				t.Fatal(err)
			}
			framed := NewGray(tc.side, tc.side, m.BitDepth)
			x0, y0 := (tc.side-tc.w)/3, (tc.side-tc.h)/2
			for y := 0; y < tc.h; y++ {
				copy(framed.Pix[(y0+y)*tc.side+x0:], m.Pix[y*tc.w:(y+1)*tc.w])
			}
			r, err := Detect(framed, key)
			if err != nil {
				t.Fatal(err)
			}
			if r.Payload == nil || *r.Payload != p {
				t.Fatalf("payload not read: %+v", r)
			}
			if r.Content != nil {
				t.Errorf("a frame read as letterbox bands: %+v", *r.Content)
			}
			if want := float64(tc.h) / float64(tc.side); math.Abs(r.Scale/want-1) > 0.02 {
				t.Errorf("scale %.3f, want about %.3f", r.Scale, want)
			}
		})
	}
}

// TestStretchedCropRead crops marked images and resizes the crop to another aspect (a crop
// taken for a training set, brought to its input size) and checks that the payload is read
// and the stretch reported.
func TestStretchedCropRead(t *testing.T) {
	key := benchKey(t)
	for _, tc := range []struct {
		w, h   int
		area   float64
		tw, th int
	}{
		{320, 256, 0.8, 224, 224},
		{256, 320, 0.6, 256, 256},
		{300, 300, 0.7, 300, 220},
	} {
		t.Run(fmt.Sprintf("%dx%d-crop%.0f%%-to-%dx%d", tc.w, tc.h, 100*tc.area, tc.tw, tc.th), func(t *testing.T) {
			img := syntheticCT(tc.w, tc.h, uint64(tc.w*tc.h+1))
			p := Payload{ID: uint64(tc.w*1000 + tc.h + 1), Version: 1}
			m, err := Embed(img, key, p)
			if err != nil {
				t.Fatal(err)
			}
			c := CropArea(m, tc.area)
			r, err := Detect(Resize(c, tc.tw, tc.th), key)
			if err != nil {
				t.Fatal(err)
			}
			if r.Payload == nil || *r.Payload != p {
				t.Fatalf("payload not read: %+v", r)
			}
			want := (float64(tc.tw) / float64(c.Width)) / (float64(tc.th) / float64(c.Height))
			if math.Abs(r.Stretch/want-1) > 0.01 {
				t.Errorf("stretch %.4f, want %.4f", r.Stretch, want)
			}
		})
	}
}
