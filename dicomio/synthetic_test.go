package dicomio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// synthSharedData is the real test data, relative to this package.
const synthSharedData = "../../shared/data"

// synthFixture names a source file in ../shared/data and the frame a generator would make from it.
type synthFixture struct {
	name     string
	source   string // relative to synthSharedData; "" for text-only generation
	frame    func() *Image
	values   PixelValues
	unit     *[2]float64
	bits     int
	wantIOD  string
	wantSOPs string
}

// gradientFrame is a deterministic test frame: unit floats (0…1) of rows×cols×frames×samples.
func gradientFrame(rows, cols, frames, samples int) *Image {
	n := rows * cols * frames * samples
	f := make([]float32, n)
	for i := range f {
		r := (i / (cols * samples)) % rows
		c := (i / samples) % cols
		fr := i / (rows * cols * samples)
		s := i % samples
		f[i] = float32((r*7+c*3+fr*11+s*50)%256) / 255
	}
	return &Image{Rows: rows, Columns: cols, Frames: frames, Samples: samples, F32: f}
}

// hounsfieldFrame is a CT-like frame of integral modality values from -1024 to about 1000.
func hounsfieldFrame(rows, cols int) *Image {
	f := make([]float32, rows*cols)
	for i := range f {
		f[i] = float32(-1024 + (i*37)%2048)
	}
	return &Image{Rows: rows, Columns: cols, Frames: 1, Samples: 1, F32: f}
}

func synthFixtures() []synthFixture {
	return []synthFixture{
		{name: "CR from CXR corpus", source: "cxr/train/CXR-P0003/ACCD2E2586B60/CR01.dcm", frame: func() *Image { return gradientFrame(220, 256, 1, 1) }, bits: 12, wantIOD: SOPClassCR},
		{name: "CR resized 8-bit", source: "cxr/train/CXR-P0003/ACCD2E2586B60/CR01.dcm", frame: func() *Image { return gradientFrame(64, 64, 1, 1) }, bits: 8, wantIOD: SOPClassCR},
		{name: "CT same matrix HU", source: "dicom/pydicom-testfiles/test_files/CT_small.dcm", frame: func() *Image { return hounsfieldFrame(128, 128) }, values: ValuesModality, bits: 16, wantIOD: SOPClassCT},
		{name: "CT unit with range", source: "dicom/pydicom-testfiles/test_files/CT_small.dcm", frame: func() *Image { return gradientFrame(128, 128, 1, 1) }, unit: &[2]float64{-1000, 1000}, bits: 12, wantIOD: SOPClassCT},
		{name: "CT resized to SC", source: "dicom/pydicom-testfiles/test_files/CT_small.dcm", frame: func() *Image { return gradientFrame(64, 64, 1, 1) }, bits: 12, wantIOD: SOPClassSecondaryCapture},
		{name: "MR same matrix", source: "dicom/pydicom-testfiles/test_files/MR_small.dcm", frame: func() *Image { return gradientFrame(64, 64, 1, 1) }, bits: 16, wantIOD: SOPClassMR},
		{name: "US to SC", source: "dicom/pydicom-data/data/US1_J2KR.dcm", frame: func() *Image { return gradientFrame(120, 160, 1, 1) }, bits: 8, wantIOD: SOPClassSecondaryCapture},
		{name: "multi-frame MR word", source: "dicom/pydicom-data/data/emri_small.dcm", frame: func() *Image { return gradientFrame(64, 64, 10, 1) }, bits: 12, wantIOD: SOPClassMultiFrameWordSC},
		{name: "multi-frame byte", source: "dicom/pydicom-data/data/emri_small.dcm", frame: func() *Image { return gradientFrame(32, 48, 3, 1) }, bits: 8, wantIOD: SOPClassMultiFrameByteSC},
		{name: "RGB", source: "dicom/pydicom-data/data/SC_rgb.dcm", frame: func() *Image { return gradientFrame(120, 256, 1, 3) }, bits: 8, wantIOD: SOPClassSecondaryCapture},
		{name: "RGB multi-frame", source: "dicom/pydicom-data/data/SC_rgb.dcm", frame: func() *Image { return gradientFrame(30, 40, 2, 3) }, bits: 8, wantIOD: SOPClassMultiFrameColourSC},
		{name: "text only", frame: func() *Image { return gradientFrame(33, 65, 1, 1) }, bits: 16, wantIOD: SOPClassSecondaryCapture},
	}
}

