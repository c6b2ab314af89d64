package dicomio

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadEncodings encodes the same pixels in every native encoding (and without preamble):
// all decode to identical stored values.
func TestReadEncodings(t *testing.T) {
	base := readSynth{rows: 5, cols: 7, frames: 2, bits: 16, bitsStored: 12, signed: true}
	want := ""
	cases := []struct {
		name       string
		ts         string
		noPreamble bool
	}{
		{"explicit little", TSExplicitLittle, false},
		{"implicit little", TSImplicitLittle, false},
		{"explicit big", TSExplicitBig, false},
		{"deflated", TSDeflated, false},
		{"implicit without preamble", TSImplicitLittle, true},
		{"explicit without preamble", TSExplicitLittle, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base
			s.ts, s.noPreamble = c.ts, c.noPreamble
			in, im, err := ReadBytes(readTestFile(t, s), c.name, ReadOptions{}, true)
			if err != nil {
				t.Fatal(err)
			}
			if in.TransferSyntaxUID != c.ts {
				t.Errorf("transfer syntax %s, want %s", in.TransferSyntaxUID, c.ts)
			}
			if im.I16 == nil || len(im.I16) != 5*7*2 || im.Frames != 2 {
				t.Fatalf("want 70 int16 samples in 2 frames, got %s × %d", im.DType(), im.Len())
			}
			h := im.PixelSHA256()
			if want == "" {
				want = h
			} else if h != want {
				t.Errorf("pixel hash %s differs from explicit little endian %s", h, want)
			}
		})
	}
}

