package dicomio

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

func TestDeriveUID(t *testing.T) {
	long := "1.2.826.0.1.3680043.10.999.123456789.1234"
	cases := []struct {
		name, root string
	}{
		{"uuid form", ""},
		{"explicit 2.25", UUIDRoot},
		{"short root", "1.2.3"},
		{"long root", long},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, kind := range []UIDKind{UIDStudy, UIDSeries, UIDInstance, UIDFrameOfReference} {
				for _, key := range []string{"0", "1", "1.2.3.4"} {
					u := DeriveUID(c.root, "run-1", kind, key)
					if err := ValidateUID(u); err != nil {
						t.Fatalf("%s/%s: %v", kind, key, err)
					}
					root := c.root
					if root == "" {
						root = UUIDRoot
					}
					if !strings.HasPrefix(u, root+".") {
						t.Errorf("%s is not under %s", u, root)
					}
					if u != DeriveUID(c.root, "run-1", kind, key) {
						t.Errorf("%s/%s: not deterministic", kind, key)
					}
					if u == DeriveUID(c.root, "run-2", kind, key) {
						t.Errorf("%s/%s: run id does not change the UID", kind, key)
					}
					if seen[u] {
						t.Errorf("%s/%s: UID %s collides", kind, key, u)
					}
					seen[u] = true
				}
			}
		})
	}
	if err := ValidateUIDRoot(long + ".12345678901234567890"); err == nil {
		t.Error("a root that leaves no room for digits was accepted")
	}
	for _, bad := range []string{"1..2", "1.02", "999.1", "1.2a", strings.Repeat("1.", 33) + "1"} {
		if ValidateUID(bad) == nil {
			t.Errorf("invalid UID %q accepted", bad)
		}
	}
}

func TestQuantizeFrame(t *testing.T) {
	cases := []struct {
		name        string
		img         *Image
		values      PixelValues
		unit        *[2]float64
		rescale     *Rescale
		bits        int
		wantStored  []uint16
		wantRescale Rescale
		wantErr     string
	}{
		{name: "unit floats 8 bits", img: &Image{Rows: 1, Columns: 3, F32: []float32{0, 0.5, 1}}, bits: 8,
			wantStored: []uint16{0, 128, 255}, wantRescale: Rescale{Slope: 1}},
		{name: "unit floats clamp 12 bits", img: &Image{Rows: 1, Columns: 3, F32: []float32{-0.5, 0.25, 7}}, bits: 12,
			wantStored: []uint16{0, 1024, 4095}, wantRescale: Rescale{Slope: 1}},
		{name: "unit floats with range", img: &Image{Rows: 1, Columns: 2, F64: []float64{0, 1}}, bits: 12, unit: &[2]float64{-1000, 3095},
			wantStored: []uint16{0, 4095}, wantRescale: Rescale{Slope: 1, Intercept: -1000}},
		{name: "integral modality values exact", img: &Image{Rows: 1, Columns: 3, F32: []float32{-1024, 0, 2000}}, values: ValuesModality, bits: 12,
			wantStored: []uint16{0, 1024, 3024}, wantRescale: Rescale{Slope: 1, Intercept: -1024}},
		{name: "fractional modality values spread", img: &Image{Rows: 1, Columns: 3, F32: []float32{0.5, 1.5, 2.5}}, values: ValuesModality, bits: 8,
			wantStored: []uint16{0, 128, 255}, wantRescale: Rescale{Slope: 2.0 / 255, Intercept: 0.5}},
		{name: "integers as stored", img: &Image{Rows: 1, Columns: 2, U16: []uint16{5, 4000}}, bits: 12,
			wantStored: []uint16{5, 4000}, wantRescale: Rescale{Slope: 1}},
		{name: "signed integers offset", img: &Image{Rows: 1, Columns: 2, I16: []int16{-100, 100}}, rescale: &Rescale{Slope: 2, Intercept: 10}, bits: 12,
			wantStored: []uint16{0, 200}, wantRescale: Rescale{Slope: 2, Intercept: -190}},
		{name: "integers too wide", img: &Image{Rows: 1, Columns: 2, I16: []int16{-3000, 3000}}, bits: 12, wantErr: "larger bit depth"},
		{name: "modality NaN", img: &Image{Rows: 1, Columns: 1, F32: []float32{float32(math.NaN())}}, values: ValuesModality, bits: 16, wantErr: "finite"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := synthValidateFrame(c.img)
			if err != nil {
				t.Fatal(err)
			}
			q, err := quantizeFrame(c.img, n, c.bits, c.values, c.unit, c.rescale)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range c.wantStored {
				var got uint16
				if q.img.U8 != nil {
					got = uint16(q.img.U8[i])
				} else {
					got = q.img.U16[i]
				}
				if got != w {
					t.Errorf("stored[%d] = %d, want %d", i, got, w)
				}
			}
			if math.Abs(q.rescale.Slope-c.wantRescale.Slope) > 1e-4 || math.Abs(q.rescale.Intercept-c.wantRescale.Intercept) > 1e-3 {
				t.Errorf("rescale %+v, want %+v", q.rescale, c.wantRescale)
			}
		})
	}
}