func testRecord() GenerationRecord {
	return GenerationRecord{
		Bundle: "cxr-unclip-64", BundleSHA256: strings.Repeat("ab", 32), Mode: ModeVariation,
		Prompt: "frontal chest radiograph, bilateral opacities", Seed: 1234, PriorGuidance: 4,
		DecoderGuidance: 8, PriorSteps: 25, DecoderSteps: 50, UpsamplerSteps: []int{7}, PriorKind: "diffusion",
		Eta: 0.8, WatermarkPayloadID: "wm-0001", WatermarkKeyID: "key-A",
	}
}

// needShared skips the test when ../shared/data is absent.
func needSynthShared(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(synthSharedData); err != nil {
		t.Skipf("real test data %s is absent (a fresh clone has no ../shared): %v", synthSharedData, err)
	}
}

// writeFixtures writes one synthetic instance per fixture into dir and returns the paths.
func writeFixtures(t *testing.T, dir string, run string) map[string]*SyntheticResult {
	t.Helper()
	out := map[string]*SyntheticResult{}
	for i, fx := range synthFixtures() {
		img := SyntheticImage{Pixels: fx.frame(), Values: fx.values, UnitRange: fx.unit, Record: testRecord(),
			Demographics: Demographics{Sex: "F", AgeYears: 54.5, AgeKnown: true}}
		if fx.source != "" {
			src, err := ReadSourceInstance(filepath.Join(synthSharedData, fx.source))
			if err != nil {
				t.Fatalf("%s: %v", fx.name, err)
			}
			img.Sources = []*SourceInstance{src}
		} else {
			img.Record.Mode = ModeText
		}
		path := filepath.Join(dir, strings.ReplaceAll(fx.name, " ", "_")+".dcm")
		res, err := WriteSynthetic(context.Background(), path, img, SyntheticOptions{RunID: run, Item: i, BitDepth: fx.bits, SoftwareVersion: "0.1.0-test"})
		if err != nil {
			t.Fatalf("%s: %v", fx.name, err)
		}
		if res.SOPClassUID != fx.wantIOD {
			t.Errorf("%s: IOD %s (%s: %s), want %s", fx.name, res.SOPClassUID, res.IOD, res.IODReason, fx.wantIOD)
		}
		out[fx.name] = res
	}
	return out
}

func TestSyntheticDciodvfy(t *testing.T) {
	needSynthShared(t)
	dciodvfy, err := exec.LookPath("dciodvfy")
	if err != nil {
		t.Skip("dciodvfy (Debian package dicom3tools, installed by make setup) is not installed")
	}
	dir := t.TempDir()
	for name, res := range writeFixtures(t, dir, "run-dciodvfy") {
		for _, line := range dciodvfyErrors(t, dciodvfy, res.Path) {
			t.Errorf("%s (%s): %s", name, res.IOD, line)
		}
	}
}

// dciodvfyErrors runs dciodvfy on path and returns its Error lines.
func dciodvfyErrors(t *testing.T, dciodvfy, path string) []string {
	t.Helper()
	out, _ := exec.Command(dciodvfy, path).CombinedOutput()
	var errs []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Error") && !dciodvfyLacksSyntheticData(string(out), line) {
			errs = append(errs, line)
		}
	}
	if testing.Verbose() {
		t.Logf("dciodvfy %s:\n%s", filepath.Base(path), out)
	}
	return errs
}

// dciodvfyLacksSyntheticData reports whether line is dciodvfy's complaint about (0008,001C)
// Synthetic Data because its dictionary predates DICOM 2024b (it then also warns "Unrecognized
// tag" for that attribute). Any other error still fails the test.
func dciodvfyLacksSyntheticData(out, line string) bool {
	return strings.Contains(line, "not a recognized standard attribute - (0x0008,0x001c)") &&
		strings.Contains(out, "(0x0008,0x001c)  ?  - Warning - Unrecognized tag")
}

func synthSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

var _ = bytes.Equal

