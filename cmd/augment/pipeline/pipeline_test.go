package pipeline

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/manifests"
	"github.com/medaugment/augment/unclip"
	"github.com/medaugment/augment/watermark"
	"github.com/medaugment/augment/watermark/wmfile"
)

func TestCaption(t *testing.T) {
	male70 := dicomio.Demographics{Sex: "M", AgeYears: 74, AgeKnown: true}
	tests := []struct {
		name          string
		view          string
		demo          dicomio.Demographics
		finding, note string
		want          string
	}{
		{"full", "AP", male70, "SARS", "SARS in a 74-year-old man who developed symptoms 4 days after exposure. Anteroposterior radiograph obtained 1 day later shows diffuse persistent bilateral airspace disease. The patient died 13 days after exposure to SARS.",
			"AP chest radiograph, male, 70-79 years, SARS. Anteroposterior radiograph obtained 1 day later shows diffuse persistent bilateral airspace disease."},
		{"lateral female no age", "L", dicomio.Demographics{Sex: "F"}, "COVID-19", "", "lateral chest radiograph, female, COVID-19."},
		{"unknown sex and view", "", dicomio.Demographics{}, "", "", "chest radiograph."},
		{"no finding normalised", "PA", dicomio.Demographics{Sex: "O", AgeYears: 9, AgeKnown: true}, "No Finding", "", "PA chest radiograph, 0-9 years, no finding."},
		{"supine", "AP Supine", dicomio.Demographics{}, "", "diffuse infiltrates in the bilateral lower lungs", "AP supine chest radiograph. diffuse infiltrates in the bilateral lower lungs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Caption(tc.view, tc.demo, tc.finding, tc.note); got != tc.want {
				t.Errorf("Caption = %q\nwant      %q", got, tc.want)
			}
		})
	}
}

func TestSplitReport(t *testing.T) {
	tests := []struct{ in, finding, notes string }{
		{"", "", ""},
		{"COVID-19", "COVID-19", ""},
		{"SARS\nfirst line.\nsecond line.", "SARS", "first line. second line."},
	}
	for _, tc := range tests {
		f, n := SplitReport(tc.in)
		if f != tc.finding || n != tc.notes {
			t.Errorf("SplitReport(%q) = %q, %q; want %q, %q", tc.in, f, n, tc.finding, tc.notes)
		}
	}
}

func TestPayloadIDStableAndDistinct(t *testing.T) {
	seen := map[uint64]int{}
	for i := 0; i < 1000; i++ {
		id := PayloadID("run-a", i)
		if id > watermark.MaxPayloadID {
			t.Fatalf("payload id %x exceeds watermark.MaxPayloadID", id)
		}
		if j, ok := seen[id]; ok {
			t.Fatalf("items %d and %d share payload id %x", i, j, id)
		}
		seen[id] = i
		if PayloadID("run-a", i) != id {
			t.Fatal("payload id is not deterministic")
		}
	}
	if PayloadID("run-a", 0) == PayloadID("run-b", 0) {
		t.Error("different runs share a payload id")
	}
}

