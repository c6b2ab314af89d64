package watermark

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// largeImage is a real image of clinical size from ../shared/data/dicom.
type largeImage struct{ name, path string }

// largeImages are the distinct greyscale images in ../shared/data/dicom whose short side is
// at least 256 px and whose long side is at least 484 px, one encoding each (several files
// hold the same image in other transfer syntaxes), that the tests' reader decodes: a
// computed radiograph, MR, ultrasound, nuclear-medicine and CT images, and three test
// patterns (not medical images, but what a flat, computer-drawn image does to the mark). The
// chest X-rays of the corpus are at most 256 px; these show what the mark does at the sizes
// scanners write.
var largeImages = []largeImage{
	{"cr-1760px-10bit", "dicom/pydicom-data/data/RG3_J2KI.dcm"},
	{"mr-1024px-12bit", "dicom/pydicom-data/data/MR2_J2KI.dcm"},
	{"us-1024x768-8bit", "dicom/pydicom-data/data/JPGLosslessP14SV1_1s_1f_8b.dcm"},
	{"nm-256x1024-16bit", "dicom/pydicom-data/data/JPEG-LL.dcm"},
	{"ct-512px-16bit-head", "dicom/pydicom-data/data/693_J2KR.dcm"},
	{"ct-512px-16bit-perfusion", "dicom/pydicom-data/data/eCT_Supplemental.dcm"},
	{"ct-512px-13bit", "dicom/pydicom-testfiles/test_files/J2K_pixelrep_mismatch.dcm"},
	{"ct-512px-16bit", "dicom/pydicom-data/data/explicit_VR-UN.dcm"},
	{"ct-512px-12bit", "dicom/pydicom-data/data/bad_sequence.dcm"},
	{"mr-484px-12bit", "dicom/pydicom-data/data/MR-SIEMENS-DICOM-WithOverlays.dcm"},
	{"pattern-512px-12bit", "dicom/pydicom-data/data/mlut_18.dcm"},
	{"pattern-512px-8bit-smpte", "dicom/pydicom-data/data/vlut_04.dcm"},
	{"pattern-512px-8bit-squares", "dicom/pydicom-testfiles/test_files/image_dfl.dcm"},
}

// readLarge decodes one of largeImages, skipping when the data is absent.
func readLarge(tb testing.TB, li largeImage) *Gray {
	tb.Helper()
	needData(tb, "dicom")
	g, err := readDICOMGray(filepath.Join(sharedData, li.path))
	if err != nil {
		tb.Fatalf("%s: %v", li.name, err)
	}
	return g
}

// BenchmarkSuiteLarge runs the robustness suite on largeImages and prints, per image, the
// attacks it failed, then the table (docs/watermark.md, *Measured*):
//
//	go test ./watermark -run '^$' -bench BenchmarkSuiteLarge -benchtime 1x
//
// AUGMENT_WM_PSNR and AUGMENT_WM_SSIM mark at other floors, as for BenchmarkSuite.
func BenchmarkSuiteLarge(b *testing.B) {
	key := benchKey(b)
	opt := suiteOptions()
	for i := 0; i < b.N; i++ {
		var runs [][]AttackOutcome
		for j, li := range largeImages {
			g := readLarge(b, li)
			p := Payload{ID: 0x00C0FFEE00 + uint64(j), Version: 1}
			m, err := EmbedWith(g, key, p, opt)
			if err != nil {
				b.Fatalf("%s: %v", li.name, err)
			}
			ps, _ := PSNRDisplay(g, m)
			ss, _ := SSIMDisplay(g, m)
			outs, err := RunSuite(context.Background(), m, key, p, Suite())
			if err != nil {
				b.Fatal(err)
			}
			var failed []string
			for _, o := range outs {
				if !o.Passed {
					failed = append(failed, fmt.Sprintf("%s (%.1fσ)", o.Attack, o.Result.Score))
				}
			}
			fmt.Printf("%-27s %4d×%-4d %2d-bit  as displayed: PSNR %.2f dB  SSIM %.4f  failed: %s\n", li.name, g.Width, g.Height,
				g.BitDepth, ps, ss, strings.Join(append(failed, "none")[:max(1, len(failed))], ", "))
			if s := rangeEndSplit(b, g, m, key); s != "" {
				fmt.Println("    " + s)
			}
			runs = append(runs, outs)
		}
		fmt.Print(FormatTable(Summarize(runs)))
	}
}

// TestLargeRadiographPresence checks the presence targets that the corpus's small chest
// X-rays do not always reach (JPEG 50, a crop keeping half the area, a rescale to a quarter)
// on the 1760 px computed radiograph: at the sizes scanners write, the mark's cells are wide
// enough to survive them.
func TestLargeRadiographPresence(t *testing.T) {
	key := benchKey(t)
	g := readLarge(t, largeImages[0])
	p := Payload{ID: 0x1760, Version: 1}
	m, err := Embed(g, key, p)
	if err != nil {
		t.Fatal(err)
	}
	attacks := []struct {
		name string
		f    func(*Gray) (*Gray, error)
	}{
		{"jpeg-q50", func(g *Gray) (*Gray, error) { return JPEGRoundTrip(g, 50) }},
		{"crop-50%", func(g *Gray) (*Gray, error) { return CropArea(g, 0.5), nil }},
		{"rescale-x0.25", func(g *Gray) (*Gray, error) { return Rescale(g, 0.25), nil }},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			att, err := a.f(m)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Detect(att, key)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Present {
				t.Errorf("mark not found (score %.2fσ, false-positive probability %.1e)", r.Score, r.FalsePositive)
			}
			if r.Payload != nil && *r.Payload != p {
				t.Errorf("wrong payload %v, want %v", r.Payload, p)
			}
		})
	}
}

// rangeEndSplit says, for an image with at least a quarter of its pixels at an end of its
// value range (0 or the largest value), where the detector finds the mark: with the mark
// kept only at those pixels (elsewhere the original's values) and only elsewhere.
func rangeEndSplit(tb testing.TB, g, m *Gray, key Key) string {
	ends, rest, share, err := splitAtRangeEnds(g, m)
	if err != nil {
		tb.Fatal(err)
	}
	if share < relianceShare {
		return ""
	}
	re, err := Detect(ends, key)
	if err != nil {
		tb.Fatal(err)
	}
	rr, err := Detect(rest, key)
	if err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf("%.0f %% of the pixels at an end of the range; mark kept only there: %.1fσ, payload %v; only elsewhere: %.1fσ, payload %v",
		100*share, re.Score, re.Payload != nil, rr.Score, rr.Payload != nil)
}
