package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medaugment/augment/dicomio"
)

// sharedDataDir is the real test data, relative to this package.
const sharedDataDir = "../../../shared/data"

// execAugment runs the CLI in-process and returns the exit code run() would return.
func execAugment(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newApp(strings.NewReader(""), &out, &errb).rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	var ce *checkFailed
	switch {
	case err == nil:
		code = ExitOK
	case errors.As(err, &ce):
		code = ExitCheckFailed
	default:
		code = ExitUsage
		errb.WriteString(err.Error())
	}
	return code, out.String(), errb.String()
}

func needSharedData(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(sharedDataDir); err != nil {
		t.Skipf("real test data %s is absent (a fresh clone has no ../shared): %v", sharedDataDir, err)
	}
}

func TestMarkAndInspectCommands(t *testing.T) {
	needSharedData(t)
	dir := t.TempDir()
	cr := filepath.Join(sharedDataDir, "cxr/train/CXR-P0003/ACCD2E2586B60/CR01.dcm")
	sr := filepath.Join(sharedDataDir, "cxr/train/CXR-P0003/ACCD2E2586B60/SR01.dcm")
	ct := filepath.Join(sharedDataDir, "dicom/pydicom-testfiles/test_files/CT_small.dcm")
	bad := filepath.Join(dir, "bad.dcm")
	if err := os.WriteFile(bad, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")

	cases := []struct {
		name     string
		args     []string
		wantCode int
		check    func(t *testing.T, stdout, stderr string)
	}{
		{name: "no --out", args: []string{"mark", cr}, wantCode: ExitUsage},
		{name: "bad uid root", args: []string{"mark", "--out", out, "--uid-root", "1.02", cr}, wantCode: ExitUsage},
		{name: "shift without key", args: []string{"mark", "--out", out, "--dates", "shift", cr}, wantCode: ExitUsage},
		{name: "missing file", args: []string{"mark", "--out", out, filepath.Join(dir, "nope.dcm")}, wantCode: ExitUsage},
		{name: "mark json with a bad file and a report", args: []string{"mark", "--json", "--out", out, "--tool", "gan 1", "--run-id", "cli", cr, bad, sr, ct}, wantCode: ExitUsage,
			check: func(t *testing.T, stdout, _ string) {
				var rs []dicomio.MarkResult
				for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
					var r dicomio.MarkResult
					if err := json.Unmarshal([]byte(line), &r); err != nil {
						t.Fatalf("not JSON: %q", line)
					}
					rs = append(rs, r)
				}
				if len(rs) != 4 || !rs[0].OK || rs[1].OK || rs[1].Skipped || !rs[2].Skipped || !rs[3].OK {
					t.Fatalf("results %+v", rs)
				}
				for _, r := range []dicomio.MarkResult{rs[0], rs[3]} {
					if _, err := os.Stat(r.Output.Path); err != nil || filepath.Dir(r.Output.Path) != out {
						t.Errorf("output %s: %v", r.Output.Path, err)
					}
				}
			}},
		{name: "mark plain", args: []string{"mark", "--out", out, "--run-id", "cli", "--tool", "gan 1", "--created", "2026-01-02T03:04:05Z", cr}, wantCode: ExitOK,
			check: func(t *testing.T, stdout, _ string) {
				if !strings.Contains(stdout, "1 marked, 0 skipped, 0 failed") {
					t.Errorf("summary missing: %q", stdout)
				}
			}},
		{name: "inspect unmarked source", args: []string{"inspect", cr}, wantCode: ExitOK,
			check: func(t *testing.T, stdout, _ string) {
				if !strings.Contains(stdout, "NOT marked synthetic") {
					t.Errorf("unmarked source shown as %q", stdout)
				}
			}},
		{name: "inspect require-marked fails on a source", args: []string{"inspect", "--quiet", "--require-marked", cr}, wantCode: ExitCheckFailed},
		{name: "inspect unreadable", args: []string{"inspect", bad}, wantCode: ExitUsage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := execAugment(t, c.args...)
			if code != c.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.wantCode, stdout, stderr)
			}
			if c.check != nil {
				c.check(t, stdout, stderr)
			}
		})
	}

	// Inspect what mark wrote.
	marked, err := filepath.Glob(filepath.Join(out, "*.dcm"))
	if err != nil || len(marked) != 2 {
		t.Fatalf("marked files %v (%v)", marked, err)
	}
	code, stdout, stderr := execAugment(t, append([]string{"inspect", "--json", "--require-marked"}, marked...)...)
	if code != ExitOK {
		t.Fatalf("inspect marked: exit %d: %s", code, stderr)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var p dicomio.Provenance
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		n++
		if !p.Marked || p.Record == nil || p.Record.Generation.Mode != dicomio.ModeRemark || p.Record.Generation.Tool != "gan 1" || len(p.Sources) != 1 {
			t.Errorf("provenance of %s: %+v", p.Path, p)
		}
	}
	if n != 2 {
		t.Errorf("%d JSON lines, want 2", n)
	}
	// The folder as a release gate: walked, a sidecar left out, every instance marked.
	if err := os.WriteFile(filepath.Join(out, "README.txt"), []byte("release notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = execAugment(t, "inspect", "--require-marked", out)
	if code != ExitOK || strings.Count(stdout, "marked synthetic (Synthetic Data YES)") != 2 || !strings.Contains(stdout, "1 file(s) in the folders are not DICOM") {
		t.Errorf("inspect the folder: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = execAugment(t, "inspect", marked[0])
	if code != ExitOK || !strings.Contains(stdout, "marked synthetic (Synthetic Data YES)") || !strings.Contains(stdout, "made by") || !strings.Contains(stdout, "from ") {
		t.Errorf("human view:\n%s", stdout)
	}
	code, _, _ = execAugment(t, "mark", "--help")
	if code != ExitOK {
		t.Errorf("mark --help exit %d", code)
	}
}
