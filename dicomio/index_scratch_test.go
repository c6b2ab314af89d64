package dicomio

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestScanReusedBuffersMatchScanFile scans the shared corpora (chest X-rays and conformance
// files: JPEG, RLE, deflated frames, native, reports) with Scan, whose workers reuse their
// file and pixel buffers from file to file, and checks every Record, pixel hash included,
// against ScanFile of the same path on its own buffers.
func TestScanReusedBuffersMatchScanFile(t *testing.T) {
	var paths []string
	for _, root := range []string{filepath.Join(sharedCXR, "train"), sharedDICOM} {
		if _, err := os.Stat(root); err == nil {
			paths = append(paths, root)
		}
	}
	if len(paths) == 0 {
		t.Skipf("shared corpora missing under %s and %s", sharedCXR, sharedDICOM)
	}
	opt := ScanOptions{Decode: true, PixelHash: true, Workers: 2}
	n, hashed := 0, 0
	err := Scan(context.Background(), paths, opt, func(rec Record) error {
		want := ScanFile(rec.Instance.Path, opt)
		if !reflect.DeepEqual(rec, want) {
			t.Errorf("%s: Scan record differs from ScanFile's:\n%+v\n%+v", rec.Instance.Path, rec, want)
		}
		n++
		if rec.PixelSHA256 != "" {
			hashed++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if hashed < 500 {
		t.Fatalf("%d of %d files had their pixels hashed, want at least 500", hashed, n)
	}
	t.Logf("%d files, %d pixel hashes", n, hashed)
}
