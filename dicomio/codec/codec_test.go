package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// packBits encodes one byte plane with PackBits, using both literal and replicate runs.
func packBits(src []byte) []byte {
	var out []byte
	for i := 0; i < len(src); {
		run := 1
		for i+run < len(src) && run < 128 && src[i+run] == src[i] {
			run++
		}
		if run >= 2 {
			out = append(out, byte(int8(1-run)), src[i])
			i += run
			continue
		}
		j := i
		for j < len(src) && j-i < 128 && (j+1 >= len(src) || src[j+1] != src[j]) {
			j++
		}
		if j == i {
			j = i + 1
		}
		out = append(out, byte(j-i-1))
		out = append(out, src[i:j]...)
		i = j
	}
	if len(out)%2 == 1 {
		out = append(out, 0x80) // no-op padding to an even length
	}
	return out
}

// encodeRLE builds a DICOM RLE Lossless frame from little endian, pixel-interleaved samples.
func encodeRLE(data []byte, info FrameInfo) []byte {
	bps := info.bytesPerSample()
	npix := info.Rows * info.Columns
	nseg := info.SamplesPerPixel * bps
	header := make([]byte, 64)
	binary.LittleEndian.PutUint32(header, uint32(nseg))
	var body []byte
	for s := 0; s < nseg; s++ {
		sample, byteIndex := s/bps, s%bps
		plane := make([]byte, npix)
		for p := range plane {
			plane[p] = data[p*info.SamplesPerPixel*bps+sample*bps+(bps-1-byteIndex)]
		}
		binary.LittleEndian.PutUint32(header[4+4*s:], uint32(64+len(body)))
		body = append(body, packBits(plane)...)
	}
	return append(header, body...)
}

// testPattern returns a frame of stored values with flat areas and noise, so that RLE uses both
// kinds of run.
func testPattern(info FrameInfo, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	bps := info.bytesPerSample()
	out := make([]byte, info.frameBytes())
	for y := 0; y < info.Rows; y++ {
		for x := 0; x < info.Columns; x++ {
			for s := 0; s < info.SamplesPerPixel; s++ {
				var v uint32
				if x < info.Columns/2 {
					v = uint32(r.IntN(1 << min(info.BitsStored, 31)))
				} else {
					v = uint32(y * (s + 1))
				}
				o := ((y*info.Columns+x)*info.SamplesPerPixel + s) * bps
				for b := 0; b < bps; b++ {
					out[o+b] = byte(v >> (8 * b))
				}
			}
		}
	}
	return out
}

// TestRLERoundTrip encodes synthetic frames with PackBits and checks that Decode returns the
// same stored values, for 8/16/32 bits and 1 or 3 samples.
func TestRLERoundTrip(t *testing.T) {
	cases := []FrameInfo{
		{Rows: 7, Columns: 9, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8, Photometric: "MONOCHROME2"},
		{Rows: 32, Columns: 300, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: 12, Photometric: "MONOCHROME2"},
		{Rows: 16, Columns: 16, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: 16, Signed: true, Photometric: "MONOCHROME2"},
		{Rows: 10, Columns: 20, SamplesPerPixel: 3, BitsAllocated: 8, BitsStored: 8, Photometric: "RGB"},
		{Rows: 5, Columns: 6, SamplesPerPixel: 3, BitsAllocated: 16, BitsStored: 16, Photometric: "RGB"},
		{Rows: 4, Columns: 4, SamplesPerPixel: 1, BitsAllocated: 32, BitsStored: 32, Photometric: "MONOCHROME2"},
	}
	for i, info := range cases {
		want := testPattern(info, uint64(i))
		got, err := Decode(RLELossless, encodeRLE(want, info), info)
		if err != nil {
			t.Fatalf("case %d %+v: %v", i, info, err)
		}
		if !bytes.Equal(got.Data, want) {
			t.Fatalf("case %d %+v: decoded values differ from the encoded ones", i, info)
		}
		if got.Photometric != info.Photometric {
			t.Fatalf("case %d: photometric %q, want %q", i, got.Photometric, info.Photometric)
		}
	}
}