// TestReadPixelLayouts checks the unpacking of bit depths, signedness and planar colour.
func TestReadPixelLayouts(t *testing.T) {
	cases := []struct {
		name  string
		s     readSynth
		dtype string
		check func(t *testing.T, im *Image)
	}{
		{"1-bit packed LSB first", readSynth{rows: 3, cols: 5, frames: 2, bits: 1, pixels: []byte{0b10100101, 0b00000001, 0b11110000, 0xFF}}, "uint8",
			func(t *testing.T, im *Image) {
				want := []uint8{1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
				if !equalSlices(im.U8, want) {
					t.Errorf("bits %v, want %v", im.U8, want)
				}
			}},
		{"8-bit signed", readSynth{rows: 1, cols: 2, bits: 8, signed: true, pixels: []byte{0xFF, 0x7F}}, "int8",
			func(t *testing.T, im *Image) {
				if im.I8[0] != -1 || im.I8[1] != 127 {
					t.Errorf("got %v", im.I8)
				}
			}},
		{"16-bit signed big endian", readSynth{rows: 1, cols: 2, bits: 16, signed: true, ts: TSExplicitBig, pixels: []byte{0xFC, 0x18, 0x03, 0xE8}}, "int16",
			func(t *testing.T, im *Image) {
				if im.I16[0] != -1000 || im.I16[1] != 1000 {
					t.Errorf("got %v", im.I16)
				}
			}},
		{"RGB planar to interleaved", readSynth{rows: 1, cols: 2, samples: 3, planar: 1, bits: 8, pixels: []byte{1, 2, 3, 4, 5, 6}}, "uint8",
			func(t *testing.T, im *Image) {
				if want := []uint8{1, 3, 5, 2, 4, 6}; !equalSlices(im.U8, want) {
					t.Errorf("got %v, want %v", im.U8, want)
				}
			}},
		{"YBR_FULL_422 expanded", readSynth{rows: 1, cols: 2, samples: 3, bits: 8, photometric: "YBR_FULL_422", pixels: []byte{10, 20, 128, 129}}, "uint8",
			func(t *testing.T, im *Image) {
				if want := []uint8{10, 128, 129, 20, 128, 129}; !equalSlices(im.U8, want) || im.Photometric != "YBR_FULL" {
					t.Errorf("got %v %s, want %v YBR_FULL", im.U8, im.Photometric, want)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, im, err := ReadBytes(readTestFile(t, c.s), c.name, ReadOptions{}, true)
			if err != nil {
				t.Fatal(err)
			}
			if im.DType() != c.dtype {
				t.Fatalf("dtype %s, want %s", im.DType(), c.dtype)
			}
			c.check(t, im)
		})
	}
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReadErrors checks that bad files give errors with the path and a reason.
func TestReadErrors(t *testing.T) {
	good := readTestFile(t, readSynth{rows: 4, cols: 4, bits: 16})
	truncated := good[:len(good)-10]
	// A deflated data set that inflates past the limit, and attributes that claim far more
	// pixels than the file holds.
	deflated := readTestFile(t, readSynth{rows: 256, cols: 256, bits: 16, ts: TSDeflated, pixels: make([]byte, 256*256*2)})
	claims := readTestFile(t, readSynth{rows: 60000, cols: 60000, frames: 100, bits: 16, pixels: make([]byte, 64)})
	unsupported := readTestFile(t, readSynth{rows: 4, cols: 4, bits: 8, ts: "1.2.840.10008.1.2.4.100", noPixels: true,
		attrs: []readSynthElem{
			rsUS(0x0028, 0x0010, 4, binary.LittleEndian), rsUS(0x0028, 0x0011, 4, binary.LittleEndian),
			rsUS(0x0028, 0x0100, 8, binary.LittleEndian), rsUS(0x0028, 0x0002, 1, binary.LittleEndian),
		}})
	// Encapsulated pixel data: Basic Offset Table and one fragment, then the delimiter.
	encap := append([]byte{}, unsupported...)
	encap = append(encap, 0xE0, 0x7F, 0x10, 0x00, 'O', 'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF)
	encap = append(encap, 0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0)
	encap = append(encap, 0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 1, 2, 3, 4)
	encap = append(encap, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0)
	badLength := append([]byte{}, good[:200]...)
	copy(badLength[len(badLength)-60:], []byte{0x08, 0x00, 0x60, 0x00, 'U', 'T', 0, 0, 0xF0, 0xFF, 0xFF, 0x7F})
	cases := []struct {
		name   string
		data   []byte
		opt    ReadOptions
		reason string
		is     error
	}{
		{"not DICOM", []byte("hello, this is a text file and not a DICOM file at all................................................................................................"), ReadOptions{}, "not DICOM", ErrNotDICOM},
		{"truncated pixel data", truncated, ReadOptions{}, "truncated", ErrTruncated},
		{"deflated data set over the memory limit", deflated, ReadOptions{MaxBytes: 64 << 10}, "too large", ErrTooLarge},
		{"pixels over the memory limit", claims, ReadOptions{}, "too large", ErrTooLarge},
		{"pixels shorter than the attributes say", claims, ReadOptions{MaxBytes: 1 << 50}, "truncated", ErrTruncated},
		{"unsupported transfer syntax", encap, ReadOptions{}, "unsupported transfer syntax 1.2.840.10008.1.2.4.100", ErrUnsupportedTS},
		{"length beyond the end", badLength, ReadOptions{}, "truncated", ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ReadBytes(c.data, "dir/"+c.name+".dcm", c.opt, true)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
			if ErrorReason(err) != c.reason {
				t.Errorf("reason %q, want %q (%v)", ErrorReason(err), c.reason, err)
			}
			if !strings.Contains(err.Error(), "dir/"+c.name+".dcm") {
				t.Errorf("error %q does not name the file", err)
			}
			if c.is == ErrUnsupportedTS && !strings.Contains(err.Error(), "MPEG2") {
				t.Errorf("error %q does not name the syntax", err)
			}
		})
	}
}

// TestReadMetadata checks demographics, the Synthetic Data flag and SR text.
func TestReadMetadata(t *testing.T) {
	le := binary.LittleEndian
	code := func(v, s, m string) []readSynthElem {
		return []readSynthElem{rsStr(0x0008, 0x0100, "SH", v), rsStr(0x0008, 0x0102, "SH", s), rsStr(0x0008, 0x0104, "LO", m)}
	}
	text := func(concept, value string) []readSynthElem {
		return []readSynthElem{
			rsStr(0x0040, 0xA010, "CS", "CONTAINS"), rsStr(0x0040, 0xA040, "CS", "TEXT"),
			rsSeq(0x0040, 0xA043, code("121071", "DCM", concept)), rsStr(0x0040, 0xA160, "UT", value),
		}
	}
	cases := []struct {
		name  string
		attrs []readSynthElem
		check func(t *testing.T, in Instance)
	}{
		{"age string", []readSynthElem{rsStr(0x0010, 0x0040, "CS", "F"), rsStr(0x0010, 0x1010, "AS", "018M")},
			func(t *testing.T, in Instance) {
				if d := in.Demographics; d.Sex != "F" || !d.AgeKnown || d.AgeYears != 1.5 {
					t.Errorf("demographics %+v", d)
				}
			}},
		{"age from birth and study dates", []readSynthElem{rsStr(0x0010, 0x0030, "DA", "19600305"), rsStr(0x0008, 0x0020, "DA", "20200304")},
			func(t *testing.T, in Instance) {
				if d := in.Demographics; !d.AgeKnown || d.AgeYears != 59 || d.Sex != "" {
					t.Errorf("demographics %+v", d)
				}
			}},
		{"nothing known", nil,
			func(t *testing.T, in Instance) {
				if d := in.Demographics; d.AgeKnown || d.Sex != "" || d.EthnicGroup != "" || in.SyntheticData != "" {
					t.Errorf("demographics %+v synthetic %q", d, in.SyntheticData)
				}
			}},
		{"ethnic group code sequence and synthetic data", []readSynthElem{
			rsSeq(0x0010, 0x2161, code("2106-3", "CDCREC", "White")), rsStr(0x0008, 0x001C, "CS", "YES"),
			rsStr(0x0018, 0x0015, "CS", "CHEST"), rsStr(0x0018, 0x5101, "CS", "PA"), rsStr(0x0008, 0x0070, "LO", "ACME"),
			rsStr(0x0008, 0x1090, "LO", "X1"), rsStr(0x0008, 0x0080, "LO", "General"),
		},
			func(t *testing.T, in Instance) {
				d := in.Demographics
				if d.EthnicGroup != "White" || len(d.EthnicCodes) != 1 || d.EthnicCodes[0].Value != "2106-3" {
					t.Errorf("ethnic %+v", d)
				}
				if in.SyntheticData != "YES" || in.BodyPartExamined != "CHEST" || in.ViewPosition != "PA" ||
					in.Manufacturer != "ACME" || in.ManufacturerModelName != "X1" || in.InstitutionName != "General" {
					t.Errorf("instance %+v", in)
				}
			}},
		{"retired ethnic group string", []readSynthElem{rsStr(0x0010, 0x2160, "SH", "Unknown")},
			func(t *testing.T, in Instance) {
				if in.Demographics.EthnicGroup != "Unknown" {
					t.Errorf("ethnic %q", in.Demographics.EthnicGroup)
				}
			}},
		{"basic text SR", []readSynthElem{
			rsStr(0x0040, 0xA040, "CS", "CONTAINER"),
			rsSeq(0x0040, 0xA730, text("Finding", "Pneumonia"), text("Comment", "Right lower lobe.")),
			rsUS(0x0028, 0x0120, 0xFC18, le),
		},
			func(t *testing.T, in Instance) {
				if in.ReportText != "Finding: Pneumonia\nComment: Right lower lobe." {
					t.Errorf("report %q", in.ReportText)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := readSynth{rows: 2, cols: 2, bits: 8, attrs: c.attrs}
			if strings.Contains(c.name, "SR") {
				s.noPixels = true
				s.modality, s.sopClass = "SR", "1.2.840.10008.5.1.4.1.1.88.11"
			}
			for _, ts := range []string{TSExplicitLittle, TSImplicitLittle} {
				s.ts = ts
				in, _, err := ReadBytes(readTestFile(t, s), c.name, ReadOptions{}, false)
				if err != nil {
					t.Fatal(err)
				}
				c.check(t, in)
			}
		})
	}
}

// TestDisplayFrame checks rescale, padding, MONOCHROME1 inversion and the VOI window.
func TestDisplayFrame(t *testing.T) {
	pad := -2000
	im := &Image{Rows: 1, Columns: 4, Frames: 1, Samples: 1, BitsAllocated: 16, BitsStored: 16, Signed: true,
		Photometric: "MONOCHROME2", I16: []int16{-2000, 0, 100, 200}}
	in := &Instance{Path: "x", RescaleSlope: 2, RescaleIntercept: -100, PaddingValue: &pad}
	cases := []struct {
		name        string
		photometric string
		center      []float64
		width       []float64
		want        []float32
	}{
		// modality values: pad, -100, 100, 300; window 101±100 → 0, ~0, ~1
		{"file window", "MONOCHROME2", []float64{100.5}, []float64{201}, []float32{0, 0, 0.5, 1}},
		{"computed window", "MONOCHROME2", nil, nil, []float32{0, 0, 0.5, 1}},
		{"MONOCHROME1 inverted, padding stays black", "MONOCHROME1", []float64{100.5}, []float64{201}, []float32{0, 1, 0.5, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			im.Photometric = c.photometric
			in.WindowCenter, in.WindowWidth = c.center, c.width
			d, err := DisplayFrame(in, im, 0, DisplayOptions{LowPercentile: 0, HighPercentile: 100})
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range c.want {
				if math.Abs(float64(d.Pix[i]-w)) > 0.01 {
					t.Errorf("pixel %d = %.3f, want %.3f (all %v)", i, d.Pix[i], w, d.Pix)
				}
			}
			if d.FromFile != (c.center != nil) {
				t.Errorf("FromFile %v", d.FromFile)
			}
		})
	}
	values, padding, err := ModalityFrame(in, im, 0)
	if err != nil || values[1] != -100 || values[3] != 300 || !padding[0] || padding[1] {
		t.Errorf("modality values %v padding %v err %v", values, padding, err)
	}
}

// TestIsDICOMFile checks detection by content, whatever the name.
func TestIsDICOMFile(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"with-preamble":    readTestFile(t, readSynth{rows: 2, cols: 2}),
		"without-preamble": readTestFile(t, readSynth{rows: 2, cols: 2, noPreamble: true, ts: TSImplicitLittle}),
		"labels.dcm":       []byte("split,file,sop_instance_uid\ntrain,a.dcm,1.2.3\n"),
		"empty":            nil,
	}
	want := map[string]bool{"with-preamble": true, "without-preamble": true}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := IsDICOMFile(p)
		if err != nil || got != want[name] {
			t.Errorf("%s: IsDICOMFile %v %v, want %v", name, got, err, want[name])
		}
	}
}

// TestReadInstancePartial reads metadata from files larger than the first chunk: attributes
// after a large element are found (the read grows), and pixel data is never needed — not
// even when its fragments are corrupt.
func TestReadInstancePartial(t *testing.T) {
	dir := t.TempDir()
	big := readSynthElem{group: 0x0009, elem: 0x1010, vr: "OB", value: make([]byte, 3*readMetaChunk)}
	withBig := readTestFile(t, readSynth{rows: 512, cols: 512, bits: 16,
		attrs: []readSynthElem{big, rsStr(0x0010, 0x0040, "CS", "F"), rsStr(0x0018, 0x5101, "CS", "LL")}})
	corrupt := readTestFile(t, readSynth{rows: 4, cols: 4, bits: 8, ts: "1.2.840.10008.1.2.4.50", noPixels: true,
		attrs: []readSynthElem{rsUS(0x0028, 0x0010, 4, binary.LittleEndian), rsUS(0x0028, 0x0011, 4, binary.LittleEndian),
			rsUS(0x0028, 0x0100, 8, binary.LittleEndian), rsStr(0x0010, 0x0040, "CS", "M")}})
	corrupt = append(corrupt, 0xE0, 0x7F, 0x10, 0x00, 'O', 'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0, 0)
	noise := make([]byte, 3*readMetaChunk)
	for i := range noise {
		noise[i] = byte(i*2654435761>>13) ^ byte(i>>7)
	}
	deflated := readTestFile(t, readSynth{rows: 512, cols: 512, bits: 16, ts: TSDeflated,
		attrs: []readSynthElem{{group: 0x0009, elem: 0x1010, vr: "OB", value: noise}, rsStr(0x0010, 0x0040, "CS", "O")}})
	if len(deflated) < 2*readMetaChunk {
		t.Fatalf("deflated test file of %d bytes fits in the first chunk", len(deflated))
	}
	cases := []struct {
		name, sex string
		data      []byte
		imageErr  error
	}{
		{"attributes after a large element", "F", withBig, nil},
		{"deflated, attributes past the first chunk", "O", deflated, nil},
		{"corrupt fragments", "M", corrupt, ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".dcm")
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			in, err := ReadInstance(p, ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if in.Demographics.Sex != c.sex || !in.HasPixels {
				t.Errorf("sex %q has pixels %v, want %q and true", in.Demographics.Sex, in.HasPixels, c.sex)
			}
			_, im, err := ReadImage(p, ReadOptions{})
			if c.imageErr != nil {
				if !errors.Is(err, c.imageErr) {
					t.Errorf("ReadImage error %v, want %v", err, c.imageErr)
				}
				return
			}
			if err != nil || im.Len() != 512*512 {
				t.Errorf("ReadImage: %v", err)
			}
		})
	}
}

// TestDisplayFrameColour checks the colour paths: RGB scaled by its range, YBR_FULL
// converted to RGB, palette colour refused.
func TestDisplayFrameColour(t *testing.T) {
	in := &Instance{Path: "c"}
	cases := []struct {
		name        string
		photometric string
		samples     int
		u8          []uint8
		want        []float32
		err         error
	}{
		{"RGB", "RGB", 3, []uint8{255, 0, 51}, []float32{1, 0, 0.2}, nil},
		{"YBR_FULL grey", "YBR_FULL", 3, []uint8{128, 128, 128}, []float32{128.0 / 255, 128.0 / 255, 128.0 / 255}, nil},
		{"YBR_FULL red", "YBR_FULL", 3, []uint8{76, 85, 255}, []float32{1, 0, 0}, nil},
		{"palette", "PALETTE COLOR", 1, []uint8{7}, nil, ErrNoDisplay},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			im := &Image{Rows: 1, Columns: 1, Frames: 1, Samples: c.samples, BitsAllocated: 8, BitsStored: 8, Photometric: c.photometric, U8: c.u8}
			d, err := DisplayFrame(in, im, 0, DisplayOptions{})
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("error %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range c.want {
				if math.Abs(float64(d.Pix[i]-w)) > 0.01 {
					t.Errorf("channel %d = %.3f, want %.3f", i, d.Pix[i], w)
				}
			}
		})
	}
}

