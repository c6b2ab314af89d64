package manifests

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// TestInventoryRoundTrip writes rows (more than one batch, with and without age) and reads
// them back unchanged; the temporary file is gone and nothing is left on failure.
func TestInventoryRoundTrip(t *testing.T) {
	age := 42.5
	var rows []InventoryRow
	for i := range 600 {
		r := InventoryRow{Path: filepath.Join("a", "b", string(rune('a'+i%26))), SOPInstanceUID: "1.2.3." + string(rune('0'+i%10)),
			Modality: "CR", Rows: int32(i), Columns: 256, Frames: 1, Sex: "F", PixelSHA256: "abc"}
		if i%3 == 0 {
			r.AgeYears = &age
		}
		if i%7 == 0 {
			r.Error, r.ErrorReason = "read x: truncated", "truncated"
		}
		rows = append(rows, r)
	}
	cases := []struct {
		name string
		rows []InventoryRow
	}{
		{"empty", nil},
		{"one", rows[:1]},
		{"several batches", rows},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "inventory.parquet")
			if err := WriteInventory(path, slices.Values(c.rows)); err != nil {
				t.Fatal(err)
			}
			got, err := ReadInventory(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.rows) || (len(got) > 0 && !reflect.DeepEqual(got, c.rows)) {
				t.Fatalf("read %d rows back, wrote %d (first differs: %+v vs %+v)", len(got), len(c.rows), first(got), first(c.rows))
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("folder holds %d entries, want only the inventory", len(entries))
			}
		})
	}
}

func first(r []InventoryRow) any {
	if len(r) == 0 {
		return nil
	}
	return r[0]
}

// TestInventoryAbortLeavesNothing checks that an aborted write leaves the old file alone.
func TestInventoryAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inventory.parquet")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	iw, err := NewInventoryWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := iw.Write(InventoryRow{Path: "x"}); err != nil {
		t.Fatal(err)
	}
	iw.Abort()
	b, _ := os.ReadFile(path)
	entries, _ := os.ReadDir(dir)
	if string(b) != "old" || len(entries) != 1 {
		t.Errorf("after abort: content %q, %d entries", b, len(entries))
	}
	if _, err := NewInventoryWriter(filepath.Join(dir, "missing", "x.parquet")); err == nil {
		t.Error("no error for a folder that does not exist")
	}
}