// TestJPEGBaselineRoundTrip encodes a greyscale and a colour image with Go's image/jpeg and
// checks that Decode returns them within the loss of quality 95.
func TestJPEGBaselineRoundTrip(t *testing.T) {
	const w, h = 64, 48
	gray := image.NewGray(image.Rect(0, 0, w, h))
	rgb := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			gray.SetGray(x, y, color.Gray{uint8(x*3 + y)})
			rgb.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 128, 255})
		}
	}
	cases := []struct {
		name string
		img  image.Image
		info FrameInfo
		// want returns the expected sample s of pixel (x, y)
		want        func(x, y, s int) int
		photometric string
	}{
		{"gray", gray, FrameInfo{Rows: h, Columns: w, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8, Photometric: "MONOCHROME2"},
			func(x, y, _ int) int { return x*3 + y }, "MONOCHROME2"},
		{"ycbcr", rgb, FrameInfo{Rows: h, Columns: w, SamplesPerPixel: 3, BitsAllocated: 8, BitsStored: 8, Photometric: "YBR_FULL_422"},
			func(x, y, s int) int {
				yy, cb, cr := color.RGBToYCbCr(uint8(x*4), uint8(y*5), 128)
				return int([]uint8{yy, cb, cr}[s])
			}, "YBR_FULL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, tc.img, &jpeg.Options{Quality: 95}); err != nil {
				t.Fatal(err)
			}
			got, err := Decode(JPEGBaseline, buf.Bytes(), tc.info)
			if err != nil {
				t.Fatal(err)
			}
			if got.Photometric != tc.photometric {
				t.Fatalf("photometric %q, want %q", got.Photometric, tc.photometric)
			}
			spp := tc.info.SamplesPerPixel
			var sumErr float64
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					for s := 0; s < spp; s++ {
						d := int(got.Data[(y*w+x)*spp+s]) - tc.want(x, y, s)
						sumErr += float64(max(d, -d))
					}
				}
			}
			if mean := sumErr / float64(w*h*spp); mean > 3 {
				t.Fatalf("mean absolute error %.2f, want at most 3", mean)
			}
		})
	}
}

