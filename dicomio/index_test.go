package dicomio

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// sharedCXR is the chest X-ray corpus, relative to the package directory.
const sharedCXR = "../../shared/data/cxr"

// cxrLabel is one row of labels.csv.
type cxrLabel struct {
	sop, study, sex string
	age             float64
	ageKnown        bool
	view            string
}

func readCXRLabels(t testing.TB, split string) map[string]cxrLabel {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedCXR, split, "labels.csv"))
	if err != nil {
		t.Skipf("chest X-ray corpus missing (%v): it lives in ../shared next to the repository", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	out := map[string]cxrLabel{}
	for _, r := range rows[1:] {
		l := cxrLabel{sop: r[col["sop_instance_uid"]], study: r[col["study_instance_uid"]], sex: r[col["sex"]], view: r[col["view"]]}
		if a, err := strconv.ParseFloat(r[col["age"]], 64); err == nil {
			l.age, l.ageKnown = a, true
		}
		out[filepath.Join(sharedCXR, split, r[col["file"]])] = l
	}
	return out
}

// TestScanCXR scans the training split: 418 CR images, every study's SR report found, and
// sex and age equal to labels.csv for every image.
func TestScanCXR(t *testing.T) {
	labels := readCXRLabels(t, "train")
	root := filepath.Join(sharedCXR, "train")
	idx := NewIndex()
	seen := 0
	err := Scan(context.Background(), []string{root}, ScanOptions{Workers: 2}, func(rec Record) error {
		idx.Add(rec)
		if rec.Kind != KindInstance || rec.Instance.Modality != "CR" {
			return nil
		}
		seen++
		in := rec.Instance
		want, ok := labels[in.Path]
		if !ok {
			t.Errorf("%s: not in labels.csv", in.Path)
			return nil
		}
		if in.SOPInstanceUID != want.sop || in.StudyInstanceUID != want.study {
			t.Errorf("%s: UIDs %s/%s, labels %s/%s", in.Path, in.StudyInstanceUID, in.SOPInstanceUID, want.study, want.sop)
		}
		if in.Demographics.Sex != want.sex {
			t.Errorf("%s: sex %q, labels %q", in.Path, in.Demographics.Sex, want.sex)
		}
		if in.Demographics.AgeKnown != want.ageKnown || (want.ageKnown && in.Demographics.AgeYears != want.age) {
			t.Errorf("%s: age %v (known %v), labels %v (known %v)", in.Path, in.Demographics.AgeYears, in.Demographics.AgeKnown, want.age, want.ageKnown)
		}
		if in.Demographics.EthnicGroup != "" {
			t.Errorf("%s: ethnic group %q, the corpus has none", in.Path, in.Demographics.EthnicGroup)
		}
		if in.TransferSyntaxUID != "1.2.840.10008.1.2.4.50" || in.BitsAllocated != 8 || in.Photometric != "MONOCHROME2" || in.BodyPartExamined != "CHEST" {
			t.Errorf("%s: unexpected image attributes %+v", in.Path, in)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := idx.Summary()
	if seen != 418 || s.Modalities["CR"] != 418 || s.Images != 418 {
		t.Errorf("CR images: seen %d, summary %d CR, %d images; want 418", seen, s.Modalities["CR"], s.Images)
	}
	if s.Studies != 377 {
		t.Errorf("studies %d, want 377", s.Studies)
	}
	if len(s.Errors) != 0 {
		t.Errorf("errors: %v %v", s.Errors, s.ErrorExamples)
	}
	if s.Sidecars != 1 {
		t.Errorf("report sidecars %d, want 1 (reports.jsonl)", s.Sidecars)
	}
	// Every study in labels.csv has an SR, whose text comes first.
	studies := map[string]bool{}
	for _, l := range labels {
		studies[l.study] = true
	}
	for study := range studies {
		rep := idx.Report(study)
		if !strings.Contains(rep, "Finding: ") {
			t.Errorf("study %s: report %q has no SR finding", study, rep)
		}
	}
	if s.StudiesWithReport != 377 || s.SRInstances != 377 {
		t.Errorf("studies with report %d, SR instances %d; want 377", s.StudiesWithReport, s.SRInstances)
	}
	if s.SexKnown == 0 || s.SexKnown == s.Images || s.AgeKnown == 0 {
		t.Errorf("demographics coverage looks wrong: sex %d, age %d of %d", s.SexKnown, s.AgeKnown, s.Images)
	}
}

// TestScanFindsDuplicates scans one file twice under different names plus a copy with a new
// SOP Instance UID: the pixel hash groups the instances with different UIDs.
func TestScanFindsDuplicates(t *testing.T) {
	dir := t.TempDir()
	a := readTestFile(t, readSynth{rows: 8, cols: 8, bits: 16, signed: true, ts: TSExplicitLittle, sop: "1.2.3.4.1"})
	b := readTestFile(t, readSynth{rows: 8, cols: 8, bits: 16, signed: true, ts: TSImplicitLittle, sop: "1.2.3.4.2"})
	c := readTestFile(t, readSynth{rows: 8, cols: 8, bits: 16, signed: true, ts: TSExplicitLittle, sop: "1.2.3.4.3", seed: 7})
	for name, data := range map[string][]byte{"a.dcm": a, "b": b, "sub/c.dcm": c, "notes.txt": []byte("not dicom"), "sub/d.dcm": []byte("not dicom either")} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx := NewIndex()
	var order []string
	err := Scan(context.Background(), []string{dir}, ScanOptions{PixelHash: true}, func(rec Record) error {
		idx.Add(rec)
		order = append(order, filepath.Base(rec.Instance.Path))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "a.dcm,b,notes.txt,c.dcm,d.dcm" {
		t.Errorf("records in order %s, want walk order a.dcm,b,notes.txt,c.dcm,d.dcm", got)
	}
	s := idx.Summary()
	if s.Instances != 3 || s.NotDICOM != 1 || s.Errors["not DICOM"] != 1 {
		t.Errorf("instances %d, skipped %d, errors %v; want 3, 1 (notes.txt) and d.dcm as not DICOM", s.Instances, s.NotDICOM, s.Errors)
	}
	if len(s.Duplicates) != 1 || len(s.Duplicates[0].Instances) != 2 {
		t.Fatalf("duplicates %+v, want one group of a.dcm and b", s.Duplicates)
	}
	if s.TransferSyntaxes[TSImplicitLittle] != 1 || s.TransferSyntaxes[TSExplicitLittle] != 2 {
		t.Errorf("transfer syntaxes %v", s.TransferSyntaxes)
	}
}

// TestScanMemoryFlat scans many images with pixel hashing and checks, with the collector
// forced at intervals, that the live heap does not grow with the number of files: the scan
// keeps no data sets or pixels.
func TestScanMemoryFlat(t *testing.T) {
	dir := t.TempDir()
	const files = 120
	for i := range files {
		data := readTestFile(t, readSynth{rows: 256, cols: 256, bits: 16, seed: i, sop: "1.2.3.5." + itoa(i+1)})
		if err := os.WriteFile(filepath.Join(dir, "im"+itoa(i)+".dcm"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	idx := NewIndex()
	n := 0
	err := Scan(context.Background(), []string{dir}, ScanOptions{PixelHash: true}, func(rec Record) error {
		idx.Add(rec)
		n++
		if n%10 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := idx.Summary(); s.Images != files {
		t.Fatalf("scanned %d images, want %d", s.Images, files)
	}
	// 120 files of 128 KiB of pixels: holding them would add 15 MiB.
	if grow := int64(peak) - int64(base); grow > 4<<20 {
		t.Errorf("live heap grew by %d KiB while scanning %d files", grow>>10, files)
	}
}

// TestWalkFiles checks recursion, lexical order, links to files and a missing path.
func TestWalkFiles(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"b/2", "a", "b/1", "c/d/e"} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "c"), filepath.Join(dir, "dirlink")); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := WalkFiles(context.Background(), []string{dir, filepath.Join(dir, "a")}, func(p string) error {
		rel, _ := filepath.Rel(dir, p)
		got = append(got, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "a,b/1,b/2,c/d/e,link,a"; strings.Join(got, ",") != want {
		t.Errorf("walked %s, want %s", strings.Join(got, ","), want)
	}
	if err := WalkFiles(context.Background(), []string{filepath.Join(dir, "missing")}, func(string) error { return nil }); err == nil {
		t.Error("no error for a missing path")
	}
	if n, err := CountFiles(context.Background(), []string{dir}); err != nil || n != 5 {
		t.Errorf("CountFiles %d %v, want 5", n, err)
	}
}