// tinyPipeline opens the tiny random-weight bundle, skipping when ONNX Runtime is missing.
func tinyPipeline(t *testing.T) *unclip.Pipeline {
	t.Helper()
	lib, err := unclip.FindORTLibrary("")
	if err != nil {
		t.Skipf("ONNX Runtime library not found (run make setup): %v", err)
	}
	b, err := unclip.LoadBundle(filepath.Join("..", "..", "..", "testdata", "bundles", "tiny"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := unclip.Open(b, unclip.RuntimeOptions{Library: lib, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func testKey(t *testing.T) watermark.Key {
	t.Helper()
	k, err := watermark.NewKey([]byte("pipeline-test-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeSource writes a small real-looking CR source image with the project's own writer.
func writeSource(t *testing.T, dir string) string {
	t.Helper()
	const n = 96
	px := make([]float32, n*n)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			px[y*n+x] = float32((x+y)%n) / n
		}
	}
	path := filepath.Join(dir, "source.dcm")
	_, err := dicomio.WriteSynthetic(context.Background(), path, dicomio.SyntheticImage{
		Pixels: &dicomio.Image{Rows: n, Columns: n, Frames: 1, Samples: 1, BitsAllocated: 32, BitsStored: 32, Photometric: "MONOCHROME2", F32: px},
		Values: dicomio.ValuesUnit,
		Record: dicomio.GenerationRecord{Mode: dicomio.ModeText, Prompt: "test source"},
	}, dicomio.SyntheticOptions{RunID: "source", BitDepth: 12})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGenerateWritesMarkedInstancesAndManifest(t *testing.T) {
	p := tinyPipeline(t)
	dir := t.TempDir()
	src := writeSource(t, dir)
	notDICOM := filepath.Join(dir, "broken.dcm")
	if err := os.WriteFile(notDICOM, []byte("not a dicom file"), 0o644); err != nil {
		t.Fatal(err)
	}
	key := testKey(t)
	reqs := []Request{
		{Mode: ModeText, Caption: "PA chest radiograph, female, 60-69 years, COVID-19.", Count: 2,
			Demographics: dicomio.Demographics{Sex: "F", AgeYears: 64, AgeKnown: true}},
		{Mode: ModeVariation, Sources: []string{notDICOM}, Count: 1},
		{Mode: ModeVariation, Sources: []string{src}, Count: 2},
		{Mode: ModeTextEdit, Sources: []string{src}, Caption: "bilateral opacities", Count: 2},
		{Mode: ModeInterpolation, Sources: []string{src, src}, Count: 2},
	}
	run := func(out string) *Result {
		res, err := Generate(context.Background(), Config{
			Pipeline: p, BundleName: "tiny", BundleSHA256: "00", OutDir: out, RunID: "test-run", Seed: 7, Key: key,
			DecoderSteps: 2, PriorSteps: 2, UpsamplerSteps: 2, SoftwareVersion: "test",
		}, reqs)
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		return res
	}
	out := filepath.Join(dir, "out")
	res := run(out)
	if res.Written != 8 || res.Failed != 1 {
		t.Fatalf("written %d failed %d; want 8 and 1 (the broken source)", res.Written, res.Failed)
	}
	rows, err := manifests.ReadGenerations(res.ManifestPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 9 {
		t.Fatalf("manifest has %d rows, want 9", len(rows))
	}
	for i, row := range rows {
		if int(row.Item) != i {
			t.Errorf("row %d has item %d", i, row.Item)
		}
		if row.Mode == string(ModeVariation) && row.Error != "" {
			if !bytes.Contains([]byte(row.Error), []byte("broken.dcm")) {
				t.Errorf("error %q does not name the bad file", row.Error)
			}
			continue
		}
		if row.Error != "" {
			t.Errorf("row %d failed: %s", i, row.Error)
			continue
		}
		in, img, err := dicomio.ReadImage(row.Path, dicomio.ReadOptions{})
		if err != nil {
			t.Fatalf("read back %s: %v", row.Path, err)
		}
		if in.SyntheticData != "YES" {
			t.Errorf("%s: Synthetic Data = %q", row.Path, in.SyntheticData)
		}
		if in.Modality != row.Modality || row.Modality == "" {
			t.Errorf("%s: Modality %q, manifest says %q", row.Path, in.Modality, row.Modality)
		}
		if in.SOPInstanceUID != row.SOPInstanceUID {
			t.Errorf("%s: SOP Instance UID %s, manifest says %s", row.Path, in.SOPInstanceUID, row.SOPInstanceUID)
		}
		if img.Rows != int(row.Rows) || img.Columns != int(row.Columns) {
			t.Errorf("%s: %dx%d, manifest says %dx%d", row.Path, img.Rows, img.Columns, row.Rows, row.Columns)
		}
		// The tiny bundle's random weights give noise images; watermark detection on real-looking
		// content is TestWriteOneWatermarks. Here: the payload is the item's.
		want := watermark.Payload{ID: PayloadID("test-run", i), Version: watermark.PayloadVersion}
		if row.WatermarkPayload != want.String() || row.WatermarkKeyID != key.ID() {
			t.Errorf("row %d: payload %q key %q; want %q %q", i, row.WatermarkPayload, row.WatermarkKeyID, want.String(), key.ID())
		}
		if row.WatermarkPSNRFloor != watermark.DefaultPSNR || row.WatermarkSSIMFloor != watermark.DefaultSSIM {
			t.Errorf("row %d: floors %v dB, %v; want the defaults", i, row.WatermarkPSNRFloor, row.WatermarkSSIMFloor)
		}
		// The manifest's verified flag says what a detector finds in the written pixels.
		if g, err := grayFromStored(img); err != nil {
			t.Errorf("row %d: %v", i, err)
		} else if det, err := watermark.Detect(g, key); err != nil {
			t.Errorf("row %d: detect: %v", i, err)
		} else if got := det.Payload != nil && *det.Payload == want; got != row.WatermarkVerified {
			t.Errorf("row %d: manifest says watermark verified = %v, the written pixels say %v", i, row.WatermarkVerified, got)
		}
		if len(row.ImageEmbedding) == 0 {
			t.Errorf("row %d has no image embedding", i)
		}
	}
	if rows[0].Sex != "F" || rows[0].AgeYears == nil || *rows[0].AgeYears != 64 {
		t.Errorf("conditioned demographics not recorded: %+v", rows[0])
	}
	if len(rows[3].SourceSOPUIDs) != 1 {
		t.Errorf("variation row lists %d sources, want 1", len(rows[3].SourceSOPUIDs))
	}

	sheet := filepath.Join(dir, "preview.png")
	if err := WritePreview(sheet, res.Items, 4, 64); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sheet); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("preview mode %v (%v), want 0644", fi.Mode().Perm(), err)
	}
	f, err := os.Open(sheet)
	if err != nil {
		t.Fatal(err)
	}
	cfgPNG, err := png.DecodeConfig(f)
	f.Close()
	if err != nil || cfgPNG.Width != 4*64+3*2 || cfgPNG.Height != 2*64+2 {
		t.Errorf("preview %dx%d (%v), want 262x130 for 8 images in rows of 4", cfgPNG.Width, cfgPNG.Height, err)
	}

	// A rerun with the same run id and seed writes byte-identical instances.
	res2 := run(filepath.Join(dir, "out2"))
	for i := range res.Items {
		if res.Items[i].Err != nil {
			continue
		}
		a, _ := os.ReadFile(res.Items[i].Row.Path)
		b, _ := os.ReadFile(res2.Items[i].Row.Path)
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("item %d differs between identical runs", i)
		}
	}
}

func TestGenerateRefusesUnwatermarkedRuns(t *testing.T) {
	_, err := Generate(context.Background(), Config{Pipeline: &unclip.Pipeline{}, RunID: "x", OutDir: t.TempDir()}, nil)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("watermark")) {
		t.Fatalf("Generate without a key: err = %v, want a watermark key error", err)
	}
}

func TestGenerateCancelled(t *testing.T) {
	p := tinyPipeline(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := t.TempDir()
	res, err := Generate(ctx, Config{Pipeline: p, RunID: "c", OutDir: out, Key: testKey(t)},
		[]Request{{Mode: ModeText, Caption: "chest radiograph."}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// What was done before the cancellation (here: nothing) is still recorded.
	rows, err := manifests.ReadGenerations(res.ManifestPath)
	if err != nil || len(rows) != 0 {
		t.Errorf("manifest after cancellation: %d rows, %v", len(rows), err)
	}
}

// TestGenerateKeepsEarlierRuns checks that a run into a folder keeps the rows other runs
// wrote to its manifest, replaces its own run id's, and stops, replacing nothing, when the
// manifest there cannot be read.
func TestGenerateKeepsEarlierRuns(t *testing.T) {
	p := tinyPipeline(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no images: the manifest is what is checked
	out := t.TempDir()
	path := filepath.Join(out, "manifest.parquet")
	earlier := []manifests.GenerationRow{{RunID: "a", Item: 0}, {RunID: "a", Item: 1}, {RunID: "b", Item: 0}}
	if err := manifests.WriteGenerations(path, earlier); err != nil {
		t.Fatal(err)
	}
	res, err := Generate(ctx, Config{Pipeline: p, RunID: "b", OutDir: out, Key: testKey(t)}, []Request{{Mode: ModeText, Caption: "chest radiograph."}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	rows, err := manifests.ReadGenerations(path)
	if err != nil || len(rows) != 2 || rows[0].RunID != "a" || rows[1].RunID != "a" || res.EarlierRows != 2 {
		t.Errorf("manifest after run b: %+v (%v), earlier rows %d; want run a's two rows", rows, err, res.EarlierRows)
	}
	if err := os.WriteFile(path, []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(context.Background(), Config{Pipeline: p, RunID: "c", OutDir: out, Key: testKey(t)},
		[]Request{{Mode: ModeText, Caption: "chest radiograph."}}); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("unreadable manifest: err = %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "not parquet" {
		t.Error("the unreadable manifest was replaced")
	}
	if entries, _ := os.ReadDir(filepath.Join(out, "instances")); len(entries) != 0 {
		t.Errorf("%d instances written although the run stopped", len(entries))
	}
}

// TestGenerateRefusesLabelMaps checks that a segmentation is not taken as a source image: the
// model would be conditioned on its label values.
func TestGenerateRefusesLabelMaps(t *testing.T) {
	const seg = "../../../../shared/data/dicom/pydicom-data/data/liver.dcm" // 1-bit SEG
	if _, err := os.Stat(seg); err != nil {
		t.Skipf("a segmentation from ../shared/data is missing: %v", err)
	}
	res, err := Generate(context.Background(), Config{Pipeline: tinyPipeline(t), RunID: "seg", OutDir: t.TempDir(), Key: testKey(t)},
		[]Request{{Mode: ModeVariation, Sources: []string{seg}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 1 || !errors.Is(res.Items[0].Err, dicomio.ErrLabels) {
		t.Errorf("variation of a segmentation: %+v", res.Items)
	}
}

func TestWriteOneWatermarks(t *testing.T) {
	const n = 128
	img := unclip.Tensor{Shape: []int{1, 1, n, n}, Data: make([]float32, n*n)}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			// a smooth radiograph-like field: bright centre, darker edges, soft texture
			dx, dy := float64(x-n/2)/n, float64(y-n/2)/n
			img.Data[y*n+x] = float32(0.6-1.2*(dx*dx+dy*dy)+0.05*math.Sin(float64(x)/3)*math.Cos(float64(y)/5))*2 - 1
		}
	}
	key := testKey(t)
	dir := t.TempDir()
	cfg := Config{RunID: "wm-run", Key: key, SoftwareVersion: "test"}
	for _, depth := range []int{8, 12, 16} {
		cfg.BitDepth = depth
		res, check, err := writeOne(context.Background(), cfg, depth, img, dicomio.GenerationRecord{Mode: dicomio.ModeText, Prompt: "x"}, nil, Request{}, dir)
		if err != nil {
			t.Fatal(err)
		}
		_, stored, err := dicomio.ReadImage(res.Path, dicomio.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		g, err := grayFromStored(stored)
		if err != nil {
			t.Fatal(err)
		}
		det, err := watermark.Detect(g, key)
		if err != nil {
			t.Fatal(err)
		}
		want := watermark.Payload{ID: PayloadID("wm-run", depth), Version: watermark.PayloadVersion}
		if !det.Present || det.Payload == nil || *det.Payload != want {
			t.Errorf("%d-bit: detected %+v, want payload %v", depth, det, want)
		}
		if !check.Verified {
			t.Errorf("%d-bit: writeOne says the mark did not verify, but the file's does", depth)
		}
		if check.Fragile {
			t.Errorf("%d-bit: a radiograph-like image's mark called fragile", depth)
		}
		if res.Provenance.Generation.WatermarkPayloadID != want.String() {
			t.Errorf("%d-bit: provenance payload %q, want %q", depth, res.Provenance.Generation.WatermarkPayloadID, want.String())
		}
	}
}

// TestWriteOneFragileMark writes an 8-bit image whose black surround covers most of it (an
// ultrasound sector's) and checks that writeOne calls its mark fragile.
func TestWriteOneFragileMark(t *testing.T) {
	const w, h = 320, 256
	img := unclip.Tensor{Shape: []int{1, 1, h, w}, Data: make([]float32, w*h)}
	rng := rand.New(rand.NewPCG(9, 9))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := float64(x-w/2), float64(y)
			v := -1.0 // black surround
			if math.Hypot(dx, dy) < 0.9*h && math.Abs(math.Atan2(dx, dy)) < 0.5 {
				v = math.Max(-0.99, math.Min(0.99, -0.5+0.3*rng.NormFloat64()))
			}
			img.Data[y*w+x] = float32(v)
		}
	}
	cfg := Config{RunID: "fragile", Key: testKey(t), SoftwareVersion: "test", BitDepth: 8}
	_, check, err := writeOne(context.Background(), cfg, 1, img, dicomio.GenerationRecord{Mode: dicomio.ModeText, Prompt: "x"}, nil, Request{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !check.Fragile {
		t.Errorf("a mark on a mostly black image not called fragile (verified %v)", check.Verified)
	}
}

// TestWatermarkEveryFrame marks a two-frame instance (a cine loop's, an enhanced CT's) and
// checks that each frame carries the instance's payload, so that a frame exported alone is
// still traced.
func TestWatermarkEveryFrame(t *testing.T) {
	const w, h = 192, 160
	im := &dicomio.Image{Rows: h, Columns: w, Frames: 2, Samples: 1, BitsAllocated: 16, BitsStored: 16,
		Photometric: "MONOCHROME2", U16: make([]uint16, 2*w*h)}
	rng := rand.New(rand.NewPCG(4, 2))
	for f := 0; f < 2; f++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := 20000 + 8000*math.Sin(float64(x+9*f)/9)*math.Cos(float64(y)/13) + 400*rng.NormFloat64()
				im.U16[f*w*h+y*w+x] = uint16(v)
			}
		}
	}
	key := testKey(t)
	var check MarkCheck
	rec, err := watermarkStep(key, watermark.Options{}, &check)(im, "frames", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := watermark.Payload{ID: PayloadID("frames", 3), Version: watermark.PayloadVersion}
	if rec.PayloadID != want.String() || rec.KeyID != key.ID() || !check.Verified {
		t.Fatalf("payload %s key %s verified %v, want %s %s true", rec.PayloadID, rec.KeyID, check.Verified, want, key.ID())
	}
	if rec.PSNRFloor != watermark.DefaultPSNR || rec.SSIMFloor != watermark.DefaultSSIM {
		t.Errorf("floors recorded %.2f dB, %.4f, want the defaults", rec.PSNRFloor, rec.SSIMFloor)
	}
	for f := 0; f < 2; f++ {
		g, err := wmfile.FrameGray(im, f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := watermark.Detect(g, key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Payload == nil || *r.Payload != want {
			t.Errorf("frame %d: payload %v, want %v (score %.1f)", f+1, r.Payload, want, r.Score)
		}
	}
}
