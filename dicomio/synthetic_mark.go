package dicomio

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// MarkOptions control augment mark: re-marking images made by other tools as synthetic.
type MarkOptions struct {
	// OutDir receives one file per input, named <new SOP Instance UID>.dcm.
	OutDir string
	// Synthetic holds the UID root, run id, patient ID prefix, date policy, IOD choice,
	// creation time, software version and watermark hook. Item, the keys, the bit depth and
	// the instance number are set per file.
	Synthetic SyntheticOptions
	// Tool names the program that generated the images, recorded in the provenance record.
	Tool string
	// Read bounds the input files.
	Read ReadOptions
	// Outputs, when set, holds the batch's outputs: an input whose source SOP Instance UID an
	// earlier input of the batch had (so that both would get the same new UID and file name)
	// gets a new UID of its own, keyed by its item too, and its result says which input it
	// repeats (SyntheticResult.RepeatsUIDOf).
	Outputs *OutputSet
}

// ErrLabels is wrapped by MarkFile's error when the input is a segmentation or a 1-bit image:
// its values are labels, which a synthetic grey image would strip of their meaning (segments,
// referenced series) and a watermark would change. MarkFiles reports such files as skipped.
var ErrLabels = errors.New("a segmentation or 1-bit image: its values are labels, not intensities")

// sopClassSegmentation is Segmentation Storage.
const sopClassSegmentation = "1.2.840.10008.5.1.4.1.1.66.4"

// ErrNotImage is wrapped by MarkFile's error when the input is DICOM but holds no image (a
// structured report, for example); MarkFiles reports such files as skipped.
var ErrNotImage = errors.New("not an image (no pixel data)")

// MarkResult is the outcome for one input file.
type MarkResult struct {
	Input   string           `json:"input"`
	OK      bool             `json:"ok"`
	Skipped bool             `json:"skipped,omitempty"`
	Error   string           `json:"error,omitempty"`
	Output  *SyntheticResult `json:"output,omitempty"`
}

// MarkFile re-marks the image at path as synthetic: same pixels, new UIDs, a synthetic patient,
// the source attributes of the allow-list only, the source referenced in Source Image Sequence,
// and the synthetic-provenance tags. item numbers the file within the run.
func MarkFile(ctx context.Context, path string, item int, opts MarkOptions) (*SyntheticResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mark %s: %w", path, err)
	}
	if opts.OutDir == "" {
		return nil, fmt.Errorf("mark %s: no output folder", path)
	}
	if opts.Outputs != nil {
		defer opts.Outputs.Settle(item) // whatever happens below, the items after this one go on
	}
	src, err := ReadSourceInstance(path)
	if err != nil {
		return nil, fmt.Errorf("mark %s: %w", path, err)
	}
	if src.Rows == 0 || src.Columns == 0 {
		return nil, fmt.Errorf("mark %s: %w", path, ErrNotImage)
	}
	in, img, err := ReadImage(path, opts.Read)
	if errors.Is(err, ErrNoPixelData) {
		// Image attributes without Pixel Data (some character-set test files, a header kept
		// without its image): nothing to re-mark.
		return nil, fmt.Errorf("mark %s: %w", path, ErrNotImage)
	}
	if err != nil {
		return nil, fmt.Errorf("mark %s: %w", path, err)
	}
	if img == nil {
		return nil, fmt.Errorf("mark %s: %w", path, ErrNotImage)
	}
	si, bits, err := markPixels(in, img)
	if err != nil {
		return nil, fmt.Errorf("mark %s: %w", path, err)
	}
	si.Record = GenerationRecord{Mode: ModeRemark, Tool: opts.Tool}
	si.Sources = []*SourceInstance{src}
	si.Demographics = Demographics{Sex: in.Demographics.Sex, AgeYears: in.Demographics.AgeYears, AgeKnown: in.Demographics.AgeKnown}
	switch si.Demographics.Sex {
	case "M", "F", "O":
	default:
		si.Demographics.Sex = ""
	}

	o := opts.Synthetic
	o.Item = item
	o.BitDepth = bits
	// Keys are the source UIDs (high-entropy, hashed with the run id): a series stays a series
	// and a study a study. The synthetic patient is keyed by the study, not by the source's
	// Patient ID, whose few possible values could be guessed back from the hash.
	o.StudyKey, o.SeriesKey, o.InstanceKey, o.PatientKey = src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID, src.StudyInstanceUID
	if o.StudyKey == "" {
		o.StudyKey = src.SOPInstanceUID
	}
	if o.SeriesKey == "" {
		o.SeriesKey = o.StudyKey
	}
	o.PatientKey = o.StudyKey
	if src.InstanceNumber > 0 {
		o.InstanceNumber = src.InstanceNumber
	}
	root := o.UIDRoot // as EncodeSynthetic derives the UIDs
	if root == "" {
		root = UUIDRoot
	}
	out := filepath.Join(opts.OutDir, DeriveUID(root, o.RunID, UIDInstance, o.InstanceKey)+".dcm")
	var repeats string
	if opts.Outputs != nil {
		if prev, ok := opts.Outputs.Claim(item, out, path); !ok {
			repeats = prev
			o.InstanceKey = fmt.Sprintf("%s#item-%d", o.InstanceKey, item)
			out = filepath.Join(opts.OutDir, DeriveUID(root, o.RunID, UIDInstance, o.InstanceKey)+".dcm")
			if prev, ok := opts.Outputs.Claim(item, out, path); !ok {
				return nil, fmt.Errorf("mark %s: output %s is already written from %s", path, out, prev)
			}
		}
		opts.Outputs.Settle(item) // named: the next items may claim while this one is encoded
	}
	if err := NotInput(out, path); err != nil {
		return nil, fmt.Errorf("mark %s: %w", path, err)
	}
	res, data, err := EncodeSynthetic(si, o)
	if err != nil {
		return nil, fmt.Errorf("mark %s: %w", path, err)
	}
	if got := filepath.Join(opts.OutDir, res.SOPInstanceUID+".dcm"); got != out {
		return nil, fmt.Errorf("mark %s: internal error: output named %s, expected %s", path, got, out)
	}
	if err := WriteFileAtomic(out, data); err != nil {
		return nil, fmt.Errorf("mark %s: %w", path, err)
	}
	res.Path, res.RepeatsUIDOf = out, repeats
	return res, nil
}

