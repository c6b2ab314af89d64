package codec

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// turboFrames returns the 8-bit DCT JPEG frames of the conformance corpus and of the chest
// X-ray corpus (every frame of every file), named by file.
func turboFrames(t *testing.T) (names []string, insts []testInstance, frames [][]byte) {
	t.Helper()
	var paths []string
	for _, pattern := range []string{
		filepath.Join(corpusRoot, "*", "*.dcm"), filepath.Join(corpusRoot, "*", "*", "*.dcm"),
		filepath.Join(corpusRoot, "*", "*", "*", "*.dcm"), "../../../shared/data/cxr/*/*/*/*.dcm",
	} {
		m, _ := filepath.Glob(pattern)
		paths = append(paths, m...)
	}
	for _, p := range paths {
		inst, err := loadInstance(p)
		if err != nil || (inst.ts != JPEGBaseline && inst.ts != JPEGExtended) {
			continue
		}
		for i, fr := range inst.frames {
			h, err := parseJPEGHeader(fr)
			if err != nil || !h.usesTurbo() {
				continue
			}
			names = append(names, strings.TrimPrefix(p, "../../../shared/data/")+"#"+string(rune('0'+i%10)))
			insts = append(insts, inst)
			frames = append(frames, fr)
		}
	}
	return names, insts, frames
}

// TestTurboMatchesIJG decodes every 8-bit DCT frame of the shared corpora with libjpeg-turbo
// (Decode) and with IJG 6b (the library used before, whose output equals the reference's): the
// stored values must be identical, byte for byte, and so must the errors' absence.
func TestTurboMatchesIJG(t *testing.T) {
	names, insts, frames := turboFrames(t)
	if len(frames) == 0 {
		t.Skipf("no 8-bit JPEG frames found under %s or ../shared/data/cxr", corpusRoot)
	}
	cxr := 0
	for i, fr := range frames {
		got, err := Decode(insts[i].ts, fr, insts[i].info)
		want, werr := decodeJPEGWith(fr, insts[i].info, nil, false)
		if (err == nil) != (werr == nil) {
			t.Errorf("%s: libjpeg-turbo error %v, IJG error %v", names[i], err, werr)
			continue
		}
		if err == nil && !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: libjpeg-turbo and IJG 6b decode different samples", names[i])
		}
		if strings.HasPrefix(names[i], "cxr/") {
			cxr++
		}
	}
	t.Logf("%d frames compared (%d of the chest X-ray corpus)", len(frames), cxr)
}

// TestDecodeIntoReusesBuffer decodes frames of several syntaxes into one buffer, left dirty
// by the frame before: each result must equal Decode's and, where the syntax writes into
// the buffer, be a slice of it.
func TestDecodeIntoReusesBuffer(t *testing.T) {
	gray := FrameInfo{Rows: 48, Columns: 64, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8, Photometric: "MONOCHROME2"}
	img := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	bits := FrameInfo{Rows: 20, Columns: 30, SamplesPerPixel: 1, BitsAllocated: 1, BitsStored: 1, Photometric: "MONOCHROME2"}
	rgb16 := FrameInfo{Rows: 8, Columns: 8, SamplesPerPixel: 3, BitsAllocated: 16, BitsStored: 16, Photometric: "RGB"}
	cases := []struct {
		name   string
		ts     string
		frame  []byte
		info   FrameInfo
		reused bool
	}{
		{"jpeg baseline", JPEGBaseline, jpg.Bytes(), gray, true},
		{"rle", RLELossless, encodeRLE(testPattern(gray, 1), gray), gray, true},
		{"rle 16-bit rgb", RLELossless, encodeRLE(testPattern(rgb16, 2), rgb16), rgb16, true},
		{"deflated", DeflatedImageFrame, deflateRaw(t, testPattern(gray, 3)), gray, true},
		{"deflated 1 bit", DeflatedImageFrame, deflateRaw(t, testPattern(FrameInfo{Rows: 1, Columns: 75, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8}, 4)), bits, true},
		{"8-bit jpeg in 16-bit words allocates", JPEGBaseline, jpg.Bytes(), FrameInfo{Rows: 48, Columns: 64, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: 8, Photometric: "MONOCHROME2"}, false},
	}
	dst := make([]byte, 0, 1<<16)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i := range dst[:cap(dst)] {
				dst[:cap(dst)][i] = 0xA5 // left dirty by an earlier frame
			}
			want, err := Decode(tc.ts, tc.frame, tc.info)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeInto(tc.ts, tc.frame, tc.info, dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Data, want.Data) {
				t.Fatal("DecodeInto and Decode differ")
			}
			if aliases := &got.Data[0] == &dst[:1][0]; aliases != tc.reused {
				t.Fatalf("output in the given buffer: %v, want %v", aliases, tc.reused)
			}
			if _, err := DecodeInto(tc.ts, tc.frame, tc.info, make([]byte, 0, 4)); err != nil {
				t.Fatalf("buffer too small: %v", err)
			}
		})
	}
}