func TestEncodeSyntheticRejectsBadInput(t *testing.T) {
	ok := func() SyntheticImage {
		return SyntheticImage{Pixels: gradientFrame(4, 4, 1, 1), Record: GenerationRecord{Mode: ModeText}}
	}
	cases := []struct {
		name    string
		img     func() SyntheticImage
		opts    SyntheticOptions
		wantErr string
	}{
		{"wrong value count", func() SyntheticImage { s := ok(); s.Pixels.F32 = s.Pixels.F32[:5]; return s }, SyntheticOptions{}, "values for"},
		{"two samples", func() SyntheticImage { s := ok(); s.Pixels = gradientFrame(2, 2, 1, 2); return s }, SyntheticOptions{}, "samples per pixel"},
		{"RGB in 16 bits", func() SyntheticImage { s := ok(); s.Pixels = gradientFrame(2, 2, 1, 3); return s }, SyntheticOptions{BitDepth: 16}, "8 bits"},
		{"bit depth 10", ok, SyntheticOptions{BitDepth: 10}, "bit depth"},
		{"no mode", func() SyntheticImage { s := ok(); s.Record.Mode = ""; return s }, SyntheticOptions{}, "mode"},
		{"bad sex", func() SyntheticImage { s := ok(); s.Demographics.Sex = "X"; return s }, SyntheticOptions{}, "sex"},
		{"shift without key", ok, SyntheticOptions{DatePolicy: DatesShift}, "key"},
		{"bad root", ok, SyntheticOptions{UIDRoot: "1.02.3"}, "UID root"},
		{"bad prefix", ok, SyntheticOptions{PatientIDPrefix: `S\N`}, "prefix"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := EncodeSynthetic(c.img(), c.opts)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, c.wantErr)
			}
		})
	}
}

