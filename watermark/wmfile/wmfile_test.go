package wmfile

import (
	"bytes"
	"errors"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"strings"
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
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v (%v), want 0644: written through a 0600 temporary file, it must be readable as any file", fi.Mode().Perm(), err)
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
	e, err := EmbedFile(t.Context(), in, key, EmbedOptions{OutDir: filepath.Join(dir, "out"), Payload: watermark.Payload{ID: 5, Version: 1}})
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

// TestEmbedFileNames checks that a batch never writes two inputs to one file (scan.png in two
// folders, scan.jpg beside them: all three would be scan.png) and never replaces an input.
func TestEmbedFileNames(t *testing.T) {
	dir := t.TempDir()
	g := texturedGray(7)
	a, b := filepath.Join(dir, "a", "scan.png"), filepath.Join(dir, "b", "scan.png")
	c := filepath.Join(dir, "b", "scan.jpg")
	for _, p := range []string{a, b} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := Write(p, g, PNG); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, ToImage(g), &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	key, err := watermark.NewKey([]byte("names-test-key-0123456789abc"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	outputs := new(dicomio.OutputSet)
	written := map[string]uint64{}
	for i, in := range []string{a, b, c} {
		p := watermark.Payload{ID: uint64(100 + i), Version: watermark.PayloadVersion}
		e, err := EmbedFile(t.Context(), in, key, EmbedOptions{OutDir: out, Payload: p, Item: i, Outputs: outputs})
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if _, dup := written[e.Output]; dup {
			t.Fatalf("%s written to %s again", in, e.Output)
		}
		if !e.Verified {
			t.Errorf("%s: the payload does not read back (verified false)", in)
		}
		written[e.Output] = p.ID
	}
	for path, id := range written {
		f, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := watermark.Detect(f.Image, key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Payload == nil || r.Payload.ID != id {
			t.Errorf("%s: payload %v, want %d", path, r.Payload, id)
		}
	}
	// An output folder that holds the input: refused, the input left as it was.
	before, _ := os.ReadFile(a)
	if _, err := EmbedFile(t.Context(), a, key, EmbedOptions{OutDir: filepath.Dir(a), Payload: watermark.Payload{ID: 1, Version: 1}}); err == nil {
		t.Error("embedding into the input's own file did not fail")
	}
	if after, _ := os.ReadFile(a); !bytes.Equal(before, after) {
		t.Error("the input was replaced")
	}
}

// TestWriteAttackedNames checks that two inputs with one stem keep both sets of attacked images.
func TestWriteAttackedNames(t *testing.T) {
	dir := t.TempDir()
	taken := new(dicomio.OutputSet)
	for i, in := range []string{"a/scan.png", "b/scan.dcm"} {
		g := watermark.NewGray(8, 8, 8)
		g.Pix[0] = uint16(i + 1)
		outs := []watermark.AttackOutcome{{Attack: "jpeg-50", Image: g}, {Attack: "crop-50%", Image: g}}
		if err := WriteAttacked(dir, in, i, taken, outs); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"scan.jpeg-50.png", "scan.crop-50pct.png", "scan-1.jpeg-50.png", "scan-1.crop-50pct.png"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s", name)
		}
	}
	f, err := Read(filepath.Join(dir, "scan-1.jpeg-50.png"))
	if err != nil || f.Image.Pix[0] != 2 {
		t.Errorf("second input's image: %v %v", f, err)
	}
}

// TestVerifyColourAndReports checks that verify reads a marked greyscale image a viewer saved
// as an RGB secondary capture (the luma, as for colour PNG and JPEG), and skips a DICOM file
// without an image instead of failing it.
func TestVerifyColourAndReports(t *testing.T) {
	dir := t.TempDir()
	g := texturedGray(11)
	key, err := watermark.NewKey([]byte("colour-test-key-0123456789ab"))
	if err != nil {
		t.Fatal(err)
	}
	p := watermark.Payload{ID: 77, Version: watermark.PayloadVersion}
	m, err := watermark.Embed(g, key, p)
	if err != nil {
		t.Fatal(err)
	}
	rgb := &dicomio.Image{Rows: 192, Columns: 192, Frames: 1, Samples: 3, BitsAllocated: 8, BitsStored: 8, Photometric: "RGB",
		U8: make([]uint8, 3*len(m.Pix))}
	for i, v := range m.Pix {
		rgb.U8[3*i], rgb.U8[3*i+1], rgb.U8[3*i+2] = uint8(v), uint8(v), uint8(v)
	}
	sc := filepath.Join(dir, "sc.dcm")
	if _, err := dicomio.WriteSynthetic(t.Context(), sc, dicomio.SyntheticImage{Pixels: rgb, Record: dicomio.GenerationRecord{Mode: dicomio.ModeRemark}}, dicomio.SyntheticOptions{RunID: "colour"}); err != nil {
		t.Fatal(err)
	}
	v := VerifyFile(sc, key)
	if v.Error != "" || v.Result == nil || v.Result.Payload == nil || v.Result.Payload.ID != p.ID {
		t.Errorf("RGB secondary capture: %+v %+v", v, v.Result)
	}

	const sr = "../../../shared/data/cxr/train/CXR-P0003/ACCD2E2586B60/SR01.dcm"
	if _, err := os.Stat(sr); err != nil {
		t.Skipf("a report from ../shared/data is missing (%v)", err)
	}
	if v := VerifyFile(sr, key); !v.Skipped || v.Error != "" {
		t.Errorf("structured report: %+v, want skipped", v)
	}
}

// TestEmbedFileRefusesMarked checks that an image already carrying the key's payload is not
// marked again (its payload links it to its manifest row) unless Replace says so.
func TestEmbedFileRefusesMarked(t *testing.T) {
	dir := t.TempDir()
	g := texturedGray(5)
	in := filepath.Join(dir, "scan.png")
	if err := Write(in, g, PNG); err != nil {
		t.Fatal(err)
	}
	key, err := watermark.NewKey([]byte("remark-test-key-0123456789ab"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := EmbedFile(t.Context(), in, key, EmbedOptions{OutDir: filepath.Join(dir, "1"), Payload: watermark.Payload{ID: 1, Version: 1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = EmbedFile(t.Context(), first.Output, key, EmbedOptions{OutDir: filepath.Join(dir, "2"), Payload: watermark.Payload{ID: 2, Version: 1}})
	if !errors.Is(err, ErrMarked) {
		t.Fatalf("marking a marked image again: %v, want ErrMarked", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "2", "scan.png")); err == nil {
		t.Error("a refused image was written")
	}
	again, err := EmbedFile(t.Context(), first.Output, key, EmbedOptions{OutDir: filepath.Join(dir, "3"), Payload: watermark.Payload{ID: 3, Version: 1}, Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if v := VerifyFile(again.Output, key); v.Result == nil || v.Result.Payload == nil || v.Result.Payload.ID != 3 {
		t.Errorf("replaced mark: %+v", v.Result)
	}
	// Another key's mark is not this key's business.
	other, _ := watermark.NewKey([]byte("another-key-0123456789abcdef"))
	if _, err := EmbedFile(t.Context(), first.Output, other, EmbedOptions{OutDir: filepath.Join(dir, "4"), Payload: watermark.Payload{ID: 4, Version: 1}}); err != nil {
		t.Errorf("marking with another key: %v", err)
	}
}

// texturedGray is a 192 px 8-bit image with smooth structure and fine noise, different for
// each seed: a host the mark verifies on.
func texturedGray(seed uint32) *watermark.Gray {
	g := watermark.NewGray(192, 192, 8)
	fx, fy := 11+float64(seed%9), 13+float64(seed*7%17)
	for i := range g.Pix {
		x, y := float64(i%g.Width), float64(i/g.Width)
		seed = seed*1664525 + 1013904223
		g.Pix[i] = uint16(120 + 45*math.Sin(x/fx)*math.Cos(y/fy) + float64(seed>>28))
	}
	return g
}

func TestRecordMismatch(t *testing.T) {
	p := watermark.Payload{ID: 0x1234, Version: watermark.PayloadVersion}
	other := watermark.Payload{ID: 0x999, Version: watermark.PayloadVersion}
	read := func(present bool, payload *watermark.Payload) *watermark.Result {
		return &watermark.Result{Present: present, Payload: payload, KeyID: "aaaa"}
	}
	for _, c := range []struct {
		name string
		v    Verdict
		want string // a word the note must hold; "" for no note
	}{
		{"no record", Verdict{Result: read(false, nil)}, ""},
		{"agrees", Verdict{Result: read(true, &p), RecordedPayload: p.String(), RecordedKeyID: "aaaa"}, ""},
		{"other key", Verdict{Result: read(false, nil), RecordedPayload: p.String(), RecordedKeyID: "bbbb"}, "bbbb"},
		{"mark gone", Verdict{Result: read(false, nil), RecordedPayload: p.String(), RecordedKeyID: "aaaa"}, p.String()},
		{"other payload", Verdict{Result: read(true, &other), RecordedPayload: p.String(), RecordedKeyID: "aaaa"}, "changed after marking"},
		{"present, not decoded", Verdict{Result: read(true, nil), RecordedPayload: p.String(), RecordedKeyID: "aaaa"}, "do not carry"},
	} {
		got := c.v.RecordMismatch()
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want a note with %q", c.name, got, c.want)
		}
	}
}
