package dicomio

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// leakySource writes a copy of a real CT with identifiers planted in every place the
// basic profile names (patient, people, institution, accession, dates, descriptors) and in a
// private block, and returns its path and the planted strings.
func leakySource(t *testing.T, dir string) (string, []string) {
	t.Helper()
	src := filepath.Join(synthSharedData, "dicom/pydicom-testfiles/test_files/CT_small.dcm")
	ds, err := dicom.ParseFile(src, nil, dicom.SkipProcessingPixelDataValue())
	if err != nil {
		t.Fatalf("parse %s: %v", src, err)
	}
	planted := map[tag.Tag]struct{ vr, v string }{
		tag.PatientName:                  {"PN", "LEAKNAME^PATIENT"},
		tag.PatientID:                    {"LO", "LEAKID-77123"},
		tag.PatientBirthDate:             {"DA", "19510203"},
		tag.AccessionNumber:              {"SH", "LEAKACC991"},
		tag.InstitutionName:              {"LO", "LEAK INSTITUTION"},
		tag.InstitutionAddress:           {"ST", "1 Leak Street, Leaktown"},
		tag.ReferringPhysicianName:       {"PN", "LEAKDOC^REFERRING"},
		tag.StudyDescription:             {"LO", "LEAK STUDY DESCRIPTION"},
		tag.StudyDate:                    {"DA", "20190305"},
		tag.OtherPatientIDs:              {"LO", "LEAKOTHER-5521"},
		tag.StationName:                  {"SH", "LEAKSTATION"},
		tag.DeviceSerialNumber:           {"LO", "LEAKSERIAL-0042"},
		tag.PatientAddress:               {"LO", "99 Leak Road"},
		{Group: 0x0011, Element: 0x0010}: {"LO", "LEAKCORP PRIVATE"},
		{Group: 0x0011, Element: 0x1001}: {"LO", "LEAK-PRIVATE-VALUE"},
	}
	var keep []*dicom.Element
	for _, e := range ds.Elements {
		if _, ok := planted[e.Tag]; !ok && e.Tag.Group != 0x0002 && e.Tag.Element != 0 {
			keep = append(keep, e)
		}
	}
	var meta []*dicom.Element
	for _, e := range ds.Elements {
		if e.Tag.Group == 0x0002 && e.Tag.Element != 0 {
			meta = append(meta, e)
		}
	}
	b := &writeElems{list: keep}
	var wanted []string
	for tg, pv := range planted {
		b.str(tg, pv.vr, pv.v)
		wanted = append(wanted, pv.v)
	}
	data, err := encodePart10(meta, b.list)
	if err != nil {
		t.Fatalf("write leaky source: %v", err)
	}
	path := filepath.Join(dir, "leaky.dcm")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Every instance UID of the source is an identifier too (class UIDs are not).
	parsed, err := dicom.ParseFile(path, nil, dicom.SkipPixelData())
	if err != nil {
		t.Fatalf("parse leaky source: %v", err)
	}
	for e := range parsed.FlatIterator() {
		if e.RawValueRepresentation == "UI" && e.Value.ValueType() == dicom.Strings {
			for _, u := range dicom.MustGetStrings(e.Value) {
				if u != "" && !strings.HasPrefix(u, "1.2.840.10008.") && e.Tag != tag.SOPInstanceUID && e.Tag != tag.MediaStorageSOPInstanceUID {
					wanted = append(wanted, u)
				}
			}
		}
	}
	// The test is only as good as its planting: every identifier must be in the source.
	for _, id := range wanted {
		if !bytes.Contains(data, []byte(id)) {
			t.Fatalf("planted identifier %q is not in the leaky source", id)
		}
	}
	if len(wanted) < 18 {
		t.Fatalf("only %d identifiers planted", len(wanted))
	}
	return path, wanted
}

// TestSyntheticNoSourceIdentifiers proves that no identifier of a source appears anywhere in the
// bytes of an output (generated or re-marked), and that the source's SOP Instance UID appears
// exactly once, inside Source Image Sequence.
func TestSyntheticNoSourceIdentifiers(t *testing.T) {
	needSynthShared(t)
	dir := t.TempDir()
	leaky, planted := leakySource(t, dir)
	cxr := filepath.Join(synthSharedData, "cxr/train/CXR-P0003/ACCD2E2586B60/CR01.dcm")
	cxrIDs := []string{"CXR-P0003", "ACCD2E2586B60", "Mount Sinai", "586B60",
		"2.25.56808928703075268114018417275482602195", "2.25.268108812692780427552480473339079930075"}

	type out struct {
		name, path, sourceUID string
		ids                   []string
	}
	var outs []out
	for _, c := range []struct {
		name, path string
		ids        []string
	}{{"leaky CT", leaky, planted}, {"CXR", cxr, cxrIDs}} {
		src, err := ReadSourceInstance(c.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, policy := range []DatePolicy{DatesRemove, DatesShift} {
			for _, iod := range []IODChoice{IODAuto, IODSecondaryCapture} {
				p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+"-"+string(policy)+"-"+string(iod)+".dcm")
				frame := gradientFrame(src.Rows, src.Columns, 1, 1)
				_, err := WriteSynthetic(context.Background(), p, SyntheticImage{
					Pixels: frame, UnitRange: &[2]float64{-1000, 1000}, Record: testRecord(), Sources: []*SourceInstance{src},
					Demographics: Demographics{Sex: "M", AgeYears: 61, AgeKnown: true},
				}, SyntheticOptions{RunID: "leak", DatePolicy: policy, DateShiftKey: "secret", IOD: iod})
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				outs = append(outs, out{c.name + " " + string(policy) + " " + string(iod), p, src.SOPInstanceUID, c.ids})
			}
		}
		res, err := MarkFile(context.Background(), c.path, 0, MarkOptions{OutDir: dir, Synthetic: SyntheticOptions{RunID: "leak-mark"}})
		if err != nil {
			t.Fatalf("mark %s: %v", c.name, err)
		}
		outs = append(outs, out{c.name + " marked", res.Path, src.SOPInstanceUID, c.ids})
	}
	for _, o := range outs {
		data, err := os.ReadFile(o.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range o.ids {
			if bytes.Contains(data, []byte(id)) {
				t.Errorf("%s: source identifier %q appears in the output", o.name, id)
			}
		}
		if n := bytes.Count(data, []byte(o.sourceUID)); n != 1 {
			t.Errorf("%s: source SOP Instance UID appears %d times, want once (in Source Image Sequence)", o.name, n)
		}
		if dciodvfy, err := exec.LookPath("dciodvfy"); err == nil {
			for _, line := range dciodvfyErrors(t, dciodvfy, o.path) {
				t.Errorf("%s: %s", o.name, line)
			}
		}
		p, err := InspectProvenance(o.path)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Sources) != 1 || p.Sources[0].SOPInstanceUID != o.sourceUID {
			t.Errorf("%s: Source Image Sequence %+v does not reference the source", o.name, p.Sources)
		}
	}
}
