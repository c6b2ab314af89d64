package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medaugment/augment/manifests"
	"github.com/medaugment/augment/watermark"
	"github.com/medaugment/augment/watermark/wmfile"
)

// TestWatermarkVerifyManifest: a synthetic image exported to PNG (tags lost) is traced back to
// its manifest row through the payload in its pixels.
func TestWatermarkVerifyManifest(t *testing.T) {
	dir := t.TempDir()
	keyPath := writeKey(t)
	key, err := watermark.LoadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	const n = 256
	g := watermark.NewGray(n, n, 8)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			dx, dy := float64(x-n/2)/n, float64(y-n/2)/n
			g.Pix[y*n+x] = uint16(128 + 80*math.Cos(3*dx)*math.Cos(3*dy) - 60*(dx*dx+dy*dy) + 6*math.Sin(float64(x+2*y)/4))
		}
	}
	payload := watermark.Payload{ID: 0x1234567, Version: watermark.PayloadVersion}
	marked, err := watermark.Embed(g, key, payload)
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "export.png")
	if err := wmfile.Write(png, marked, wmfile.PNG); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "manifest.parquet")
	rows := []manifests.GenerationRow{
		{RunID: "other", Item: 0, WatermarkPayload: "unrelated/v1", Path: "a.dcm"},
		{RunID: "study-run", Item: 7, Mode: "text", Caption: "PA chest radiograph.", Bundle: "cxr-tiny", Seed: 3,
			SOPInstanceUID: "2.25.1", Path: "synth/instances/study-run-00007.dcm", WatermarkPayload: payload.String(),
			WatermarkPSNRFloor: 42, WatermarkSSIMFloor: 0.98},
	}
	if err := manifests.WriteGenerations(manifest, rows); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := execAugment(t, "watermark", "verify", "--key-file", keyPath, "--manifest", manifest, "--json", png)
	if code != ExitCheckFailed {
		t.Fatalf("exit %d (%s), want 1: a marked PNG has lost its synthetic tags", code, stderr)
	}
	var got verifiedFile
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &got); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if got.Provenance == nil || got.Provenance.RunID != "study-run" || got.Provenance.Item != 7 {
		t.Fatalf("provenance %+v, want study-run item 7", got.Provenance)
	}
	code, stdout, _ = execAugment(t, "watermark", "verify", "--key-file", keyPath, "--manifest", manifest, png)
	if code != ExitCheckFailed || !strings.Contains(stdout, "provenance: run study-run item 7") || !strings.Contains(stdout, "marked at PSNR ≥ 42.00 dB and SSIM ≥ 0.9800") {
		t.Errorf("text output (exit %d):\n%s", code, stdout)
	}
	code, _, stderr = execAugment(t, "watermark", "verify", "--key-file", keyPath, "--manifest", filepath.Join(dir, "missing.parquet"), png)
	if code != ExitUsage || !strings.Contains(stderr, "missing.parquet") {
		t.Errorf("missing manifest: exit %d, %q", code, stderr)
	}
}
