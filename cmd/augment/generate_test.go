package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medaugment/augment/cmd/augment/pipeline"
	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/manifests"
	"github.com/medaugment/augment/unclip"
	"github.com/medaugment/augment/watermark"
)

func needORT(t *testing.T) {
	t.Helper()
	if _, err := unclip.FindORTLibrary(""); err != nil {
		t.Skipf("ONNX Runtime library not found (run make setup): %v", err)
	}
}

func writeKey(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wm.key")
	if err := os.WriteFile(p, []byte("c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0wMTIzNDU2Nzg5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGenerateCommand(t *testing.T) {
	needORT(t)
	key := writeKey(t)
	out := filepath.Join(t.TempDir(), "synth")
	preview := filepath.Join(out, "preview.png")
	code, stdout, stderr := execAugment(t, "generate", "--bundle", tinyBundle, "--key-file", key, "--out", out,
		"--prompt", "PA chest radiograph, male, 50-59 years.", "--count", "2", "--steps", "2", "--prior-steps", "2",
		"--upsampler-steps", "2", "--sex", "M", "--age", "55", "--preview", preview, "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d JSON lines, want 2 rows and a summary:\n%s", len(lines), stdout)
	}
	var row manifests.GenerationRow
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil {
		t.Fatal(err)
	}
	if row.Sex != "M" || row.AgeYears == nil || *row.AgeYears != 55 || row.Error != "" {
		t.Errorf("row: %+v", row)
	}
	in, err := dicomio.ReadInstance(row.Path, dicomio.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.SyntheticData != "YES" || in.Demographics.Sex != "M" {
		t.Errorf("written instance: synthetic %q sex %q", in.SyntheticData, in.Demographics.Sex)
	}
	rows, err := manifests.ReadGenerations(filepath.Join(out, "manifest.parquet"))
	if err != nil || len(rows) != 2 {
		t.Fatalf("manifest: %d rows, %v", len(rows), err)
	}
	if _, err := os.Stat(preview); err != nil {
		t.Errorf("no preview: %v", err)
	}

	// Another prompt with the default seed and run id, into the same folder: other UIDs and
	// payload ids, and the folder's manifest keeps the first run's rows beside the new one.
	code, stdout2, stderr := execAugment(t, "generate", "--bundle", tinyBundle, "--key-file", key, "--out", out,
		"--prompt", "lateral chest radiograph, female, 30-39 years.", "--steps", "2", "--prior-steps", "2",
		"--upsampler-steps", "2", "--json")
	if code != ExitOK {
		t.Fatalf("second run: exit %d: %s", code, stderr)
	}
	var other manifests.GenerationRow
	if err := json.Unmarshal([]byte(strings.SplitN(stdout2, "\n", 2)[0]), &other); err != nil {
		t.Fatal(err)
	}
	if other.RunID == row.RunID || other.SOPInstanceUID == row.SOPInstanceUID || other.WatermarkPayload == row.WatermarkPayload {
		t.Errorf("two default runs share run id %s / %s, UID %s / %s or payload %s / %s", row.RunID, other.RunID,
			row.SOPInstanceUID, other.SOPInstanceUID, row.WatermarkPayload, other.WatermarkPayload)
	}
	rows, err = manifests.ReadGenerations(filepath.Join(out, "manifest.parquet"))
	if err != nil || len(rows) != 3 {
		t.Fatalf("manifest after a second run into the folder: %d rows, want 3: %v", len(rows), err)
	}
	index, err := manifests.IndexPayloads(filepath.Join(out, "manifest.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []manifests.GenerationRow{row, other} {
		if got, ok := index.Lookup(r.WatermarkPayload); !ok || got.SOPInstanceUID != r.SOPInstanceUID {
			t.Errorf("payload %s: manifest row %+v, want the instance %s", r.WatermarkPayload, got, r.SOPInstanceUID)
		}
	}
}

func TestGenerateCommandUsageErrors(t *testing.T) {
	key := writeKey(t)
	t.Setenv(keyEnv, "")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no key", []string{"generate", "--out", t.TempDir(), "--prompt", "x"}, "no watermark key"},
		{"no out", []string{"generate", "--key-file", key, "--prompt", "x"}, "--out"},
		{"nothing to do", []string{"generate", "--key-file", key, "--out", t.TempDir()}, "nothing to do"},
		{"bad interpolate", []string{"generate", "--key-file", key, "--out", t.TempDir(), "--interpolate", "a.dcm"}, "two files"},
		{"bad sex", []string{"generate", "--key-file", key, "--out", t.TempDir(), "--prompt", "x", "--sex", "X"}, "sex"},
		{"missing bundle", []string{"generate", "--key-file", key, "--out", t.TempDir(), "--prompt", "x", "--bundle", "/nonexistent"}, "nonexistent"},
		{"count 0", []string{"generate", "--key-file", key, "--out", t.TempDir(), "--prompt", "x", "--count", "0"}, "--count 0"},
		{"empty prompt", []string{"generate", "--key-file", key, "--out", t.TempDir(), "--prompt", " "}, "--prompt is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := execAugment(t, tc.args...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 mentioning %q", code, stderr, tc.want)
			}
		})
	}
}

func TestMarkEmbedsWatermark(t *testing.T) {
	needSharedData(t)
	keyPath := writeKey(t)
	key, err := watermark.LoadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	src := filepath.Join(sharedDataDir, "dicom/dcm_qa_ts/In/1.2.840.10008.1.2.1.dcm")
	if _, err := os.Stat(src); err != nil {
		t.Skipf("test image missing: %v", err)
	}
	code, stdout, stderr := execAugment(t, "mark", "--key-file", keyPath, "--run-id", "mark-wm", "--out", out, "--json", src)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res dicomio.MarkResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	_, img, err := dicomio.ReadImage(res.Output.Path, dicomio.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := watermark.NewGray(img.Columns, img.Rows, img.BitsStored)
	for i, v := range img.U16 {
		g.Pix[i] = v
	}
	for i, v := range img.U8 {
		g.Pix[i] = uint16(v)
	}
	det, err := watermark.Detect(g, key)
	if err != nil {
		t.Fatal(err)
	}
	want := watermark.Payload{ID: pipeline.PayloadID("mark-wm", 0), Version: watermark.PayloadVersion}
	if !det.Present || det.Payload == nil || *det.Payload != want {
		t.Errorf("marked file: detection %+v, want payload %v", det, want)
	}
}