// TestTurboDCMTKEncodedFrames compresses an RGB corpus file with DCMTK's 8-bit lossy encoders
// in the chroma subsamplings and processes that the corpus lacks (4:4:4, 4:2:2, 4:2:0,
// extended, spectral selection and progressive) and checks that libjpeg-turbo and IJG 6b
// decode every frame to the same samples, and that YCbCr stays YCbCr (the encoder's input
// was RGB, so samples differ from it).
func TestTurboDCMTKEncodedFrames(t *testing.T) {
	tool, err := exec.LookPath("dcmcjpeg")
	if err != nil {
		t.Skipf("dcmcjpeg not installed (Debian package dcmtk): %v", err)
	}
	rgb := filepath.Join(corpusRoot, "pydicom-data", "data", "SC_rgb.dcm")
	if _, err := os.Stat(rgb); err != nil {
		t.Skipf("corpus file %s not found", rgb)
	}
	native, err := nativePixels(rgb, 1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
	}{
		{"baseline 4:2:2", []string{"+eb", "+s2"}},
		{"baseline 4:4:4", []string{"+eb", "+s4"}},
		{"baseline 4:2:0", []string{"+eb", "+n1"}},
		{"extended 4:2:2", []string{"+ee", "+be"}},
		{"spectral selection", []string{"+es", "+s4"}},
		{"progressive 4:2:2", []string{"+ep"}},
		{"monochrome", []string{"+eb", "+cm"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.dcm")
			if msg, err := exec.Command(tool, append(tc.args, rgb, out)...).CombinedOutput(); err != nil {
				t.Fatalf("dcmcjpeg %v: %v\n%s", tc.args, err, msg)
			}
			inst, err := loadInstance(out)
			if err != nil {
				t.Fatal(err)
			}
			for i, fr := range inst.frames {
				h, err := parseJPEGHeader(fr)
				if err != nil || !h.usesTurbo() {
					t.Fatalf("frame %d: not an 8-bit DCT frame (%v)", i, err)
				}
				got, err := decodeJPEGWith(fr, inst.info, nil, true)
				if err != nil {
					t.Fatal(err)
				}
				want, err := decodeJPEGWith(fr, inst.info, nil, false)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Data, want.Data) {
					t.Fatalf("frame %d: libjpeg-turbo and IJG 6b decode different samples", i)
				}
				if inst.info.SamplesPerPixel == 3 && i == 0 && bytes.Equal(got.Data, native[:len(got.Data)]) {
					t.Fatal("colour frame came back as RGB, want the stream's YCbCr samples")
				}
			}
		})
	}
}

// TestTurboHandsBackOtherSubsampling checks that chroma subsampling that libjpeg-turbo would
// upsample differently from IJG 6b (4:4:0, 4:1:1) is handed back, and that Decode still
// decodes it through IJG.
func TestTurboHandsBackOtherSubsampling(t *testing.T) {
	info := FrameInfo{Rows: 32, Columns: 32, SamplesPerPixel: 3, BitsAllocated: 8, BitsStored: 8, Photometric: "YBR_FULL"}
	for _, tc := range []struct {
		name string
		h, v byte
	}{{"4:4:0", 1, 2}, {"4:1:1", 4, 1}, {"4:2:0", 2, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			fr := flatColourFrame(32, 32, tc.h, tc.v)
			handled, err := decodeTurbo(fr, info, make([]byte, info.frameBytes()))
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.name == "4:2:0"; handled != want {
				t.Fatalf("handled by libjpeg-turbo: %v, want %v", handled, want)
			}
			d, err := Decode(JPEGBaseline, fr, info)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(d.Data); i += 3 {
				if d.Data[i] != 128 || d.Data[i+1] != 128 || d.Data[i+2] != 128 {
					t.Fatalf("pixel %d is %v, want flat grey 128", i/3, d.Data[i:i+3])
				}
			}
		})
	}
}