// dxSource writes a DX for-presentation source (the corpus has none) with the attributes the DX
// Image IOD needs, plus identifiers that must not reach an output.
func dxSource(t *testing.T, dir string, rows, cols int) string {
	t.Helper()
	d := &writeElems{}
	d.str(tag.SOPClassUID, "UI", SOPClassDXForPresentation)
	d.str(tag.SOPInstanceUID, "UI", "1.2.826.0.1.3680043.10.1.1")
	d.str(tag.StudyInstanceUID, "UI", "1.2.826.0.1.3680043.10.1.2")
	d.str(tag.SeriesInstanceUID, "UI", "1.2.826.0.1.3680043.10.1.3")
	d.str(tag.PatientName, "PN", "DXNAME^LEAK")
	d.str(tag.PatientID, "LO", "DX-LEAK-ID")
	d.str(tag.Modality, "CS", "DX")
	d.str(tag.PresentationIntentType, "CS", "FOR PRESENTATION")
	d.str(tag.BodyPartExamined, "CS", "CHEST")
	d.seq(tag.AnatomicRegionSequence, wrCodeItem(Code{"51185008", "SCT", "Chest"}))
	d.str(tag.ViewPosition, "CS", "PA")
	d.str(tag.ImageLaterality, "CS", "U")
	d.str(tag.PatientOrientation, "CS", "L", "F")
	d.str(tag.ImagerPixelSpacing, "DS", "0.143", "0.143")
	d.str(tag.PixelIntensityRelationship, "CS", "LIN")
	d.ints(tag.PixelIntensityRelationshipSign, "SS", 1)
	d.ints(tag.Rows, "US", rows)
	d.ints(tag.Columns, "US", cols)
	d.ints(tag.SamplesPerPixel, "US", 1)
	d.str(tag.PhotometricInterpretation, "CS", "MONOCHROME2")
	d.ints(tag.BitsAllocated, "US", 16)
	d.ints(tag.BitsStored, "US", 12)
	d.ints(tag.HighBit, "US", 11)
	d.ints(tag.PixelRepresentation, "US", 0)
	d.add(tag.PixelData, "OW", pixelDataRaw(make([]byte, 2*rows*cols)))
	m := &writeElems{}
	m.add(tag.FileMetaInformationVersion, "OB", []byte{0, 1})
	m.str(tag.MediaStorageSOPClassUID, "UI", SOPClassDXForPresentation)
	m.str(tag.MediaStorageSOPInstanceUID, "UI", "1.2.826.0.1.3680043.10.1.1")
	m.str(tag.TransferSyntaxUID, "UI", ExplicitVRLittleEndian)
	data, err := encodePart10(m.list, d.list)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dx.dcm")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSyntheticDX(t *testing.T) {
	dir := t.TempDir()
	src, err := ReadSourceInstance(dxSource(t, dir, 40, 30))
	if err != nil {
		t.Fatal(err)
	}
	dciodvfy, _ := exec.LookPath("dciodvfy")
	for _, c := range []struct {
		name    string
		frame   *Image
		want    string
		wantPIR bool
	}{
		{"same matrix", gradientFrame(40, 30, 1, 1), SOPClassDXForPresentation, true},
		{"resized", gradientFrame(20, 15, 1, 1), SOPClassSecondaryCapture, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".dcm")
			res, err := WriteSynthetic(context.Background(), path, SyntheticImage{Pixels: c.frame, Record: testRecord(), Sources: []*SourceInstance{src}},
				SyntheticOptions{RunID: "dx", BitDepth: 12})
			if err != nil {
				t.Fatal(err)
			}
			if res.SOPClassUID != c.want {
				t.Fatalf("IOD %s (%s), want %s", res.IOD, res.IODReason, c.want)
			}
			data, _ := os.ReadFile(path)
			if bytes.Contains(data, []byte("LIN")) != c.wantPIR || bytes.Contains(data, []byte("LEAK")) {
				t.Errorf("DX attributes copied where they should not be, or identifiers leaked")
			}
			if dciodvfy == "" {
				t.Skip("dciodvfy (Debian package dicom3tools, installed by make setup) is not installed")
			}
			for _, line := range dciodvfyErrors(t, dciodvfy, path) {
				t.Errorf("%s: %s", res.IOD, line)
			}
		})
	}
}
