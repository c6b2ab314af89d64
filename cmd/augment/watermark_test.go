package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/watermark"
	"github.com/medaugment/augment/watermark/wmfile"
)

// testScan draws a 16-bit greyscale scan: a bright disc with texture and noise on a dark
// background.
func testScan(w, h int) *watermark.Gray {
	rng := rand.New(rand.NewPCG(5, 6))
	g := watermark.NewGray(w, h, 16)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r := math.Hypot(float64(x-w/2), float64(y-h/2)) / float64(min(w, h))
			v := 4000.0
			if r < 0.42 {
				v = 30000 + 6000*math.Sin(float64(x)/7)*math.Cos(float64(y)/11)
			}
			g.Pix[y*w+x] = uint16(math.Max(0, v+300*rng.NormFloat64()))
		}
	}
	return g
}

// writeTestKey writes the commands' test key to dir/wm.key and returns its path.
func writeTestKey(t *testing.T, dir string) string {
	t.Helper()
	keyFile := filepath.Join(dir, "wm.key")
	if err := os.WriteFile(keyFile, []byte("dGVzdC1rZXktZm9yLXRoZS13YXRlcm1hcmstY29tbWFuZHM=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile
}

func TestWatermarkCommands(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeTestKey(t, dir)
	in := filepath.Join(dir, "scan.png")
	if err := wmfile.Write(in, testScan(320, 288), wmfile.PNG); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")

	code, stdout, stderr := execAugment(t, "watermark", "embed", "--key-file", keyFile, "--run-id", "cli-test", in, "--out", out)
	if code != ExitOK {
		t.Fatalf("embed: exit %d: %s", code, stderr)
	}
	marked := filepath.Join(out, "scan.png")
	if _, err := os.Stat(marked); err != nil {
		t.Fatalf("embed wrote no %s: %v\n%s", marked, err, stdout)
	}
	key, err := watermark.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout+stderr, "dGVzdC1rZXkt") {
		t.Error("the key was printed")
	}
	if !strings.Contains(stdout, key.ID()) {
		t.Errorf("embed output does not name the key id %s:\n%s", key.ID(), stdout)
	}

	// A mark in a PNG is the tags-stripped case: exit 1.
	code, stdout, _ = execAugment(t, "watermark", "verify", "--key-file", keyFile, marked)
	if code != ExitCheckFailed || !strings.Contains(stdout, "PRESENT") || !strings.Contains(stdout, "WARNING") {
		t.Errorf("verify marked PNG: exit %d, want 1 with PRESENT and a warning:\n%s", code, stdout)
	}
	code, stdout, _ = execAugment(t, "watermark", "verify", "--json", "--key-file", keyFile, marked, in)
	if code != ExitCheckFailed {
		t.Errorf("verify --json: exit %d, want 1", code)
	}
	var verdicts []wmfile.Verdict
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var v wmfile.Verdict
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		verdicts = append(verdicts, v)
	}
	if len(verdicts) != 2 || verdicts[0].Result == nil || verdicts[1].Result == nil {
		t.Fatalf("verdicts: %+v", verdicts)
	}
	if r := verdicts[0].Result; !r.Present || r.Payload == nil || !verdicts[0].TagsStripped || r.FalsePositive > 1e-9 {
		t.Errorf("marked file: %+v", r)
	}
	if r := verdicts[1].Result; r.Present || r.Payload != nil || verdicts[1].TagsStripped {
		t.Errorf("unmarked file: %+v", r)
	}
	// Among several keys the mark is found with its own key's id, at twice the false-positive
	// bound of one key, once the PNG's record of its mark is gone (a viewer's re-export);
	// with the record, the recorded key alone is tried.
	otherKey := filepath.Join(dir, "other.key")
	if err := os.WriteFile(otherKey, []byte("YW5vdGhlci1zaXRlLWtleS0wMTIzNDU2Nzg5YWJjZGVm\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mf, err := wmfile.Read(marked)
	if err != nil || mf.Record == nil || mf.Record.KeyID != key.ID() {
		t.Fatalf("marked PNG's record: %+v, %v", mf, err)
	}
	exported := filepath.Join(dir, "exported.png")
	if err := wmfile.Write(exported, mf.Image, wmfile.PNG); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file   string
		factor float64
	}{{exported, 2}, {marked, 1}} {
		code, stdout, _ = execAugment(t, "watermark", "verify", "--json", "--key-file", otherKey, "--key-file", keyFile, c.file)
		var two wmfile.Verdict
		if err := json.Unmarshal([]byte(stdout), &two); err != nil || code != ExitCheckFailed || two.Result == nil || !two.Result.Present ||
			two.Result.KeyID != key.ID() || two.Result.FalsePositive != min(1, c.factor*verdicts[0].Result.FalsePositive) {
			t.Errorf("verify %s with two keys: exit %d, %+v (one key: %+v)", filepath.Base(c.file), code, two.Result, verdicts[0].Result)
		}
	}
	// The unmarked original alone passes.
	if code, stdout, _ := execAugment(t, "watermark", "verify", "--key-file", keyFile, in); code != ExitOK || !strings.Contains(stdout, "absent") {
		t.Errorf("verify unmarked: exit %d\n%s", code, stdout)
	}
	// A file that is not an image is an input error.
	junk := filepath.Join(dir, "junk.txt")
	os.WriteFile(junk, []byte("not an image"), 0o644)
	if code, _, _ := execAugment(t, "watermark", "verify", "--key-file", keyFile, junk); code != ExitUsage {
		t.Errorf("verify junk: exit %d, want 2", code)
	}
	// No key: usage error.
	t.Setenv(keyEnv, "")
	if code, _, _ := execAugment(t, "watermark", "verify", marked); code != ExitUsage {
		t.Errorf("verify without a key: exit %d, want 2", code)
	}

	// attack writes the attacked images and the table.
	attacked := filepath.Join(dir, "attacked")
	code, stdout, stderr = execAugment(t, "watermark", "attack", "--json", "--key-file", keyFile, marked, "--out", attacked)
	if code != ExitOK && code != ExitCheckFailed {
		t.Fatalf("attack: exit %d: %s", code, stderr)
	}
	var table struct {
		Images int                  `json:"images"`
		Rows   []watermark.SuiteRow `json:"rows"`
		Files  []attackedFile       `json:"files"`
	}
	if err := json.Unmarshal([]byte(stdout), &table); err != nil {
		t.Fatalf("attack JSON: %v\n%s", err, stdout)
	}
	if table.Images != 1 || len(table.Rows) != len(watermark.Suite()) || table.Rows[0].Attack != "none" || table.Rows[0].Passed != 1 {
		t.Errorf("attack table: %+v", table)
	}
	// The file's own line names exactly the attacks whose row it failed.
	failedRows := 0
	for _, r := range table.Rows {
		failedRows += r.Images - r.Passed
	}
	if len(table.Files) != 1 || table.Files[0].Input != marked || len(table.Files[0].Failed) != failedRows {
		t.Errorf("attack per file: %+v, want %s with %d failures", table.Files, marked, failedRows)
	}
	for _, f := range []string{"table.md", "table.json", "report.html", "scan.rotate-90.png"} {
		if _, err := os.Stat(filepath.Join(attacked, f)); err != nil {
			t.Errorf("attack wrote no %s", f)
		}
	}
}

// TestWatermarkDICOM marks a 12-bit MR slice through the DICOM writer and verifies it: the
// output says Synthetic Data = YES, so the mark is not flagged.
func TestWatermarkDICOM(t *testing.T) {
	needSharedData(t)
	dir := t.TempDir()
	keyFile := writeTestKey(t, dir)
	mr := filepath.Join(sharedDataDir, "dicom/dcm_qa_ts/In/1.dcm")
	out := filepath.Join(dir, "out")
	code, stdout, stderr := execAugment(t, "watermark", "embed", "--json", "--key-file", keyFile, mr, "--out", out)
	if code != ExitOK {
		t.Fatalf("embed DICOM: exit %d: %s", code, stderr)
	}
	var e wmfile.Embedded
	if err := json.Unmarshal([]byte(stdout), &e); err != nil || e.Format != wmfile.DICOM || e.Payload == "" {
		t.Fatalf("embed result %q: %v", stdout, err)
	}
	if e.Reliance == nil || e.Reliance.Fragile || !e.Verified {
		t.Errorf("embed DICOM: reliance %+v, verified %v; want checked, not fragile, and the payload read back", e.Reliance, e.Verified)
	}
	code, stdout, _ = execAugment(t, "watermark", "verify", "--json", "--key-file", keyFile, e.Output)
	var v wmfile.Verdict
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatal(err)
	}
	if code != ExitOK || v.SyntheticData != "YES" || v.TagsStripped || v.Result == nil || !v.Result.Present || v.Result.Payload == nil || v.Result.Payload.String() != e.Payload {
		t.Errorf("verify marked DICOM: exit %d, verdict %+v, result %+v, embedded payload %s", code, v, v.Result, e.Payload)
	}
	if v.RecordedPayload != e.Payload || v.RecordedKeyID != e.KeyID || v.RecordMismatch() != "" {
		t.Errorf("provenance record read back: payload %q key %q (%s), want %s %s", v.RecordedPayload, v.RecordedKeyID, v.RecordMismatch(), e.Payload, e.KeyID)
	}
	// With another key the mark is absent, and the record says which key to use.
	other := filepath.Join(dir, "other.key")
	if err := os.WriteFile(other, []byte("b3RoZXIta2V5LWZvci10ZXN0cy0wMTIzNDU2Nzg5YWJj\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = execAugment(t, "watermark", "verify", "--key-file", other, e.Output)
	if code != ExitOK || !strings.Contains(stdout, "absent") || !strings.Contains(stdout, "marked with key "+e.KeyID) {
		t.Errorf("verify with another key: exit %d\n%s", code, stdout)
	}
}

func TestVerdictLine(t *testing.T) {
	p := watermark.Payload{ID: 7, Version: 1}
	for _, tc := range []struct {
		name string
		v    wmfile.Verdict
		want []string
		not  []string
	}{
		{"absent", wmfile.Verdict{Path: "a.png", Result: &watermark.Result{Score: 2, FalsePositive: 1, KeyID: "k"}},
			[]string{"a.png  absent"}, []string{"PRESENT"}},
		{"present", wmfile.Verdict{Path: "b.png", Format: wmfile.PNG, TagsStripped: true, Result: &watermark.Result{Present: true, Payload: &p, Orientation: "identity", KeyID: "k"}},
			[]string{"PRESENT", "payload " + p.String(), "WARNING", "png carries no Synthetic Data tag"}, []string{"resized", "letterboxed"}},
		{"stretched", wmfile.Verdict{Path: "c.png", Result: &watermark.Result{Present: true, Payload: &p, Orientation: "identity", Stretch: 0.859, KeyID: "k"}},
			[]string{"PRESENT", "resized to another aspect (x/y scale 0.859)"}, nil},
		{"letterboxed", wmfile.Verdict{Path: "e.png", Result: &watermark.Result{Present: true, Payload: &p, Orientation: "identity", Content: &watermark.Rect{X: 40, W: 120, H: 200}, KeyID: "k"}},
			[]string{"PRESENT", "letterboxed (read inside the bands: 120×200 at 40,0)"}, []string{"resized"}},
		{"coarse layer", wmfile.Verdict{Path: "f.png", Result: &watermark.Result{Present: true, Score: 4.7, CoarseScore: 7.4, Orientation: "identity", KeyID: "k"}},
			[]string{"PRESENT", "payload not decodable", "score 4.7σ", "with the coarse layer 7.4σ"}, nil},
		{"coarse layer weaker", wmfile.Verdict{Path: "g.png", Result: &watermark.Result{Present: true, Payload: &p, Score: 9.7, CoarseScore: 9.2, Orientation: "identity", KeyID: "k"}},
			[]string{"PRESENT", "score 9.7σ"}, []string{"coarse layer"}},
		{"error", wmfile.Verdict{Path: "d.png", Error: "bad header"}, []string{"d.png  error: bad header"}, []string{"PRESENT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := verdictLine(tc.v)
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("%q lacks %q", line, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(line, w) {
					t.Errorf("%q has %q", line, w)
				}
			}
		})
	}
}

func TestRelianceWarning(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *watermark.Reliance
		want string
	}{
		{"not checked", nil, ""},
		{"sound", &watermark.Reliance{RangeEndShare: 0.41}, ""},
		{"fragile", &watermark.Reliance{RangeEndShare: 0.73, Fragile: true}, "WARNING: fragile mark: it lives mostly in the flat areas at the ends of the value range (73 % of the pixels)"},
		{"fragile, the remedy", &watermark.Reliance{RangeEndShare: 0.73, Fragile: true}, "lower --psnr and --ssim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := relianceWarning(tc.r)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("%q, want %q", got, tc.want)
			}
		})
	}
}