// TestReadEncapsulatedOffsets builds a 2-frame RLE image whose frames are split over two
// fragments each: the frames are found through the Extended Offset Table (VR OV, which the
// parsing library cannot read and the reader cuts out) or the Basic Offset Table.
func TestReadEncapsulatedOffsets(t *testing.T) {
	le := binary.LittleEndian
	rleFrame := func(px []byte) []byte { // one PackBits segment of literal bytes
		h := make([]byte, 64)
		le.PutUint32(h, 1)
		le.PutUint32(h[4:], 64)
		return append(append(h, byte(len(px)-1)), px...)
	}
	frames := [][]byte{rleFrame([]byte{1, 2, 3, 4}), rleFrame([]byte{5, 6, 7, 8})}
	var items []byte
	var offsets []uint64
	for _, f := range frames {
		offsets = append(offsets, uint64(len(items)))
		half := len(f) / 2
		for _, frag := range [][]byte{f[:half], f[half:]} {
			if len(frag)%2 == 1 {
				frag = append(frag, 0)
			}
			items = append(items, 0xFE, 0xFF, 0x00, 0xE0)
			items = le.AppendUint32(items, uint32(len(frag)))
			items = append(items, frag...)
		}
	}
	pixels := func(bot []byte) []byte {
		out := []byte{0xE0, 0x7F, 0x10, 0x00, 'O', 'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0}
		out = le.AppendUint32(out, uint32(len(bot)))
		out = append(out, bot...)
		out = append(out, items...)
		return append(out, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0)
	}
	var eot, bot []byte
	for _, o := range offsets {
		eot = le.AppendUint64(eot, o)
		bot = le.AppendUint32(bot, uint32(o))
	}
	attrs := []readSynthElem{
		rsUS(0x0028, 0x0002, 1, le), rsStr(0x0028, 0x0004, "CS", "MONOCHROME2"), rsStr(0x0028, 0x0008, "IS", "2"),
		rsUS(0x0028, 0x0010, 2, le), rsUS(0x0028, 0x0011, 2, le), rsUS(0x0028, 0x0100, 8, le), rsUS(0x0028, 0x0101, 8, le),
		rsStr(0x0010, 0x0040, "CS", "F"),
	}
	cases := []struct {
		name  string
		attrs []readSynthElem
		bot   []byte
		ok    bool
	}{
		{"extended offset table", append(append([]readSynthElem{}, attrs...), readSynthElem{group: 0x7FE0, elem: 0x0001, vr: "OV", value: eot}), nil, true},
		{"basic offset table", attrs, bot, true},
		{"no offsets", attrs, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := readTestFile(t, readSynth{ts: "1.2.840.10008.1.2.5", noPixels: true, attrs: c.attrs})
			file = append(file, pixels(c.bot)...)
			in, im, err := ReadBytes(file, c.name, ReadOptions{}, true)
			if !c.ok {
				if err == nil {
					t.Fatal("4 fragments for 2 RLE frames without offsets decoded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := []uint8{1, 2, 3, 4, 5, 6, 7, 8}; !equalSlices(im.U8, want) || in.Demographics.Sex != "F" {
				t.Errorf("pixels %v sex %q, want %v and F", im.U8, in.Demographics.Sex, want)
			}
		})
	}
}
