package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medaugment/augment/manifests"
)

// TestScanCommand runs `augment scan` in-process on the chest X-ray training split and on a
// folder with a bad file, checking the summary, the --json rows, the inventory manifest and
// the exit codes.
func TestScanCommand(t *testing.T) {
	needSharedData(t)
	train := filepath.Join(sharedDataDir, "cxr", "train")
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.parquet")

	t.Run("summary and inventory", func(t *testing.T) {
		code, out, errOut := execAugment(t, "scan", train, "--out", inv)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, want := range []string{
			"795 instances in 377 studies", "(418 images)", "CR 418, SR 377",
			"1.2.840.10008.1.2.4.50 (JPEG Baseline (Process 1)) 418",
			"377 of 377 studies have a report", "Errors:            none",
			"Inventory:         " + inv + " (795 rows)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("summary lacks %q:\n%s", want, out)
			}
		}
		rows, err := manifests.ReadInventory(inv)
		if err != nil {
			t.Fatal(err)
		}
		cr := 0
		for _, r := range rows {
			if r.Modality == "CR" {
				cr++
				if r.Rows == 0 || r.StudyInstanceUID == "" || r.TransferSyntax == "" {
					t.Errorf("incomplete row %+v", r)
				}
			}
		}
		if len(rows) != 795 || cr != 418 {
			t.Errorf("inventory has %d rows, %d CR; want 795 and 418", len(rows), cr)
		}
	})

	t.Run("json rows with pixel hashes", func(t *testing.T) {
		code, out, errOut := execAugment(t, "scan", "--json", "--pixel-hash", "--out", "", train)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		n, hashed := 0, 0
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var row map[string]any
			if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
				t.Fatalf("line %d is not JSON: %v: %s", n+1, err, sc.Text())
			}
			n++
			for _, k := range []string{"path", "sop_instance_uid", "study_instance_uid", "series_instance_uid", "modality",
				"transfer_syntax", "rows", "columns", "frames", "sex", "age_years", "error"} {
				if _, ok := row[k]; !ok {
					t.Fatalf("row lacks %q: %s", k, sc.Text())
				}
			}
			if h, _ := row["pixel_sha256"].(string); len(h) == 64 {
				hashed++
			}
		}
		if n != 795 || hashed != 418 {
			t.Errorf("%d rows, %d with pixel_sha256; want 795 and 418", n, hashed)
		}
		if !strings.Contains(errOut, "Duplicates:") {
			t.Errorf("the summary goes to stderr with --json; got %q", errOut)
		}
	})

	t.Run("bad file reported, scan still succeeds", func(t *testing.T) {
		bad := filepath.Join(dir, "bad")
		if err := os.MkdirAll(bad, 0o755); err != nil {
			t.Fatal(err)
		}
		src, err := os.ReadFile(filepath.Join(train, "CXR-P0003", "ACC7C77DE3E84", "CR01.dcm"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bad, "cut.dcm"), src[:len(src)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := execAugment(t, "scan", "--pixel-hash", "--out", "", bad)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !strings.Contains(out, "1 files could not be read") || !strings.Contains(out, "cut.dcm") {
			t.Errorf("bad file not reported:\n%s", out)
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{{"scan"}, {"scan", filepath.Join(dir, "does-not-exist")}, {"scan", "--no-such-flag", train}} {
			if code, _, _ := execAugment(t, args...); code != ExitUsage {
				t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
			}
		}
	})
}