// flatColourFrame builds a baseline YCbCr JPEG of w×h flat grey pixels whose luma is sampled
// h×v times the chroma: every block codes DC difference 0 and end-of-block with one-bit codes.
func flatColourFrame(w, hgt int, h, v byte) []byte {
	b := []byte{0xFF, 0xD8}
	b = append(b, 0xFF, 0xDB, 0, 67, 0) // DQT: table 0, all ones
	for i := 0; i < 64; i++ {
		b = append(b, 1)
	}
	b = append(b, 0xFF, 0xC0, 0, 17, 8, byte(hgt>>8), byte(hgt), byte(w>>8), byte(w), 3,
		1, h<<4|v, 0, 2, 0x11, 0, 3, 0x11, 0) // SOF0
	for _, class := range []byte{0x00, 0x10} { // DC and AC table 0: one code of length 1, symbol 0
		b = append(b, 0xFF, 0xC4, 0, 20, class, 1)
		b = append(b, make([]byte, 15)...)
		b = append(b, 0)
	}
	b = append(b, 0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0) // SOS
	mcus := ((w + 8*int(h) - 1) / (8 * int(h))) * ((hgt + 8*int(v) - 1) / (8 * int(v)))
	bits := mcus * (int(h)*int(v) + 2) * 2
	data := make([]byte, (bits+7)/8)
	if r := bits % 8; r != 0 {
		data[len(data)-1] = byte(0xFF >> r)
	}
	b = append(b, data...)
	return append(b, 0xFF, 0xD9)
}

// TestTurboCorruptFrames checks that damaged 8-bit frames are errors that name the problem and
// never end the process: truncation anywhere, a missing end-of-image marker (decodes), a header
// that disagrees with the dataset, and a progressive frame with too many scans.
func TestTurboCorruptFrames(t *testing.T) {
	const w, h = 64, 48
	gray := image.NewGray(image.Rect(0, 0, w, h))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 13)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, gray, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	info := FrameInfo{Rows: h, Columns: w, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8, Photometric: "MONOCHROME2"}
	ref, err := Decode(JPEGBaseline, full, info)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := Decode(JPEGBaseline, full[:len(full)-2], info); err != nil || !bytes.Equal(d.Data, ref.Data) {
		t.Errorf("frame without its end-of-image marker: err %v, same samples %v", err, err == nil && bytes.Equal(d.Data, ref.Data))
	}
	for cut := 4; cut < len(full)-2; cut += max(1, len(full)/97) {
		if _, err := Decode(JPEGBaseline, full[:cut], info); err == nil {
			t.Errorf("frame cut to %d of %d bytes: no error", cut, len(full))
		}
	}
	// A header that disagrees with the dataset: refused by the marker walk before anything is
	// allocated, and by the C side on its own (what libjpeg-turbo read of the header).
	wide := FrameInfo{Rows: h, Columns: w + 1, SamplesPerPixel: 1, BitsAllocated: 8}
	if _, err := Decode(JPEGBaseline, full, wide); err == nil || !strings.Contains(err.Error(), "the dataset says") {
		t.Errorf("size mismatch: error %v", err)
	}
	if _, err := decodeTurbo(full, wide, make([]byte, wide.frameBytes())); err == nil || !strings.Contains(err.Error(), "JPEG header says 64x48") {
		t.Errorf("size mismatch seen by libjpeg-turbo: error %v", err)
	}
	// A progressive frame with 600 DC scans is refused, not decoded scan after scan.
	prog := progressiveDCScans(w, h, 600)
	if _, err := Decode(JPEGBaseline, progressiveDCScans(w, h, 3), info); err != nil {
		t.Errorf("progressive frame with 3 DC scans: %v", err)
	}
	if _, err := Decode(JPEGBaseline, prog, info); err == nil || !strings.Contains(err.Error(), "scans") {
		t.Errorf("progressive frame with 600 scans: error %v, want one about scans", err)
	}
}

// progressiveDCScans builds a grey progressive JPEG of w×h pixels made of n identical DC
// scans, every block's DC difference coded as category 0 with a one-bit Huffman code.
func progressiveDCScans(w, h, n int) []byte {
	b := []byte{0xFF, 0xD8}
	b = append(b, 0xFF, 0xDB, 0, 67, 0) // DQT: table 0, all ones
	for i := 0; i < 64; i++ {
		b = append(b, 1)
	}
	b = append(b, 0xFF, 0xC2, 0, 11, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), 1, 1, 0x11, 0) // SOF2
	b = append(b, 0xFF, 0xC4, 0, 20, 0x00, 1)                                                    // DHT: DC table 0, one code of length 1
	b = append(b, make([]byte, 15)...)
	b = append(b, 0)
	blocks := ((w + 7) / 8) * ((h + 7) / 8)
	data := make([]byte, (blocks+7)/8)
	if r := blocks % 8; r != 0 {
		data[len(data)-1] = byte(0xFF >> r) // pad with one bits
	}
	for i := 0; i < n; i++ {
		b = append(b, 0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 0, 0x00) // SOS: DC first scan, Ss=Se=0, Ah=Al=0
		b = append(b, data...)
	}
	return append(b, 0xFF, 0xD9)
}
