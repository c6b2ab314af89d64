package dicomio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestReadDeflatedImageFrames reads the segmentations stored with Deflated Image Frame
// Compression (1.2.840.10008.1.2.8.1, each frame deflated on its own) and checks that their
// pixels equal those of the same segmentations stored natively.
func TestReadDeflatedImageFrames(t *testing.T) {
	dir := filepath.Join(sharedDICOM, "pydicom-data", "data")
	for _, tc := range []struct{ file, twin string }{
		{"liver_deflate.dcm", "liver.dcm"},
		{"liver_nonbyte_aligned_deflate.dcm", "liver_nonbyte_aligned.dcm"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if _, err := os.Stat(path); err != nil {
				t.Skipf("corpus file missing: %v", err)
			}
			in, img, err := ReadImage(path, ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if in.TransferSyntaxUID != "1.2.840.10008.1.2.8.1" {
				t.Fatalf("transfer syntax %q", in.TransferSyntaxUID)
			}
			_, want, err := ReadImage(filepath.Join(dir, tc.twin), ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if img.Frames != want.Frames || img.Rows != want.Rows || img.Columns != want.Columns {
				t.Fatalf("%d frames of %dx%d, native twin %d of %dx%d", img.Frames, img.Rows, img.Columns, want.Frames, want.Rows, want.Columns)
			}
			if len(img.U8) == 0 || !bytes.Equal(img.U8, want.U8) {
				t.Fatalf("pixels differ from the native twin (%d and %d samples)", len(img.U8), len(want.U8))
			}
		})
	}
}
