package wmfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/watermark"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		format Format
		bits   int
	}{
		{"png8", PNG, 8}, {"png16", PNG, 16}, {"png12", PNG, 12}, {"tiff8", TIFF, 8}, {"tiff16", TIFF, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := watermark.NewGray(37, 23, tc.bits)
			for i := range g.Pix {
				g.Pix[i] = uint16((i * 7919) % (1 << tc.bits))
			}
			p := filepath.Join(dir, tc.name)
			if err := Write(p, g, tc.format); err != nil {
				t.Fatal(err)
			}
			f, err := Read(p)
			if err != nil {
				t.Fatal(err)
			}
			if f.Format != tc.format || f.Image.Width != 37 || f.Image.Height != 23 || f.SyntheticData != "" {
				t.Fatalf("read back %+v", f)
			}
			for i, v := range g.Pix {
				if f.Image.Pix[i] != v {
					t.Fatalf("value %d: %d, want %d", i, f.Image.Pix[i], v)
				}
			}
		})
	}
	bad := filepath.Join(dir, "bad.png")
	os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\ntruncated"), 0o644)
	if _, err := Read(bad); err == nil {
		t.Error("a truncated PNG was read")
	}
	if _, err := Sniff([]byte("hello")); err == nil {
		t.Error("text sniffed as an image")
	}
	if err := Write(filepath.Join(dir, "x.jpg"), watermark.NewGray(8, 8, 8), JPEG); err == nil {
		t.Error("writing JPEG did not fail")
	}
}

func TestFrameGraySigned(t *testing.T) {
	img := &dicomio.Image{Rows: 1, Columns: 3, Frames: 1, Samples: 1, BitsStored: 12, Signed: true, I16: []int16{-2048, 0, 2047}}
	g, err := FrameGray(img, 0)
	if err != nil {
		t.Fatal(err)
	}
	if g.Pix[0] != 0 || g.Pix[1] != 2048 || g.Pix[2] != 4095 || g.BitDepth != 12 {
		t.Errorf("signed 12-bit offset: %v", g.Pix)
	}
	if _, err := FrameGray(&dicomio.Image{Rows: 1, Columns: 1, Samples: 3, BitsStored: 8, U8: []uint8{1, 2, 3}}, 0); err == nil {
		t.Error("an RGB image was accepted")
	}
}

// TestEmbedFileReliance checks that embedding a PNG reports where the mark lives: an image
// whose left half is black (at the end of its range) and whose right half is textured.
func TestEmbedFileReliance(t *testing.T) {
	dir := t.TempDir()
	g := watermark.NewGray(256, 192, 8)
	for y := 0; y < g.Height; y++ {
		for x := g.Width / 2; x < g.Width; x++ {
			g.Pix[y*g.Width+x] = uint16(60 + (x*37+y*91)%120)
		}
	}
	in := filepath.Join(dir, "half.png")
	if err := Write(in, g, PNG); err != nil {
		t.Fatal(err)
	}
	key, err := watermark.NewKey([]byte("reliance-test-key-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := EmbedFile(t.Context(), in, key, EmbedOptions{OutDir: dir, Payload: watermark.Payload{ID: 5, Version: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if e.Reliance == nil || e.Reliance.RangeEndShare < 0.49 || e.Reliance.RangeEndShare > 0.51 {
		t.Fatalf("reliance %+v, want half the pixels at the range's ends", e.Reliance)
	}
}

func TestSniff(t *testing.T) {
	dicom := func(preamble string) []byte {
		b := make([]byte, 140)
		copy(b, preamble)
		copy(b[128:], "DICM")
		return b
	}
	for _, tc := range []struct {
		name string
		head []byte
		want Format
	}{
		{"png", []byte("\x89PNG\r\n\x1a\n...."), PNG},
		{"tiff little endian", []byte("II*\x00...."), TIFF},
		{"tiff big endian", []byte("MM\x00*...."), TIFF},
		{"jpeg", []byte{0xFF, 0xD8, 0xFF, 0xE0}, JPEG},
		{"dicom", dicom(""), DICOM},
		{"dicom with a TIFF header in its preamble", dicom("II*\x00"), DICOM},
		{"text", []byte("hello"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sniff(tc.head)
			if got != tc.want || (err != nil) != (tc.want == "") {
				t.Errorf("Sniff = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
