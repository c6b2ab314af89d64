package wmfile

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/watermark"
)

// TestNoFalsePositivesAsVerifyRead runs the detector on every distinct unmarked image of
// ../shared/data/dicom as augment watermark verify reads it (Read: colour as luma, every
// transfer syntax the project decodes; an image stored in several transfer syntaxes once), in
// all 8 orientations: none may be present or carry a payload. The watermark package's
// false-positive test reads images with its own loader, which leaves out the colour ones the
// project's reader decodes; this one reads them as the command does, the colour images too (RGB and YBR secondary captures, ultrasound, JPEG-LS,
// JPEG 2000): about a minute.
func TestNoFalsePositivesAsVerifyRead(t *testing.T) {
	root := filepath.Join("..", "..", "..", "shared", "data", "dicom")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("real test data %s is absent (a fresh clone has no ../shared): %v", root, err)
	}
	key, err := watermark.NewKey([]byte("null-check-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	read, colour := 0, 0
	seen := map[[32]byte]bool{} // one image stored in several transfer syntaxes is read once
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if kind, err := SniffFile(path); err != nil || kind != DICOM {
			return nil
		}
		_, img, err := dicomio.ReadImage(path, dicomio.ReadOptions{})
		if err != nil || img == nil {
			return nil // not decoded, or not an image
		}
		isColour := img.Samples == 3
		f, err := Read(path)
		if errors.Is(err, dicomio.ErrNotImage) || err != nil {
			return nil
		}
		if f.Image.Width < watermark.MinDetectSide || f.Image.Height < watermark.MinDetectSide {
			return nil
		}
		h := sha256.New()
		binary.Write(h, binary.LittleEndian, []int32{int32(f.Image.Width), int32(f.Image.Height)})
		binary.Write(h, binary.LittleEndian, f.Image.Pix)
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		if seen[sum] {
			return nil
		}
		seen[sum] = true
		read++
		if isColour {
			colour++
		}
		for o := 0; o < 8; o++ {
			r, err := watermark.Detect(watermark.Orient(f.Image, o), key)
			if err != nil {
				t.Errorf("%s orientation %d: %v", path, o, err)
				continue
			}
			if r.Present || r.Payload != nil {
				t.Errorf("%s orientation %d: unmarked image read as present (score %.2f, payload %v)", path, o, r.Score, r.Payload)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if colour < 5 {
		t.Fatalf("only %d colour images read from %s", colour, root)
	}
	t.Logf("%d distinct images (%d colour, read as luma), 8 orientations each: none present", read, colour)
}
