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
