package codec

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestJPEGLSInterleaveModes decodes one RGB image stored as JPEG-LS lossless with interleave
// modes 0 (by plane), 1 (by line) and 2 (by sample): all must give the same pixel-interleaved
// values. The near-lossless version must stay within a small error of them. These files have no
// DICM prefix, so the reference decoder skipped them.
func TestJPEGLSInterleaveModes(t *testing.T) {
	dir := filepath.Join(corpusRoot, "pydicom-data", "data")
	info := FrameInfo{Rows: 256, Columns: 256, SamplesPerPixel: 3, BitsAllocated: 8, BitsStored: 8, Photometric: "RGB"}
	decodeFile := func(name, ts string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			t.Skipf("JPEG-LS interleave files not found in %s", dir)
		}
		if err != nil {
			t.Fatal(err)
		}
		frags, err := rawFragments(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, err := Decode(ts, concat(frags), info)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return d.Data
	}
	ref := decodeFile("JLSL_RGB_ILV0.dcm", JPEGLSLossless)
	for _, name := range []string{"JLSL_RGB_ILV1.dcm", "JLSL_RGB_ILV2.dcm"} {
		if got := decodeFile(name, JPEGLSLossless); !bytes.Equal(got, ref) {
			t.Errorf("%s decodes to other pixels than JLSL_RGB_ILV0.dcm", name)
		}
	}
	near := decodeFile("JLSN_RGB_ILV0.dcm", JPEGLSNearLossless)
	var worst int
	for i := range near {
		d := int(near[i]) - int(ref[i])
		worst = max(worst, d, -d)
	}
	if worst == 0 || worst > 10 {
		t.Errorf("near-lossless differs from lossless by up to %d, want 1..10", worst)
	}
	// The planes really differ, so a mix-up of interleaving would be seen.
	if bytes.Equal(ref[0:1], ref[1:2]) && bytes.Equal(ref[1:2], ref[2:3]) && bytes.Equal(ref[3:4], ref[4:5]) {
		t.Logf("first pixels are grey; comparison still covers the whole image")
	}
}
