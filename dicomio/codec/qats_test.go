package codec

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// nativePixels reads the Pixel Data of a native (uncompressed) file with the test parser and
// returns it as little endian words of the given width.
func nativePixels(path string, width int) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parse %s: parser panicked: %v", path, r)
		}
	}()
	ds, err := dicom.ParseFile(path, nil)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	pd, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	info := dicom.MustGetPixelDataInfo(pd.Value)
	for _, f := range info.Frames {
		nf, err := f.GetNativeFrame()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for y := 0; y < nf.Rows(); y++ {
			for x := 0; x < nf.Cols(); x++ {
				px, err := nf.GetPixel(x, y)
				if err != nil {
					return nil, err
				}
				for _, v := range px {
					for b := 0; b < width; b++ {
						out = append(out, byte(v>>(8*b)))
					}
				}
			}
		}
	}
	return out, nil
}

// TestQATransferSyntaxesAgree checks that the one MR slice stored in 9 transfer syntaxes
// (dcm_qa_ts/In: 3 native, RLE, JPEG lossless SV1 twice, JPEG-LS twice, JPEG 2000) decodes to
// identical pixels: the compressed ones through Decode, the native ones through the test parser.
func TestQATransferSyntaxesAgree(t *testing.T) {
	dir := filepath.Join(corpusRoot, "dcm_qa_ts", "In")
	files, _ := filepath.Glob(filepath.Join(dir, "*.dcm"))
	if len(files) != 9 {
		t.Skipf("dcm_qa_ts corpus not found at %s (want 9 files, found %d)", dir, len(files))
	}
	want, err := nativePixels(files[0], 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 384*384*2 {
		t.Fatalf("%s: %d pixel bytes, want %d", files[0], len(want), 384*384*2)
	}
	for _, path := range files[1:] {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var got []byte
			inst, err := loadInstance(path)
			switch {
			case err == nil:
				d, err := decodeAll(inst)
				if err != nil {
					t.Fatalf("%s (%s): %v", path, Name(inst.ts), err)
				}
				got = d.Data
			default:
				if got, err = nativePixels(path, 2); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s (%s): pixels differ from %s", path, Name(inst.ts), filepath.Base(files[0]))
			}
		})
	}
}