// MarkFiles marks every file in paths; a bad file is reported in its result and the others go
// on; a DICOM file without an image, and a segmentation, is skipped. done, when set, is
// called after each file. It stops early only when ctx is cancelled.
func MarkFiles(ctx context.Context, paths []string, opts MarkOptions, done func(MarkResult)) ([]MarkResult, error) {
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("mark: output folder: %w", err)
	}
	if opts.Outputs == nil {
		opts.Outputs = new(OutputSet)
	}
	results := make([]MarkResult, 0, len(paths))
	for i, p := range paths {
		if err := ctx.Err(); err != nil {
			return results, fmt.Errorf("mark: %w", err)
		}
		r := MarkResult{Input: p}
		res, err := MarkFile(ctx, p, i, opts)
		if err != nil {
			r.Error, r.Skipped = err.Error(), errors.Is(err, ErrNotImage) || errors.Is(err, ErrLabels)
		} else {
			r.OK, r.Output = true, res
		}
		results = append(results, r)
		if done != nil {
			done(r)
		}
	}
	return results, nil
}

// markPixels turns the decoded stored values of a source into a SyntheticImage with the same
// values and Modality LUT, and picks the bit depth that holds them.
func markPixels(in Instance, img *Image) (SyntheticImage, int, error) {
	// A segmentation's values are labels: as a synthetic grey image it would lose its meaning
	// (segments, referenced series) and a watermark would change its labels.
	if in.SOPClassUID == sopClassSegmentation || strings.EqualFold(in.Modality, "SEG") || img.BitsStored == 1 || img.BitsAllocated == 1 {
		return SyntheticImage{}, 0, ErrLabels
	}
	photometric := strings.ToUpper(img.Photometric)
	samples := max(img.Samples, 1)
	switch {
	case samples == 1 && (photometric == "MONOCHROME1" || photometric == "MONOCHROME2"):
	case samples == 3 && photometric == "RGB":
	default:
		return SyntheticImage{}, 0, fmt.Errorf("photometric interpretation %s with %d samples cannot be re-marked (grey or RGB only)", photometric, samples)
	}
	if len(img.F32) > 0 || len(img.F64) > 0 || len(img.U32) > 0 || len(img.I32) > 0 {
		return SyntheticImage{}, 0, fmt.Errorf("float or 32-bit pixel data cannot be re-marked")
	}
	bits := 16
	switch {
	case len(img.U8) > 0 || len(img.I8) > 0:
		bits = 8
	case samples == 3:
		return SyntheticImage{}, 0, fmt.Errorf("16-bit RGB cannot be re-marked (RGB is written with 8 bits)")
	case img.BitsStored > 0 && img.BitsStored <= 12 && valueSpan(img) <= 4095:
		// Some files hold values their Bits Stored cannot (a 12-bit CT with -2048 … 4095):
		// those keep 16 bits rather than being refused.
		bits = 12
	}
	si := SyntheticImage{Pixels: img}
	if samples == 1 {
		slope := in.RescaleSlope
		if slope == 0 {
			slope = 1
		}
		si.Rescale = &Rescale{Slope: slope, Intercept: in.RescaleIntercept}
		if len(in.WindowCenter) > 0 && len(in.WindowWidth) > 0 && in.WindowWidth[0] > 0 {
			si.Window = &Window{Center: in.WindowCenter[0], Width: in.WindowWidth[0]}
		}
	}
	return si, bits, nil
}

// valueSpan is the largest minus the smallest of img's 16-bit integer values.
func valueSpan(img *Image) int {
	lo, hi := math.MaxInt, math.MinInt
	for _, v := range img.U16 {
		lo, hi = min(lo, int(v)), max(hi, int(v))
	}
	for _, v := range img.I16 {
		lo, hi = min(lo, int(v)), max(hi, int(v))
	}
	if hi < lo {
		return 0
	}
	return hi - lo
}
