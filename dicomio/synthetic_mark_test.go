package dicomio

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

func TestMarkFilesKeepsPixels(t *testing.T) {
	needSynthShared(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "not-dicom.dcm")
	if err := os.WriteFile(bad, []byte("not a DICOM file"), 0o644); err != nil {
		t.Fatal(err)
	}
	inputs := []string{
		filepath.Join(synthSharedData, "cxr/train/CXR-P0003/ACCD2E2586B60/CR01.dcm"), // JPEG baseline CR
		bad, // reported, the rest go on
		filepath.Join(synthSharedData, "dicom/pydicom-testfiles/test_files/CT_small.dcm"), // signed 16-bit CT
		filepath.Join(synthSharedData, "dicom/pydicom-testfiles/test_files/MR_small.dcm"),
		filepath.Join(synthSharedData, "dicom/pydicom-data/data/emri_small.dcm"), // multi-frame
		filepath.Join(synthSharedData, "dicom/pydicom-data/data/SC_rgb.dcm"),     // RGB
	}
	wantIOD := []string{SOPClassCR, "", SOPClassCT, SOPClassMR, SOPClassMultiFrameWordSC, SOPClassSecondaryCapture}
	out := filepath.Join(dir, "out")
	var calls int
	results, err := MarkFiles(context.Background(), inputs, MarkOptions{OutDir: out, Tool: "other-gan 2.1",
		Synthetic: SyntheticOptions{RunID: "mark-test", SoftwareVersion: "t"}}, func(MarkResult) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(inputs) || calls != len(inputs) {
		t.Fatalf("%d results, %d callbacks for %d inputs", len(results), calls, len(inputs))
	}
	for i, r := range results {
		if inputs[i] == bad {
			if r.OK || r.Error == "" {
				t.Errorf("bad file: %+v", r)
			}
			continue
		}
		if !r.OK {
			t.Errorf("%s: %s", inputs[i], r.Error)
			continue
		}
		if r.Output.SOPClassUID != wantIOD[i] {
			t.Errorf("%s: IOD %s (%s), want %s", inputs[i], r.Output.IOD, r.Output.IODReason, wantIOD[i])
		}
		srcIn, srcImg, err := ReadImage(inputs[i], ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		outIn, outImg, err := ReadImage(r.Output.Path, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if outIn.SyntheticData != "YES" {
			t.Errorf("%s: not marked", inputs[i])
		}
		n := srcImg.Rows * srcImg.Columns * max(srcImg.Frames, 1) * max(srcImg.Samples, 1)
		for k := 0; k < n; k++ {
			a := synthFrameValue(srcImg, k)*srcIn.RescaleSlope + srcIn.RescaleIntercept
			b := synthFrameValue(outImg, k)*outIn.RescaleSlope + outIn.RescaleIntercept
			if math.Abs(a-b) > 1e-6 {
				t.Errorf("%s: modality value %d changed: %g → %g", inputs[i], k, a, b)
				break
			}
		}
		p, err := InspectProvenance(r.Output.Path)
		if err != nil {
			t.Fatal(err)
		}
		if p.Record == nil || p.Record.Generation.Mode != ModeRemark || p.Record.Generation.Tool != "other-gan 2.1" {
			t.Errorf("%s: provenance record %+v", inputs[i], p.Record)
		}
		if i == 0 { // the JPEG source's lossy history and the demographics are kept
			if outIn.Demographics.Sex != "M" || outIn.Demographics.AgeYears != 74 {
				t.Errorf("CXR demographics not carried over: %+v", outIn.Demographics)
			}
			ds, err := dicom.ParseFile(r.Output.Path, nil, dicom.SkipPixelData())
			if err != nil {
				t.Fatal(err)
			}
			if got := wrFirst(&ds, tag.LossyImageCompression); got != "01" {
				t.Errorf("Lossy Image Compression %q, want 01 (the source was JPEG baseline)", got)
			}
		}
		if dciodvfy, err := exec.LookPath("dciodvfy"); err == nil {
			for _, line := range dciodvfyErrors(t, dciodvfy, r.Output.Path) {
				t.Errorf("%s marked (%s): %s", inputs[i], r.Output.IOD, line)
			}
		}
	}
	// Rerun: same bytes.
	again, err := MarkFiles(context.Background(), inputs[:1], MarkOptions{OutDir: filepath.Join(dir, "again"), Tool: "other-gan 2.1",
		Synthetic: SyntheticOptions{RunID: "mark-test", SoftwareVersion: "t"}}, nil)
	if err != nil || !again[0].OK {
		t.Fatalf("rerun: %v %+v", err, again)
	}
	a, _ := os.ReadFile(results[0].Output.Path)
	b, _ := os.ReadFile(again[0].Output.Path)
	if string(a) != string(b) {
		t.Error("marking again with the same run id is not byte-identical")
	}
}

// Two inputs of one batch with the same SOP Instance UID (one instance stored twice, or a
// broken de-identification) must not write the same output: the second would replace the
// first, whose result would then name another image.
func TestMarkFilesRepeatedUID(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "in", "a.dcm")
	if err := os.MkdirAll(filepath.Dir(a), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteSynthetic(context.Background(), a, SyntheticImage{Pixels: hounsfieldFrame(64, 64), Record: testRecord()},
		SyntheticOptions{RunID: "src"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "in", "b.dcm") // the same instance again
	if err := os.WriteFile(b, data, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := MarkOptions{OutDir: filepath.Join(dir, "out"), Synthetic: SyntheticOptions{RunID: "dup"}}
	results, err := MarkFiles(context.Background(), []string{a, b, a}, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for i, r := range results {
		if !r.OK {
			t.Fatalf("input %d: %s", i, r.Error)
		}
		if prev, ok := seen[r.Output.SOPInstanceUID]; ok {
			t.Errorf("inputs %s and %d share the new UID %s", prev, i, r.Output.SOPInstanceUID)
		}
		seen[r.Output.SOPInstanceUID] = fmt.Sprint(i)
		if _, err := os.Stat(r.Output.Path); err != nil {
			t.Errorf("input %d: output missing: %v", i, err)
		}
		want := ""
		if i > 0 {
			want = a
		}
		if r.Output.RepeatsUIDOf != want {
			t.Errorf("input %d: repeats %q, want %q", i, r.Output.RepeatsUIDOf, want)
		}
	}
	entries, _ := os.ReadDir(opts.OutDir)
	if len(entries) != 3 {
		t.Errorf("%d files written for 3 inputs", len(entries))
	}
	// Alone, each input still gets the UID derived from its source: reruns write the same files.
	alone, err := MarkFiles(context.Background(), []string{b}, MarkOptions{OutDir: filepath.Join(dir, "alone"), Synthetic: opts.Synthetic}, nil)
	if err != nil || !alone[0].OK {
		t.Fatalf("alone: %v %+v", err, alone)
	}
	if alone[0].Output.SOPInstanceUID != results[0].Output.SOPInstanceUID || alone[0].Output.RepeatsUIDOf != "" {
		t.Errorf("alone: UID %s, want the first input's %s", alone[0].Output.SOPInstanceUID, results[0].Output.SOPInstanceUID)
	}
}

// Files the reference decoder reads that once stopped a re-mark or were re-marked wrongly: a
// 12-bit CT holding values its Bits Stored cannot (kept at 16 bits), image attributes without
// Pixel Data (skipped, not failed), and a 1-bit segmentation, which was written as a grey
// secondary capture whose labels the watermark then changed (skipped).
func TestMarkFilesOddSources(t *testing.T) {
	needSynthShared(t)
	wide := filepath.Join(synthSharedData, "dicom/pydicom-data/data/mlut_18.dcm")
	noPixels := filepath.Join(synthSharedData, "dicom/pydicom-testfiles/charset_files/chrJapMulti.dcm")
	seg := filepath.Join(synthSharedData, "dicom/pydicom-data/data/liver.dcm") // 1-bit SEG, 3 frames
	results, err := MarkFiles(context.Background(), []string{wide, noPixels, seg},
		MarkOptions{OutDir: t.TempDir(), Synthetic: SyntheticOptions{RunID: "odd"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := results[0]; !r.OK {
		t.Errorf("%s: %s", wide, r.Error)
	} else {
		srcIn, srcImg, err := ReadImage(wide, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		outIn, outImg, err := ReadImage(r.Output.Path, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if outImg.BitsStored != 16 {
			t.Errorf("bits stored %d, want 16 for values spanning %d", outImg.BitsStored, valueSpan(srcImg))
		}
		for k := range srcImg.Rows * srcImg.Columns {
			a := synthFrameValue(srcImg, k)*srcIn.RescaleSlope + srcIn.RescaleIntercept
			b := synthFrameValue(outImg, k)*outIn.RescaleSlope + outIn.RescaleIntercept
			if math.Abs(a-b) > 1e-6 {
				t.Fatalf("modality value %d changed: %g → %g", k, a, b)
			}
		}
	}
	if r := results[1]; r.OK || !r.Skipped {
		t.Errorf("%s: %+v, want skipped (no pixel data)", noPixels, r)
	}
	if r := results[2]; r.OK || !r.Skipped || !strings.Contains(r.Error, ErrLabels.Error()) {
		t.Errorf("%s: %+v, want skipped as a segmentation (labels, not intensities)", seg, r)
	}
}

// TestOutputSetOrdered checks that with Ordered the earliest item keeps a contested name
// whichever worker claims first, and that an item settling without a claim lets the rest go on.
func TestOutputSetOrdered(t *testing.T) {
	for range 20 {
		s := &OutputSet{Ordered: true}
		won := make(chan int, 3)
		done := make(chan struct{})
		for _, item := range []int{2, 1, 0} { // the later items start first
			go func() {
				defer func() { done <- struct{}{} }()
				defer s.Settle(item)
				if item == 1 {
					return // fails before naming anything
				}
				if _, ok := s.Claim(item, "out/scan.png", fmt.Sprint("input ", item)); ok {
					won <- item
				}
			}()
		}
		for range 3 {
			<-done
		}
		close(won)
		var winners []int
		for w := range won {
			winners = append(winners, w)
		}
		if len(winners) != 1 || winners[0] != 0 {
			t.Fatalf("winners %v, want item 0 alone", winners)
		}
	}
}
