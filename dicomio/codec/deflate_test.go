package codec

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"strings"
	"testing"
)

// deflateRaw compresses b as a raw deflate stream (RFC 1951).
func deflateRaw(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDeflatedImageFrameRoundTrip deflates native frames (8, 16 and 32 bits, grey and colour
// by pixel or by plane, 1 bit packed) and checks that Decode gives back the stored values,
// pixel-interleaved and 1-bit pixels unpacked.
func TestDeflatedImageFrameRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		info FrameInfo
	}{
		{"8-bit grey", FrameInfo{Rows: 17, Columns: 9, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8, Photometric: "MONOCHROME2"}},
		{"16-bit signed", FrameInfo{Rows: 8, Columns: 13, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: 12, Signed: true, Photometric: "MONOCHROME2"}},
		{"32-bit", FrameInfo{Rows: 5, Columns: 7, SamplesPerPixel: 1, BitsAllocated: 32, BitsStored: 32, Photometric: "MONOCHROME2"}},
		{"rgb by pixel", FrameInfo{Rows: 6, Columns: 11, SamplesPerPixel: 3, BitsAllocated: 8, BitsStored: 8, Photometric: "RGB"}},
		{"rgb by plane", FrameInfo{Rows: 6, Columns: 11, SamplesPerPixel: 3, BitsAllocated: 8, BitsStored: 8, Photometric: "RGB", PlanarConfiguration: 1}},
		{"16-bit rgb by plane", FrameInfo{Rows: 4, Columns: 5, SamplesPerPixel: 3, BitsAllocated: 16, BitsStored: 16, Photometric: "RGB", PlanarConfiguration: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := testPattern(tc.info, 11)
			native := want
			if tc.info.PlanarConfiguration == 1 {
				native = planes(want, tc.info)
			}
			got, err := Decode(DeflatedImageFrame, deflateRaw(t, native), tc.info)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Data, want) {
				t.Fatal("decoded samples differ from the native frame")
			}
			if got.Photometric != tc.info.Photometric {
				t.Fatalf("photometric %q, want %q", got.Photometric, tc.info.Photometric)
			}
		})
	}
	t.Run("1 bit", func(t *testing.T) {
		info := FrameInfo{Rows: 7, Columns: 9, SamplesPerPixel: 1, BitsAllocated: 1, BitsStored: 1, Photometric: "MONOCHROME2"}
		n := info.Rows * info.Columns
		want := make([]byte, n)
		packed := make([]byte, (n+7)/8)
		for i := range want {
			if (i*7+i/5)%3 == 0 {
				want[i] = 1
				packed[i/8] |= 1 << (i % 8)
			}
		}
		got, err := Decode(DeflatedImageFrame, deflateRaw(t, packed), info)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, want) {
			t.Fatalf("unpacked bits %v, want %v", got.Data, want)
		}
	})
}

// planes rearranges pixel-interleaved samples colour by plane.
func planes(src []byte, info FrameInfo) []byte {
	bps, spp, px := info.bytesPerSample(), info.SamplesPerPixel, info.Rows*info.Columns
	out := make([]byte, len(src))
	for p := 0; p < px; p++ {
		for s := 0; s < spp; s++ {
			copy(out[(s*px+p)*bps:(s*px+p+1)*bps], src[(p*spp+s)*bps:(p*spp+s+1)*bps])
		}
	}
	return out
}

// TestDeflatedImageFrameErrors checks that short, cut, corrupt, zlib-wrapped and oversized
// deflated frames are errors that say what is wrong.
func TestDeflatedImageFrameErrors(t *testing.T) {
	info := FrameInfo{Rows: 64, Columns: 64, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: 16, Photometric: "MONOCHROME2"}
	native := testPattern(info, 5)
	full := deflateRaw(t, native)
	var zl bytes.Buffer
	zw := zlib.NewWriter(&zl)
	_, _ = zw.Write(native)
	_ = zw.Close()
	cases := []struct {
		name  string
		frame []byte
		info  FrameInfo
		want  string
	}{
		{"too few pixels", deflateRaw(t, native[:len(native)/2]), info, "truncated"},
		{"cut stream", full[:len(full)/2], info, "deflated frame"},
		{"zlib wrapper", zl.Bytes(), info, "inflate frame"},
		{"garbage", bytes.Repeat([]byte{0xFF}, 64), info, "inflate frame"},
		{"bomb bound", full[:8], FrameInfo{Rows: 8192, Columns: 8192, SamplesPerPixel: 1, BitsAllocated: 16}, "cannot hold"},
		{"ybr 422", full, FrameInfo{Rows: 64, Columns: 64, SamplesPerPixel: 3, BitsAllocated: 8, Photometric: "YBR_FULL_422"}, "not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(DeflatedImageFrame, tc.frame, tc.info)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "Deflated Image Frame Compression") {
				t.Fatalf("error %v does not name the transfer syntax", err)
			}
		})
	}
}