// TestSyntheticEncoding checks the Part 10 structure: file meta, no group lengths in the data
// set, every level in tag order, and the UID root and prefix options.
func TestSyntheticEncoding(t *testing.T) {
	img := SyntheticImage{Pixels: gradientFrame(5, 7, 1, 1), Record: GenerationRecord{Mode: ModeText, Prompt: "névé \\ \"quoted\" 🫁"},
		Demographics: Demographics{Sex: "O", AgeYears: 0.5, AgeKnown: true}}
	res, data, err := EncodeSynthetic(img, SyntheticOptions{UIDRoot: "1.2.3.4", PatientIDPrefix: "TRAIN-", RunID: "r", SoftwareVersion: "9.9"})
	if err != nil {
		t.Fatal(err)
	}
	if string(data[128:132]) != "DICM" {
		t.Fatal("no DICM preamble")
	}
	ds, err := dicom.Parse(bytes.NewReader(data), int64(len(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	var check func(level string, elems []*dicom.Element)
	check = func(level string, elems []*dicom.Element) {
		for i, e := range elems {
			if e.Tag.Element == 0 && e.Tag != tag.FileMetaInformationGroupLength {
				t.Errorf("%s: group length %s written", level, wrTagString(e.Tag))
			}
			if i > 0 {
				p := elems[i-1].Tag
				if p.Group > e.Tag.Group || (p.Group == e.Tag.Group && p.Element >= e.Tag.Element) {
					t.Errorf("%s: %s after %s", level, wrTagString(e.Tag), wrTagString(p))
				}
			}
			if e.Value != nil && e.Value.ValueType() == dicom.Sequences {
				for _, it := range e.Value.GetValue().([]*dicom.SequenceItemValue) {
					check(level+">"+wrTagString(e.Tag), it.GetValue().([]*dicom.Element))
				}
			}
		}
	}
	check("top", ds.Elements)
	for tg, want := range map[tag.Tag]string{
		tag.ImplementationClassUID:    ImplementationClassUID("1.2.3.4"),
		tag.ImplementationVersionName: "AUGMENT9.9",
		tag.TransferSyntaxUID:         ExplicitVRLittleEndian,
		tag.PatientID:                 res.PatientID,
		tag.PatientAge:                "006M",
		tag.PatientSex:                "O",
		tagSyntheticData:              "YES",
		tag.ConversionType:            "SYN",
	} {
		if got := wrFirst(&ds, tg); got != want {
			t.Errorf("%s = %q, want %q", wrTagString(tg), got, want)
		}
	}
	if !strings.HasPrefix(res.PatientID, "TRAIN-") || !strings.HasPrefix(res.SOPInstanceUID, "1.2.3.4.") || !strings.HasPrefix(ImplementationClassUID("1.2.3.4"), "1.2.3.4.") {
		t.Errorf("prefix or root not applied: %s %s", res.PatientID, res.SOPInstanceUID)
	}
	p := provenanceFromDataset(&ds)
	if p.Record == nil || p.Record.Generation.Prompt != img.Record.Prompt {
		t.Errorf("non-ASCII prompt did not survive the private block: %+v (%s)", p.Record, p.RecordError)
	}
	if !bytes.Contains(data, []byte(`n\u00e9v\u00e9`)) {
		t.Error("non-ASCII text is not escaped in the private block")
	}
}

func TestSyntheticDeterministic(t *testing.T) {
	needSynthShared(t)
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	ra := writeFixtures(t, a, "run-same")
	rb := writeFixtures(t, b, "run-same")
	rc := writeFixtures(t, c, "run-other")
	for name := range ra {
		da, _ := os.ReadFile(ra[name].Path)
		db, _ := os.ReadFile(rb[name].Path)
		dc, _ := os.ReadFile(rc[name].Path)
		if len(da) == 0 || !bytes.Equal(da, db) {
			t.Errorf("%s: rerun with the same run id is not byte-identical", name)
		}
		if bytes.Equal(da, dc) || ra[name].SOPInstanceUID == rc[name].SOPInstanceUID {
			t.Errorf("%s: another run id wrote the same file", name)
		}
	}
	entries, _ := os.ReadDir(a)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestSyntheticDatePolicy(t *testing.T) {
	src := &SourceInstance{SOPClassUID: SOPClassSecondaryCapture, SOPInstanceUID: "1.2.3.4.5", StudyInstanceUID: "1.2.3.4", Modality: "OT",
		StudyDate: "20200301", Rows: 4, Columns: 4, Frames: 1, Samples: 1}
	img := SyntheticImage{Pixels: gradientFrame(4, 4, 1, 1), Record: GenerationRecord{Mode: ModeVariation}, Sources: []*SourceInstance{src}}
	studyDate := func(o SyntheticOptions) string {
		_, data, err := EncodeSynthetic(img, o)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := dicom.Parse(bytes.NewReader(data), int64(len(data)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return wrFirst(&ds, tag.StudyDate) + "/" + wrFirst(&ds, tag.ContentDate)
	}
	if got := studyDate(SyntheticOptions{RunID: "r"}); got != "/" {
		t.Errorf("remove policy wrote dates %q", got)
	}
	a := studyDate(SyntheticOptions{RunID: "r", DatePolicy: DatesShift, DateShiftKey: "k1"})
	days := synthDateShiftDays("k1", "r")
	want := synthShiftDate("20200301", days)
	if a != want+"/"+want || want == "20200301" || days < 1 || days > 3650 {
		t.Errorf("shift policy wrote %q, want %s (shift %d days)", a, want, days)
	}
	if b := studyDate(SyntheticOptions{RunID: "r", DatePolicy: DatesShift, DateShiftKey: "k2"}); b == a {
		t.Errorf("another key gave the same shift %q", b)
	}
}

func TestWriteSyntheticCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join(t.TempDir(), "x.dcm")
	if _, err := WriteSynthetic(ctx, path, SyntheticImage{Pixels: gradientFrame(2, 2, 1, 1), Record: GenerationRecord{Mode: ModeText}}, SyntheticOptions{}); err == nil {
		t.Fatal("cancelled context did not stop the write")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file written despite cancellation: %v", err)
	}
}

func TestSyntheticWatermarkHook(t *testing.T) {
	var seen *Image
	mark := func(stored *Image, run string, item int) (WatermarkRecord, error) {
		if run != "wm-run" || item != 3 {
			t.Errorf("hook got run %q item %d, want wm-run 3", run, item)
		}
		seen = stored
		for i := range stored.U16 {
			stored.U16[i] |= 1 // a stand-in embedding: set every least significant bit
		}
		return WatermarkRecord{PayloadID: "payload-42", KeyID: "key-7", PSNRFloor: 42, SSIMFloor: 0.98}, nil
	}
	img := SyntheticImage{Pixels: gradientFrame(8, 8, 1, 1), Record: GenerationRecord{Mode: ModeText}}
	res, data, err := EncodeSynthetic(img, SyntheticOptions{BitDepth: 12, RunID: "wm-run", Item: 3, Watermark: mark})
	if err != nil {
		t.Fatal(err)
	}
	if gen := res.Provenance.Generation; seen == nil || gen.WatermarkPayloadID != "payload-42" || gen.WatermarkKeyID != "key-7" ||
		gen.WatermarkPSNRFloor != 42 || gen.WatermarkSSIMFloor != 0.98 {
		t.Fatalf("watermark ids not recorded: %+v", res.Provenance.Generation)
	}
	_, back, err := ReadBytes(data, "mem.dcm", ReadOptions{}, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range back.U16 {
		if v&1 != 1 || v != res.Stored.U16[i] {
			t.Fatalf("pixel %d = %d: the watermarked values were not written", i, v)
		}
	}
	failing := func(*Image, string, int) (WatermarkRecord, error) { return WatermarkRecord{}, os.ErrInvalid }
	if _, _, err := EncodeSynthetic(img, SyntheticOptions{Watermark: failing}); err == nil {
		t.Error("a failing watermark did not stop the write")
	}
}

func TestSyntheticInterpolationReferencesEverySource(t *testing.T) {
	a := &SourceInstance{SOPClassUID: SOPClassCR, SOPInstanceUID: "1.2.826.0.1.3680043.10.7.1", StudyInstanceUID: "1.2.826.0.1.3680043.10.91", Modality: "CR", Rows: 8, Columns: 8, Frames: 1, Samples: 1}
	b := &SourceInstance{SOPClassUID: SOPClassCR, SOPInstanceUID: "1.2.826.0.1.3680043.10.7.2", StudyInstanceUID: "1.2.826.0.1.3680043.10.92", Modality: "CR", Rows: 8, Columns: 8, Frames: 1, Samples: 1}
	img := SyntheticImage{Pixels: gradientFrame(8, 8, 1, 1), Record: GenerationRecord{Mode: ModeInterpolation, Theta: 0.5}, Sources: []*SourceInstance{a, b}}
	res, data, err := EncodeSynthetic(img, SyntheticOptions{RunID: "interp"})
	if err != nil {
		t.Fatal(err)
	}
	if res.SOPClassUID != SOPClassCR {
		t.Errorf("IOD %s (%s)", res.IOD, res.IODReason)
	}
	for _, s := range []*SourceInstance{a, b} {
		if n := bytes.Count(data, []byte(s.SOPInstanceUID)); n != 1 {
			t.Errorf("source %s appears %d times", s.SOPInstanceUID, n)
		}
		if bytes.Contains(data, []byte(s.StudyInstanceUID)) {
			t.Errorf("source study UID %s leaked", s.StudyInstanceUID)
		}
	}
	ds, err := dicom.Parse(bytes.NewReader(data), int64(len(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := provenanceFromDataset(&ds)
	if len(p.Sources) != 2 || p.Sources[0].SOPInstanceUID != a.SOPInstanceUID || p.Sources[1].SOPInstanceUID != b.SOPInstanceUID {
		t.Errorf("sources %+v", p.Sources)
	}
	if p.Record == nil || p.Record.Sources != 2 || p.Record.Generation.Theta != 0.5 {
		t.Errorf("record %+v", p.Record)
	}
}

func TestContributionText(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  GenerationRecord
		want string
	}{
		{"re-marked, pixels kept", GenerationRecord{Mode: ModeRemark}, "with its pixels unchanged"},
		{"re-marked and watermarked", GenerationRecord{Mode: ModeRemark, WatermarkPayloadID: "00000000aa/v1"}, "changed only by augment's invisible provenance watermark"},
		{"generated", GenerationRecord{Mode: ModeText, PriorKind: "diffusion", Seed: 7}, "Generated by augment unCLIP (text), diffusion prior, seed 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := contributionText(tc.rec); !strings.Contains(got, tc.want) {
				t.Errorf("%q lacks %q", got, tc.want)
			}
		})
	}
}
