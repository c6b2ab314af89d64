package watermark

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/medaugment/augment/dicomio"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

const sharedData = "../../shared/data"

// needData skips the test when the shared data folder is absent.
func needData(t testing.TB, sub string) string {
	t.Helper()
	p := filepath.Join(sharedData, sub)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real test data %s is absent (a fresh clone has no ../shared): %v", p, err)
	}
	return p
}

// readDICOMGray decodes the first frame of a DICOM image into a Gray: with the project's
// reader (package dicomio, every transfer syntax it decodes) when it can, else with
// suyashkumar/dicom for native and baseline-JPEG pixel data (RGB as luma). Panics become
// errors.
func readDICOMGray(path string) (g *Gray, err error) {
	if g, err := readWithDicomio(path); err == nil {
		return g, nil
	}
	defer func() {
		if r := recover(); r != nil {
			g, err = nil, fmt.Errorf("%s: parser panic: %v", path, r)
		}
	}()
	ds, err := dicom.ParseFile(path, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	el, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		return nil, fmt.Errorf("%s: no pixel data", path)
	}
	info := dicom.MustGetPixelDataInfo(el.Value)
	if len(info.Frames) == 0 {
		return nil, fmt.Errorf("%s: no frames", path)
	}
	bitsStored := 8
	if e, err := ds.FindElementByTag(tag.BitsStored); err == nil {
		if v, ok := e.Value.GetValue().([]int); ok && len(v) > 0 {
			bitsStored = v[0]
		}
	}
	f := info.Frames[0]
	if f.Encapsulated {
		im, err := jpeg.Decode(bytes.NewReader(f.EncapsulatedData.Data))
		if err != nil {
			return nil, fmt.Errorf("%s: jpeg: %w", path, err)
		}
		return grayFromImage(im, 8), nil
	}
	nf, err := f.GetNativeFrame()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	w, h := nf.Cols(), nf.Rows()
	if w < 1 || h < 1 || bitsStored < 1 || bitsStored > 16 {
		return nil, fmt.Errorf("%s: unsupported geometry", path)
	}
	out := NewGray(w, h, bitsStored)
	m := int(out.Max())
	vals := make([]int, w*h)
	minV := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			px, err := nf.GetPixel(x, y)
			if err != nil || len(px) == 0 {
				return nil, fmt.Errorf("%s: pixel (%d,%d): %v", path, x, y, err)
			}
			s := px[0]
			if len(px) >= 3 {
				s = (299*px[0] + 587*px[1] + 114*px[2]) / 1000
			}
			vals[y*w+x] = s
			minV = min(minV, s)
		}
	}
	for i, s := range vals {
		out.Pix[i] = uint16(max(0, min(m, s-minV)))
	}
	return out, nil
}

func grayFromImage(im image.Image, bits int) *Gray {
	b := im.Bounds()
	g := NewGray(b.Dx(), b.Dy(), bits)
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			r, gg, bb, _ := im.At(b.Min.X+x, b.Min.Y+y).RGBA()
			l := (299*r + 587*gg + 114*bb) / 1000
			g.Pix[y*g.Width+x] = uint16(l >> (16 - bits))
		}
	}
	return g
}

// dicomFiles lists the .dcm files (and extension-less files) under dir, sorted.
func dicomFiles(t testing.TB, dir string) []string {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n := strings.ToLower(d.Name())
		if strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".jsonl") || strings.HasSuffix(n, ".csv") ||
			strings.HasSuffix(n, ".nii") || strings.HasSuffix(n, ".gz") || strings.HasSuffix(n, ".txt") ||
			strings.HasSuffix(n, ".md") || n == "license" || strings.HasPrefix(n, "sr") || strings.HasSuffix(n, ".debian") {
			return nil
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	sort.Strings(out)
	return out
}

// cxrImages loads up to n chest X-rays (every k-th file), skipping the test when the
// corpus is absent.
func cxrImages(t testing.TB, n int) []*Gray {
	t.Helper()
	dir := needData(t, "cxr")
	var files []string
	for _, f := range dicomFiles(t, dir) {
		if strings.HasPrefix(filepath.Base(f), "CR") {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Skipf("no CR files under %s", dir)
	}
	step := max(1, len(files)/n)
	var out []*Gray
	for i := 0; i < len(files) && len(out) < n; i += step {
		g, err := readDICOMGray(files[i])
		if err != nil {
			t.Fatalf("read %s: %v", files[i], err)
		}
		out = append(out, g)
	}
	return out
}

// mrImage loads the 12-bit MR slice stored in explicit little endian.
func mrImage(t testing.TB) *Gray {
	t.Helper()
	p := filepath.Join(needData(t, "dicom/dcm_qa_ts"), "In", "1.dcm")
	g, err := readDICOMGray(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return g
}

// syntheticCT draws a 16-bit CT-like slice: a body ellipse of soft tissue with organs, bone
// ring, lungs, and quantum noise, in air, stored with an offset of 1024 (HU+1024)·16.
func syntheticCT(w, h int, seed uint64) *Gray {
	rng := rand.New(rand.NewPCG(seed, 7))
	g := NewGray(w, h, 16)
	cx, cy := float64(w)/2, float64(h)/2
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			u, v := (float64(x)-cx)/(0.45*float64(w)), (float64(y)-cy)/(0.38*float64(h))
			r := math.Hypot(u, v)
			hu := -1000.0
			switch {
			case r < 0.8 && math.Hypot(math.Abs(u)-0.4, v*1.1) < 0.3:
				hu = -850 + 60*math.Sin(9*u)*math.Cos(7*v) // lungs with vessels
			case r < 0.88:
				hu = 40 + 30*math.Sin(5*u+2*v) // soft tissue with organs
			case r < 0.95:
				hu = 900 + 200*math.Cos(20*u) // bone ring
			case r < 1:
				hu = -100 // fat
			}
			hu += 12 * rng.NormFloat64()
			g.Pix[y*w+x] = uint16(math.Max(0, math.Min(65535, (hu+1024)*16)))
		}
	}
	return g
}

// readWithDicomio decodes the first frame of a single-sample image with package dicomio
// (signed values offset to unsigned).
func readWithDicomio(path string) (g *Gray, err error) {
	defer func() {
		if r := recover(); r != nil {
			g, err = nil, fmt.Errorf("%s: reader panic: %v", path, r)
		}
	}()
	_, img, err := dicomio.ReadImage(path, dicomio.ReadOptions{})
	if err != nil || img == nil {
		return nil, fmt.Errorf("%s: not decoded: %v", path, err)
	}
	bits := img.BitsStored
	if img.Samples != 1 || bits < 1 || bits > 16 || img.Rows < 1 || img.Columns < 1 {
		return nil, fmt.Errorf("%s: not a single-sample image of at most 16 bits", path)
	}
	n := img.Rows * img.Columns
	out := NewGray(img.Columns, img.Rows, bits)
	m := int(out.Max())
	shift := 0
	if img.Signed {
		shift = 1 << (bits - 1)
	}
	for i := 0; i < n; i++ {
		var v int
		switch {
		case img.U8 != nil:
			v = int(img.U8[i])
		case img.U16 != nil:
			v = int(img.U16[i])
		case img.I8 != nil:
			v = int(img.I8[i]) + shift
		case img.I16 != nil:
			v = int(img.I16[i]) + shift
		default:
			return nil, fmt.Errorf("%s: pixel type not handled", path)
		}
		out.Pix[i] = uint16(max(0, min(m, v)))
	}
	return out, nil
}
