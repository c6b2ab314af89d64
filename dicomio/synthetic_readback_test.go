package dicomio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// storedLE returns the stored values of img as little-endian bytes in C order.
func synthStoredLE(img *Image) []byte {
	if img.U8 != nil {
		return slices.Clone(img.U8)
	}
	b := make([]byte, 2*len(img.U16))
	for i, v := range img.U16 {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b
}

func TestSyntheticReadBack(t *testing.T) {
	needSynthShared(t)
	dir := t.TempDir()
	results := writeFixtures(t, dir, "run-readback")
	for name, res := range results {
		t.Run(name, func(t *testing.T) {
			in, img, err := ReadImage(res.Path, ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if in.TransferSyntaxUID != ExplicitVRLittleEndian {
				t.Errorf("transfer syntax %s", in.TransferSyntaxUID)
			}
			if in.SyntheticData != "YES" {
				t.Errorf("Synthetic Data %q, want YES", in.SyntheticData)
			}
			if in.SOPInstanceUID != res.SOPInstanceUID || in.StudyInstanceUID != res.StudyInstanceUID || in.SeriesInstanceUID != res.SeriesInstanceUID {
				t.Errorf("UIDs read back differ from those written")
			}
			if in.Demographics.Sex != "F" || !in.Demographics.AgeKnown || in.Demographics.AgeYears != 54 {
				t.Errorf("demographics %+v, want F 54", in.Demographics)
			}
			if got, want := img.BitsStored, res.BitsStored; got != want {
				t.Errorf("bits stored %d, want %d", got, want)
			}
			got := img.U8
			var gotBytes []byte
			if got != nil {
				gotBytes = got
			} else {
				gotBytes = synthStoredLE(&Image{U16: img.U16})
			}
			if !bytes.Equal(gotBytes, synthStoredLE(res.Stored)) {
				t.Errorf("pixels read back differ from the stored values written")
			}
			if res.IOD != "Multi-frame Grayscale Byte Secondary Capture Image" && res.Stored.Samples == 1 &&
				(in.RescaleSlope != res.Rescale.Slope || in.RescaleIntercept != res.Rescale.Intercept) {
				t.Errorf("rescale read back %g/%g, want %+v", in.RescaleSlope, in.RescaleIntercept, res.Rescale)
			}

			p, err := InspectProvenance(res.Path)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Marked || !p.ByAugment || p.Record == nil {
				t.Fatalf("provenance: marked %v, by augment %v, record %v (%s)", p.Marked, p.ByAugment, p.Record != nil, p.RecordError)
			}
			want := testRecord()
			if strings.HasPrefix(name, "text only") {
				want.Mode = ModeText
			}
			if !reflect.DeepEqual(p.Record.Generation, want) {
				t.Errorf("generation record read back\n got %+v\nwant %+v", p.Record.Generation, want)
			}
			if p.Record.RunID != "run-readback" || p.Record.Sex != "F" || p.Record.Age != "054Y" || p.Record.Format != ProvenanceFormat {
				t.Errorf("provenance record %+v", p.Record)
			}
			syn := p.Synthesizer()
			if syn == nil || syn.ModelName != want.Bundle || syn.Manufacturer != "augment" || !strings.Contains(syn.SoftwareVersions, "0.1.0-test") {
				t.Errorf("synthesizing equipment %+v", syn)
			}
			if !slices.Equal(p.ImageType[:2], []string{"DERIVED", "SECONDARY"}) {
				t.Errorf("image type %v", p.ImageType)
			}
			if p.PatientIdentityRemoved != "YES" || !slices.Contains(p.DeidentificationCodes, CodeBasicProfile) {
				t.Errorf("de-identification %q %v", p.PatientIdentityRemoved, p.DeidentificationCodes)
			}
			if p.BurnedInAnnotation != "NO" {
				t.Errorf("burned in annotation %q", p.BurnedInAnnotation)
			}
			if !strings.HasPrefix(p.PatientID, "SYN-") {
				t.Errorf("patient ID %q", p.PatientID)
			}
			if len(p.DerivationCodes) != 1 || p.DerivationCodes[0] != derivationCode(want.Mode) {
				t.Errorf("derivation codes %v", p.DerivationCodes)
			}
			wantSources := 1
			if strings.HasPrefix(name, "text only") {
				wantSources = 0
			}
			if len(p.Sources) != wantSources {
				t.Fatalf("%d source references, want %d", len(p.Sources), wantSources)
			}
			for _, s := range p.Sources {
				if s.Purpose != CodeSourceImage || ValidateUID(s.SOPInstanceUID) != nil {
					t.Errorf("source reference %+v", s)
				}
			}
		})
	}
}

// TestSyntheticInteroperability checks that dcmdump and pydicom read every output and that
// pydicom decodes exactly the stored values written.
func TestSyntheticInteroperability(t *testing.T) {
	needSynthShared(t)
	dir := t.TempDir()
	results := writeFixtures(t, dir, "run-interop")
	if dcmdump, err := exec.LookPath("dcmdump"); err != nil {
		t.Log("dcmdump (dcmtk) is not installed; skipping its check")
	} else {
		for name, res := range results {
			out, err := exec.Command(dcmdump, "-q", "-E", res.Path).CombinedOutput()
			if err != nil || strings.Contains(string(out), "E: ") || strings.Contains(string(out), "W: ") {
				t.Errorf("dcmdump %s: %v\n%s", name, err, out)
			}
		}
	}
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import pydicom, numpy").Run(); err != nil {
		t.Skip("pydicom with numpy under /usr/bin/python3 is not installed (make setup installs python3-pydicom)")
	}
	var list strings.Builder
	for _, res := range results {
		fmt.Fprintln(&list, res.Path)
	}
	listPath := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(listPath, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, hashlib, pydicom, numpy as np
for p in open(sys.argv[1]).read().split():
    ds = pydicom.dcmread(p)
    a = ds.pixel_array
    a = a.astype('<u1' if ds.BitsAllocated == 8 else '<u2')
    print(p, ds.SOPInstanceUID, hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest())
`
	out, err := exec.Command(py, "-c", script, listPath).CombinedOutput()
	if err != nil {
		t.Fatalf("pydicom: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			got[f[0]] = f[1] + " " + f[2]
		}
	}
	for name, res := range results {
		if want := res.SOPInstanceUID + " " + synthSHA(synthStoredLE(res.Stored)); got[res.Path] != want {
			t.Errorf("%s: pydicom read %q, want %q", name, got[res.Path], want)
		}
	}
}