// TestWatermarkDICOMFragile marks the 8-bit echocardiogram, whose black surround covers most
// of it, and checks that embed warns that its mark is fragile.
func TestWatermarkDICOMFragile(t *testing.T) {
	needSharedData(t)
	dir := t.TempDir()
	keyFile := writeTestKey(t, dir)
	us := filepath.Join(sharedDataDir, "dicom/pydicom-data/data/JPGLosslessP14SV1_1s_1f_8b.dcm")
	code, stdout, stderr := execAugment(t, "watermark", "embed", "--key-file", keyFile, us, "--out", filepath.Join(dir, "out"))
	if code != ExitOK {
		t.Fatalf("embed: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "WARNING: fragile mark") {
		t.Errorf("no fragile-mark warning: %q", stdout)
	}
}

// TestWatermarkEmbedBatch embeds a patient's folder, where every study holds a CR01.dcm and an
// SR01.dcm, plus two PNGs of one name in two folders: every image gets a file of its own, the
// reports are skipped rather than failed, and the exit code is 0.
func TestWatermarkEmbedBatch(t *testing.T) {
	needSharedData(t)
	dir := t.TempDir()
	keyFile := writeTestKey(t, dir)
	patient := filepath.Join(sharedDataDir, "cxr/train/CXR-P0003") // three studies
	var pngs []string
	for _, sub := range []string{"a", "b"} {
		p := filepath.Join(dir, sub, "scan.png")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := wmfile.Write(p, testScan(160, 160), wmfile.PNG); err != nil {
			t.Fatal(err)
		}
		pngs = append(pngs, p)
	}
	// A sidecar in a folder is left out; named on the command line it would be an input error.
	if err := os.WriteFile(filepath.Join(dir, "a", "labels.csv"), []byte("file,sex\nscan.png,F\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := execAugment(t, "watermark", "embed", "--key-file", keyFile, patient, "--out", out,
		filepath.Join(dir, "a"), pngs[1])
	if code != ExitOK {
		t.Fatalf("embed: exit %d\n%s\n%s", code, stdout, stderr)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Errorf("%d files written for 3 radiographs and 2 PNGs:\n%s", len(entries), stdout)
	}
	if !strings.Contains(stdout, "1 file(s) in the folders are not images") {
		t.Errorf("the sidecar is not reported left out:\n%s", stdout)
	}
	// One worker writes the same files and lines as several (names and payloads follow the
	// input order, not which worker finished first).
	out1 := filepath.Join(dir, "out1")
	code, stdout1, stderr := execAugment(t, "watermark", "embed", "--workers", "1", "--key-file", keyFile, patient, "--out", out1,
		filepath.Join(dir, "a"), pngs[1])
	if code != ExitOK || strings.ReplaceAll(stdout1, out1, out) != stdout {
		t.Errorf("--workers 1: exit %d\n%s\nwant\n%s\n%s", code, stdout1, stdout, stderr)
	}
	for _, e := range entries {
		a, _ := os.ReadFile(filepath.Join(out, e.Name()))
		b, err := os.ReadFile(filepath.Join(out1, e.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs with one worker (%v)", e.Name(), err)
		}
	}
	if code, _, _ := execAugment(t, "watermark", "verify", "--key-file", keyFile, filepath.Join(dir, "a", "labels.csv")); code != ExitUsage {
		t.Errorf("verify a named non-image file: exit %d, want 2", code)
	}
	if !strings.Contains(stdout, "3 file(s) skipped") {
		t.Errorf("the three reports are not reported skipped:\n%s", stdout)
	}
	// verify skips the reports too: the unmarked patient folder passes.
	code, stdout, stderr = execAugment(t, "watermark", "verify", "--key-file", keyFile, patient)
	if code != ExitOK || strings.Count(stdout, "skipped:") != 3 || strings.Count(stdout, "absent") != 3 ||
		!strings.Contains(stdout, "6 file(s): 0 with the mark (0 without their Synthetic Data tag), 3 without, 3 skipped, 0 unreadable") {
		t.Errorf("verify the patient folder: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestWeakWarning(t *testing.T) {
	if weakWarning(true) != "" || !strings.Contains(weakWarning(false), "WARNING: weak mark") || !strings.Contains(weakWarning(false), "--psnr") {
		t.Errorf("weak-mark warning: %q / %q", weakWarning(true), weakWarning(false))
	}
}

// TestWatermarkStrengthFlags: --psnr and --ssim set the strength embed marks at (a stronger
// mark, both floors held), and floors out of range are usage errors for every command that
// marks.
func TestWatermarkStrengthFlags(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeTestKey(t, dir)
	in := filepath.Join(dir, "scan.png")
	orig := testScan(256, 256)
	if err := wmfile.Write(in, orig, wmfile.PNG); err != nil {
		t.Fatal(err)
	}
	psnrOf := func(out string, flags ...string) (float64, float64) {
		t.Helper()
		args := append([]string{"watermark", "embed", "--key-file", keyFile, "--run-id", "strength", in, "--out", out}, flags...)
		if code, _, stderr := execAugment(t, args...); code != ExitOK {
			t.Fatalf("embed %v: exit %d: %s", flags, code, stderr)
		}
		f, err := wmfile.Read(filepath.Join(out, "scan.png"))
		if err != nil {
			t.Fatal(err)
		}
		ps, _ := watermark.PSNRDisplay(orig, f.Image)
		ss, _ := watermark.SSIMDisplay(orig, f.Image)
		return ps, ss
	}
	defPSNR, _ := psnrOf(filepath.Join(dir, "default"))
	strongPSNR, strongSSIM := psnrOf(filepath.Join(dir, "strong"), "--psnr", "40", "--ssim", "0.97")
	if strongPSNR < 40-0.01 || strongSSIM < 0.97-0.0005 || strongPSNR > defPSNR-2 {
		t.Errorf("--psnr 40 --ssim 0.97: %.2f dB, SSIM %.4f; default %.2f dB", strongPSNR, strongSSIM, defPSNR)
	}
	// attack marks an unmarked file at the floors given and says so.
	code, stdout, stderr := execAugment(t, "watermark", "attack", "--json", "--key-file", keyFile, "--psnr", "42", "--ssim", "0.98", in, "--out", filepath.Join(dir, "attacked"))
	var table struct {
		MarkedHere int            `json:"marked_here"`
		PSNR       float64        `json:"psnr_floor"`
		SSIM       float64        `json:"ssim_floor"`
		Files      []attackedFile `json:"files"`
	}
	if err := json.Unmarshal([]byte(stdout), &table); err != nil || (code != ExitOK && code != ExitCheckFailed) {
		t.Fatalf("attack: exit %d, %v: %s", code, err, stderr)
	}
	if table.MarkedHere != 1 || table.PSNR != 42 || table.SSIM != 0.98 || len(table.Files) != 1 || !table.Files[0].MarkedHere {
		t.Errorf("attack --psnr 42 --ssim 0.98 on an unmarked file: %+v", table)
	}
	for _, args := range [][]string{
		{"watermark", "embed", "--key-file", keyFile, "--psnr", "10", in, "--out", filepath.Join(dir, "x")},
		{"watermark", "attack", "--key-file", keyFile, "--ssim", "1", in, "--out", filepath.Join(dir, "y")},
		{"generate", "--key-file", keyFile, "--watermark-ssim", "0.2", "--prompt", "PA chest radiograph.", "--out", filepath.Join(dir, "z")},
		{"mark", "--key-file", keyFile, "--psnr", "100", in, "--out", filepath.Join(dir, "m")},
		{"watermark", "embed", "--key-file", keyFile, "--ssim", "0", in, "--out", filepath.Join(dir, "x")},
	} {
		if code, _, stderr := execAugment(t, args...); code != ExitUsage || !strings.Contains(stderr, "outside") {
			t.Errorf("%v: exit %d, want 2 naming the range: %s", args[:2], code, stderr)
		}
	}
}

// TestWatermarkStrengthRecorded: a DICOM output's provenance record says the floors its mark
// was held at, the defaults included.
func TestWatermarkStrengthRecorded(t *testing.T) {
	needSharedData(t)
	dir := t.TempDir()
	keyFile := writeTestKey(t, dir)
	mr := filepath.Join(sharedDataDir, "dicom/dcm_qa_ts/In/1.dcm")
	for _, tc := range []struct {
		flags      []string
		psnr, ssim float64
	}{
		{nil, watermark.DefaultPSNR, watermark.DefaultSSIM},
		{[]string{"--psnr", "42", "--ssim", "0.98"}, 42, 0.98},
	} {
		out := filepath.Join(dir, fmt.Sprint(tc.psnr))
		args := append([]string{"watermark", "embed", "--json", "--key-file", keyFile, mr, "--out", out}, tc.flags...)
		code, stdout, stderr := execAugment(t, args...)
		if code != ExitOK {
			t.Fatalf("embed %v: exit %d: %s", tc.flags, code, stderr)
		}
		var e wmfile.Embedded
		if err := json.Unmarshal([]byte(stdout), &e); err != nil {
			t.Fatal(err)
		}
		p, err := dicomio.InspectProvenance(e.Output)
		if err != nil || p.Record == nil {
			t.Fatalf("%s: provenance %+v: %v", e.Output, p, err)
		}
		if g := p.Record.Generation; g.WatermarkPSNRFloor != tc.psnr || g.WatermarkSSIMFloor != tc.ssim {
			t.Errorf("%v: record says %.2f dB, %.4f; want %.2f dB, %.4f", tc.flags, g.WatermarkPSNRFloor, g.WatermarkSSIMFloor, tc.psnr, tc.ssim)
		}
	}
}
