package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tinyBundle = "../../testdata/bundles/tiny"

// copyBundle copies the tiny bundle to a temporary folder.
func copyBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(tinyBundle)
	if err != nil {
		t.Skipf("tiny bundle absent: %v", err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(tinyBundle, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBundleCommands(t *testing.T) {
	tampered := copyBundle(t)
	if err := os.WriteFile(filepath.Join(tampered, "decoder.onnx"), []byte("not the decoder"), 0o644); err != nil {
		t.Fatal(err)
	}
	noManifest := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"info", []string{"bundle", "info", tinyBundle}, ExitOK, []string{"bundle    tiny", "decoder", "upsampler 1", "16→32"}},
		{"info json", []string{"--json", "bundle", "info", tinyBundle}, ExitOK, []string{`"name":"tiny"`, `"role":"ar_prior"`}},
		{"verify", []string{"bundle", "verify", tinyBundle}, ExitOK, []string{"ok    decoder.onnx", "verified: 9 files"}},
		{"verify json", []string{"--json", "bundle", "verify", tinyBundle}, ExitOK, []string{`"ok":true`}},
		{"tampered", []string{"bundle", "verify", tampered}, ExitCheckFailed, []string{"FAIL  decoder.onnx: sha256"}},
		{"tampered json", []string{"--json", "bundle", "verify", tampered}, ExitCheckFailed, []string{`"ok":false`, `"file":"decoder.onnx"`}},
		{"no manifest", []string{"bundle", "verify", noManifest}, ExitUsage, nil},
		{"no args", []string{"bundle", "info"}, ExitUsage, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := execAugment(t, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.HasPrefix(strings.TrimSpace(out), "{") {
				var v map[string]any
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Errorf("--json output is not one JSON object: %v", err)
				}
			}
		})
	}
}
