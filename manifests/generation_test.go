package manifests

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestGenerationsRoundTrip(t *testing.T) {
	age := 64.0
	rows := []GenerationRow{
		{RunID: "r", Item: 0, Path: "a.dcm", Mode: "text", Caption: "PA chest radiograph.", Sex: "F", AgeYears: &age,
			SourceSOPUIDs: []string{}, ImageEmbedding: []float32{0.5, -1, 2}, WatermarkPayload: "0000000000ff/v1", Seed: 7},
		{RunID: "r", Item: 1, Mode: "variation", SourceSOPUIDs: []string{"1.2.3"}, ImageEmbedding: []float32{}, Error: "read x.dcm: not a DICOM file"},
	}
	path := filepath.Join(t.TempDir(), "sub", "manifest.parquet")
	if err := WriteGenerations(path, rows); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("manifest mode %v (%v), want 0644: written through a 0600 temporary file, it must be readable as any file", fi.Mode().Perm(), err)
	}
	got, err := ReadGenerations(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("read %d rows, want %d", len(got), len(rows))
	}
	for i := range rows {
		if !reflect.DeepEqual(normalise(got[i]), normalise(rows[i])) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], rows[i])
		}
	}
	if got[1].AgeYears != nil {
		t.Error("unknown age came back as a value")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the manifest (no temporary files)", len(entries))
	}
}

func normalise(r GenerationRow) GenerationRow {
	if len(r.SourceSOPUIDs) == 0 {
		r.SourceSOPUIDs = nil
	}
	if len(r.ImageEmbedding) == 0 {
		r.ImageEmbedding = nil
	}
	return r
}

func TestWriteGenerationsKeepsOldFileOnFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "manifest.parquet")
	if err := WriteGenerations(path, []GenerationRow{{RunID: "old"}}); err != nil {
		t.Fatal(err)
	}
	// A folder in the way of the final rename makes the write fail after the temp file.
	bad := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(bad, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteGenerations(bad, []GenerationRow{{RunID: "new"}}); err == nil {
		t.Fatal("write over a non-empty folder succeeded")
	}
	rows, err := ReadGenerations(path)
	if err != nil || len(rows) != 1 || rows[0].RunID != "old" {
		t.Fatalf("old manifest damaged: %v %+v", err, rows)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".tmp" {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// TestReadGenerationsBeforeFloors reads a manifest written before the watermark floors were
// columns (testdata/manifests/generation-v1.parquet, written by this package then): its rows
// read with the floors 0, "not recorded", so that generate still adds runs to such a folder.
func TestReadGenerationsBeforeFloors(t *testing.T) {
	rows, err := ReadGenerations(filepath.Join("..", "testdata", "manifests", "generation-v1.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].WatermarkPayload != "00000000a1/v1" || rows[0].AgeYears == nil || *rows[0].AgeYears != 61 || rows[1].Error == "" {
		t.Fatalf("rows %+v", rows)
	}
	if rows[0].WatermarkPSNRFloor != 0 || rows[0].WatermarkSSIMFloor != 0 {
		t.Errorf("floors %v, %v in a manifest that had none", rows[0].WatermarkPSNRFloor, rows[0].WatermarkSSIMFloor)
	}
	// Old and new rows go into one file.
	rows = append(rows, GenerationRow{RunID: "run-2", Item: 0, Mode: "text", SourceSOPUIDs: []string{}, ImageEmbedding: []float32{},
		WatermarkPayload: "00000000b2/v1", WatermarkPSNRFloor: 42, WatermarkSSIMFloor: 0.98})
	path := filepath.Join(t.TempDir(), "manifest.parquet")
	if err := WriteGenerations(path, rows); err != nil {
		t.Fatal(err)
	}
	back, err := ReadGenerations(path)
	if err != nil || len(back) != 3 || back[2].WatermarkPSNRFloor != 42 || back[2].WatermarkSSIMFloor != 0.98 || back[0].WatermarkPSNRFloor != 0 {
		t.Fatalf("merged: %v %+v", err, back)
	}
}
