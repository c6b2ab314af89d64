package codec

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDCMTKEncodedFrames compresses native corpus files with DCMTK's encoders (dcmcjpeg,
// dcmcjpls, dcmcrle; Debian package dcmtk) into syntaxes and options the corpus lacks — JPEG
// lossless process 14 with all seven predictors, JPEG-LS near-lossless and every interleave mode,
// colour, signed and 16-bit RLE — and checks that Decode gives back the native pixels (exactly, or
// within NEAR for near-lossless).
func TestDCMTKEncodedFrames(t *testing.T) {
	mr12 := filepath.Join(corpusRoot, "dcm_qa_ts", "In", "1.dcm")
	ct := filepath.Join(corpusRoot, "pydicom-testfiles", "test_files", "CT_small.dcm")
	rgb := filepath.Join(corpusRoot, "pydicom-data", "data", "SC_rgb.dcm")
	rgb16 := filepath.Join(corpusRoot, "pydicom-data", "data", "SC_rgb_16bit.dcm")
	type encCase struct {
		name    string
		tool    string
		args    []string
		src     string
		ts      string
		maxDiff int
	}
	cases := []encCase{
		{"ct lossless signed", "dcmcjpeg", []string{"+el", "+sv", "1"}, ct, JPEGLossless, 0},
		{"rgb lossless", "dcmcjpeg", []string{"+el", "+sv", "6"}, rgb, JPEGLossless, 0},
		{"jpeg-ls near 2", "dcmcjpls", []string{"+en"}, mr12, JPEGLSNearLossless, 2},
		{"jpeg-ls rgb by line", "dcmcjpls", []string{"+el", "+il"}, rgb, JPEGLSLossless, 0},
		{"jpeg-ls rgb by sample", "dcmcjpls", []string{"+el", "+is"}, rgb, JPEGLSLossless, 0},
		{"jpeg-ls rgb by plane", "dcmcjpls", []string{"+el", "+in"}, rgb, JPEGLSLossless, 0},
		{"jpeg-ls signed ct", "dcmcjpls", []string{"+el"}, ct, JPEGLSLossless, 0},
		{"rle 16-bit rgb", "dcmcrle", nil, rgb16, RLELossless, 0},
	}
	for sv := 1; sv <= 7; sv++ {
		cases = append(cases, encCase{"mr12 lossless sv" + string(rune('0'+sv)), "dcmcjpeg",
			[]string{"+el", "+sv", string(rune('0' + sv))}, mr12, JPEGLossless, 0})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tool, err := exec.LookPath(tc.tool)
			if err != nil {
				t.Skipf("%s not installed (Debian package dcmtk): %v", tc.tool, err)
			}
			out := filepath.Join(t.TempDir(), "out.dcm")
			args := append(append([]string{}, tc.args...), tc.src, out)
			if msg, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
				if strings.Contains(err.Error(), "no such file") || strings.Contains(string(msg), "No such file") {
					t.Skipf("corpus file %s not found", tc.src)
				}
				t.Fatalf("%s %v: %v\n%s", tc.tool, args, err, msg)
			}
			inst, err := loadInstance(out)
			if err != nil {
				t.Fatal(err)
			}
			if inst.ts != tc.ts {
				t.Fatalf("%s wrote transfer syntax %s, want %s", tc.tool, inst.ts, tc.ts)
			}
			got, err := decodeAll(inst)
			if err != nil {
				t.Fatal(err)
			}
			want, err := nativePixels(tc.src, inst.info.bytesPerSample())
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Data) != len(want) {
				t.Fatalf("decoded %d bytes, native %d", len(got.Data), len(want))
			}
			bps := inst.info.bytesPerSample()
			var worst int
			for i := 0; i < len(want)/bps; i++ {
				d := int(storedValue(got.Data, i, bps)) - int(storedValue(want, i, bps))
				worst = max(worst, d, -d)
			}
			if worst > tc.maxDiff {
				t.Fatalf("decoded values differ from the native pixels by up to %d, want at most %d", worst, tc.maxDiff)
			}
		})
	}
}