// TestDecodeErrors checks that bad requests and corrupt or truncated frames give clear errors.
func TestDecodeErrors(t *testing.T) {
	mono := FrameInfo{Rows: 8, Columns: 8, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8, Photometric: "MONOCHROME2"}
	rle := encodeRLE(testPattern(mono, 7), mono)
	var jpg bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	if err := jpeg.Encode(&jpg, img, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		ts    string
		frame []byte
		info  FrameInfo
		want  string // substring of the error
	}{
		{"mpeg2", "1.2.840.10008.1.2.4.100", rle, mono, "1.2.840.10008.1.2.4.100 (MPEG2 Main Profile / Main Level)"},
		{"unknown uid", "1.2.3.4", rle, mono, "1.2.3.4 (unknown transfer syntax)"},
		{"native", "1.2.840.10008.1.2.1", rle, mono, "Explicit VR Little Endian"},
		{"empty frame", RLELossless, nil, mono, "empty frame"},
		{"zero rows", RLELossless, rle, FrameInfo{Columns: 8, SamplesPerPixel: 1, BitsAllocated: 8}, "invalid frame size"},
		{"12 bits allocated", RLELossless, rle, FrameInfo{Rows: 8, Columns: 8, SamplesPerPixel: 1, BitsAllocated: 12}, "bits allocated 12"},
		{"too large", RLELossless, rle, FrameInfo{Rows: 65536, Columns: 65536, SamplesPerPixel: 3, BitsAllocated: 16}, "exceeds the limit"},
		{"rle short header", RLELossless, rle[:40], mono, "shorter than its 64-byte header"},
		{"rle truncated", RLELossless, rle[:70], mono, "truncated"},
		{"rle wrong segments", RLELossless, rle, FrameInfo{Rows: 8, Columns: 8, SamplesPerPixel: 3, BitsAllocated: 8}, "segments"},
		{"rle huge for its size", RLELossless, rle, FrameInfo{Rows: 4000, Columns: 4000, SamplesPerPixel: 1, BitsAllocated: 8}, "truncated"},
		{"jpeg not jpeg", JPEGBaseline, []byte("not a jpeg at all"), mono, "no JPEG start-of-image"},
		{"jpeg truncated", JPEGBaseline, jpg.Bytes()[:jpg.Len()/2], mono, "JPEG"},
		{"jpeg size mismatch", JPEGBaseline, jpg.Bytes(), FrameInfo{Rows: 16, Columns: 8, SamplesPerPixel: 1, BitsAllocated: 8}, "the dataset says"},
		{"jpeg-ls garbage", JPEGLSLossless, []byte{0xFF, 0xD8, 0xFF, 0xF7, 0x00}, mono, "JPEG-LS"},
		{"j2k garbage", JPEG2000Lossless, []byte{0xFF, 0x4F, 0xFF, 0x51, 0x00, 0x29, 1, 2, 3}, mono, "JPEG 2000"},
		{"j2k not j2k", JPEG2000, []byte("plain text"), mono, "no JPEG 2000 codestream"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.ts, tc.frame, tc.info)
			if err == nil {
				t.Fatalf("no error, decoded %d bytes", len(got.Data))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	if _, err := Decode("1.2.840.10008.1.2.4.100", rle, mono); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("unsupported syntax: error %v is not ErrUnsupported", err)
	}
}

// TestDecodeTruncatedCorpusFrames cuts real frames of every compressed syntax short and checks
// that each gives an error (never a panic or a silently partial image), and that random damage
// never panics.
func TestDecodeTruncatedCorpusFrames(t *testing.T) {
	// The smallest frame of each syntax keeps the test quick.
	smallest := map[string]testInstance{}
	files := map[string]string{}
	for _, ref := range compressedRefs(t) {
		if corruptInReference[ref.File] != "" {
			continue
		}
		inst, err := loadInstance(filepath.Join(ref.dir, ref.File))
		if err != nil || len(inst.frames) == 0 {
			continue
		}
		if old, ok := smallest[inst.ts]; !ok || inst.info.frameBytes() < old.info.frameBytes() {
			smallest[inst.ts] = inst
			files[inst.ts] = ref.File
		}
	}
	for ts, inst := range smallest {
		frame, file := inst.frames[0], files[ts]
		t.Run(Name(ts), func(t *testing.T) {
			for _, keep := range []int{len(frame) / 2, len(frame) * 9 / 10, 20} {
				if _, err := Decode(inst.ts, frame[:keep], inst.info); err == nil {
					t.Errorf("%s cut to %d of %d bytes: no error", file, keep, len(frame))
				}
			}
			r := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < 20; i++ {
				bad := bytes.Clone(frame)
				for k := 0; k < 8; k++ {
					bad[r.IntN(len(bad))] = byte(r.IntN(256))
				}
				_, _ = Decode(inst.ts, bad, inst.info) // must not panic or crash
			}
		})
	}
	if len(smallest) < 6 {
		t.Fatalf("exercised %d compressed syntaxes, want at least 6", len(smallest))
	}
}

// TestSplitFrames checks the grouping of fragments into frames.
func TestSplitFrames(t *testing.T) {
	soi := func(s string) []byte { return append([]byte{0xFF, 0xD8}, s...) }
	cases := []struct {
		name    string
		ts      string
		frags   [][]byte
		offsets []uint64
		frames  int
		want    []string
		wantErr bool
	}{
		{"one frame, many fragments", JPEGBaseline, [][]byte{soi("a"), []byte("b"), []byte("c")}, nil, 1, []string{"\xff\xd8abc"}, false},
		{"one per frame", RLELossless, [][]byte{[]byte("x"), []byte("y")}, nil, 2, []string{"x", "y"}, false},
		{"by markers", JPEGBaseline, [][]byte{soi("a"), []byte("b"), soi("c")}, nil, 2, []string{"\xff\xd8ab", "\xff\xd8c"}, false},
		{"by offsets", RLELossless, [][]byte{[]byte("aa"), []byte("bb"), []byte("cc")}, []uint64{0, 20}, 2, []string{"aabb", "cc"}, false},
		{"bad offsets fall back to markers", JPEGBaseline, [][]byte{soi("a"), []byte("b"), soi("c")}, []uint64{0, 3}, 2, []string{"\xff\xd8ab", "\xff\xd8c"}, false},
		{"too few fragments", RLELossless, [][]byte{[]byte("x")}, nil, 2, nil, true},
		{"no markers for RLE", RLELossless, [][]byte{[]byte("x"), []byte("y"), []byte("z")}, nil, 2, nil, true},
		{"marker count mismatch", JPEGBaseline, [][]byte{soi("a"), soi("b"), soi("c")}, nil, 2, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitFrames(tc.ts, tc.frags, tc.offsets, tc.frames)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error, got %d frames", len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d frames, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Fatalf("frame %d = %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestSupported checks the list of decodable syntaxes, with the UID padding DICOM files carry.
func TestSupported(t *testing.T) {
	for _, ts := range []string{RLELossless, JPEGBaseline, JPEGExtended, JPEGLossless, JPEGLosslessSV1,
		JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K, DeflatedImageFrame,
		JPEGBaseline + "\x00", RLELossless + " "} {
		if !Supported(ts) {
			t.Errorf("Supported(%q) = false", ts)
		}
	}
	for _, ts := range []string{"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.100", "", "1.2.840.10008.1.2.4.53"} {
		if Supported(ts) {
			t.Errorf("Supported(%q) = true", ts)
		}
	}
}
