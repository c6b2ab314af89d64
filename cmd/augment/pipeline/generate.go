package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/manifests"
	"github.com/medaugment/augment/unclip"
	"github.com/medaugment/augment/watermark"
)

// Mode is what a request asks the model to do.
type Mode string

// The generation modes.
const (
	ModeText          Mode = "text"          // text → image through a prior
	ModeReport        Mode = "report"        // a real study's report and demographics → image
	ModeVariation     Mode = "variation"     // DDIM-inverted variations of a real image
	ModeInterpolation Mode = "interpolation" // slerp between two real images' embeddings
	ModeTextEdit      Mode = "text-edit"     // text diff applied to a real image
)

// Request is one thing to make: Count images of one mode.
type Request struct {
	Mode Mode
	// Caption conditions text, report and text-edit requests (the edit's target).
	Caption string
	// Baseline is the text-edit's starting caption ("" is allowed, as in the paper).
	Baseline string
	// Sources are DICOM files: one for a variation or text edit, two for an interpolation.
	Sources []string
	// Demographics are what the image is conditioned on and what its synthetic patient gets.
	Demographics dicomio.Demographics
	// View and Finding describe the image for the manifest (and the caption).
	View, Finding string
	// Count images (frames for interpolation and text edits); 0 means 1.
	Count int
	// Theta is the largest text-edit angle (0 means 0.5); frames go from 0 to Theta.
	Theta float64
}

// Config is everything a generation run needs besides its requests.
type Config struct {
	Pipeline *unclip.Pipeline
	// BundleName and BundleSHA256 identify the bundle in every output.
	BundleName, BundleSHA256 string
	// OutDir receives the DICOM files (under instances/) and manifest.parquet.
	OutDir string
	// RunID and Seed make the run reproducible: the same pair writes the same UIDs and pixels.
	RunID string
	Seed  uint64
	// Key is the watermark key; every synthetic image is marked with it.
	Key watermark.Key
	// Mark sets the watermark's strength (its invisibility floors; zero: the defaults).
	Mark watermark.Options
	// Writer options: UID root, synthetic patient prefix, bit depth.
	UIDRoot, PatientIDPrefix string
	BitDepth                 int
	SoftwareVersion          string
	// Created stamps the instances (zero leaves creation times out, for byte-identical reruns).
	Created time.Time
	// Sampling overrides (zero: the bundle's defaults).
	PriorSteps, DecoderSteps, UpsamplerSteps int
	DecoderGuidance                          float64
	UseARPrior                               bool
	NoUpsample                               bool
	Eta                                      float64 // variations' DDIM η (0: 0.8)
	// Progress is told about every finished item and every graph evaluation.
	Progress func(Event)
}

// Event reports progress: an item finished (Item ≥ 0, Done) or a sampling step.
type Event struct {
	Item        int
	Done        bool
	Stage       string
	Step, Total int
	Err         error
}

// Item is the outcome of one synthetic image.
type Item struct {
	Row   manifests.GenerationRow
	Err   error
	Image *dicomio.SyntheticResult
}

// Result summarises a run.
type Result struct {
	Items        []Item
	ManifestPath string
	Written      int
	Failed       int
	// EarlierRows counts the rows of other runs that the output folder's manifest already held
	// and still holds: runs written to one folder share its manifest.
	EarlierRows int
	Elapsed     time.Duration
}

// Total is the number of images the requests ask for.
func Total(reqs []Request) int {
	n := 0
	for _, r := range reqs {
		n += max(r.Count, 1)
	}
	return n
}

// Generate runs every request, writes every image, and writes the manifest even when some
// items fail. Its errors start with "generate:". It returns an error only when the run as a whole could not proceed (bad
// configuration, cancelled context, or a manifest that could not be written).
func Generate(ctx context.Context, cfg Config, reqs []Request) (*Result, error) {
	if cfg.Pipeline == nil {
		return nil, errors.New("generate: no model pipeline")
	}
	if cfg.Key.IsZero() {
		return nil, errors.New("generate: no watermark key: every synthetic image must be watermarked")
	}
	if cfg.RunID == "" {
		return nil, errors.New("generate: empty run id")
	}
	start := time.Now()
	instDir := filepath.Join(cfg.OutDir, "instances")
	if err := os.MkdirAll(instDir, 0o755); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	res := &Result{ManifestPath: filepath.Join(cfg.OutDir, "manifest.parquet")}
	// Runs written to one folder share its manifest: the rows of other runs are kept (those of
	// this run id are replaced, as its files are), so that every instance in the folder keeps
	// the row its payload id points at. Read before any work, so that a manifest that cannot be
	// read stops the run instead of being replaced.
	var earlier []manifests.GenerationRow
	if _, err := os.Stat(res.ManifestPath); err == nil {
		prev, err := manifests.ReadGenerations(res.ManifestPath)
		if err != nil {
			return nil, fmt.Errorf("generate: the output folder's manifest cannot be read, and would be replaced: %w", err)
		}
		for _, r := range prev {
			if r.RunID != cfg.RunID {
				earlier = append(earlier, r)
			}
		}
	}
	res.EarlierRows = len(earlier)
	item := 0
	for ri, req := range reqs {
		if ctx.Err() != nil {
			break // the manifest still records what was written
		}
		n := max(req.Count, 1)
		items := runRequest(ctx, cfg, ri, item, req, instDir)
		for _, it := range items[:min(len(items), n)] {
			res.Items = append(res.Items, it)
			if it.Err != nil {
				res.Failed++
			} else {
				res.Written++
			}
			if cfg.Progress != nil {
				cfg.Progress(Event{Item: int(it.Row.Item), Done: true, Err: it.Err})
			}
		}
		item += n
	}
	rows := append(make([]manifests.GenerationRow, 0, len(earlier)+len(res.Items)), earlier...)
	for _, it := range res.Items {
		rows = append(rows, it.Row)
	}
	if err := manifests.WriteGenerations(res.ManifestPath, rows); err != nil {
		return res, fmt.Errorf("generate: %w", err)
	}
	res.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("generate: %w", err)
	}
	return res, nil
}

// requestSeed derives the seed of request ri from the run seed, so that requests are
// independent of each other's number of draws.
func requestSeed(seed uint64, ri int) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(ri))
	h := sha256.Sum256(b[:])
	return binary.LittleEndian.Uint64(h[:8]) >> 1 // fits int64 for the record
}

// PayloadID derives the watermark payload id (watermark.MaxPayloadID bits) of an item from the run id, so that the
// mark in the pixels points at exactly one manifest row.
func PayloadID(runID string, item int) uint64 {
	h := sha256.Sum256([]byte(fmt.Sprintf("augment-payload\x00%s\x00%d", runID, item)))
	return binary.BigEndian.Uint64(h[:8]) & watermark.MaxPayloadID
}

// runRequest makes the images of one request; a failure fails all of its items.
func runRequest(ctx context.Context, cfg Config, ri, first int, req Request, dir string) (items []Item) {
	n := max(req.Count, 1)
	seed := requestSeed(cfg.Seed, ri)
	fail := func(err error) []Item {
		out := make([]Item, n)
		for i := range out {
			out[i] = Item{Row: baseRow(cfg, req, first+i, seed), Err: err}
			out[i].Row.Error = err.Error()
		}
		return out
	}
	defer func() {
		if r := recover(); r != nil {
			items = fail(fmt.Errorf("request %d: internal error: %v", ri, r))
		}
	}()
	images, embeds, rec, sources, err := sample(ctx, cfg, req, n, seed)
	if err != nil {
		return fail(fmt.Errorf("request %d (%s): %w", ri, req.Mode, err))
	}
	for i := 0; i < n; i++ {
		idx := first + i
		row := baseRow(cfg, req, idx, seed)
		it := Item{Row: row}
		r := rec
		if req.Mode == ModeTextEdit && n > 1 {
			r.Theta = theta(req) * float64(i) / float64(n-1)
		}
		img, err := images.Row(i)
		var result *dicomio.SyntheticResult
		var check MarkCheck
		if err == nil {
			result, check, err = writeOne(ctx, cfg, idx, img, r, sources, req, dir)
		}
		for _, s := range sources {
			it.Row.SourceSOPUIDs = append(it.Row.SourceSOPUIDs, s.SOPInstanceUID)
		}
		if err != nil {
			it.Err = err
			it.Row.Error = err.Error()
		} else {
			it.Image = result
			fillRow(&it.Row, result, r)
			it.Row.WatermarkVerified = check.Verified
			it.Row.WatermarkFragile = check.Fragile
			if d := len(embeds) / n; d > 0 {
				it.Row.ImageEmbedding = append([]float32(nil), embeds[i*d:(i+1)*d]...)
			}
		}
		items = append(items, it)
	}
	return items
}

func theta(req Request) float64 {
	if req.Theta > 0 {
		return req.Theta
	}
	return 0.5
}

// sample runs the model for one request and returns [n, C, S, S] images in [-1, 1], the
// image embeddings behind them ([n, D]), the generation record shared by the request's
// images, and the source instances.
func sample(ctx context.Context, cfg Config, req Request, n int, seed uint64) (unclip.Tensor, []float32, dicomio.GenerationRecord, []*dicomio.SourceInstance, error) {
	p := cfg.Pipeline
	noise := unclip.NewSeededNoise(seed)
	rec := dicomio.GenerationRecord{
		Bundle:       cfg.BundleName,
		BundleSHA256: cfg.BundleSHA256,
		Seed:         int64(seed),
	}
	recordSettings(&rec, p, cfg, req.Mode == ModeText || req.Mode == ModeReport)
	progress := func(stage string, step, total int) {
		if cfg.Progress != nil {
			cfg.Progress(Event{Item: -1, Stage: stage, Step: step, Total: total})
		}
	}
	dec := unclip.DiffusionOptions{Steps: cfg.DecoderSteps, GuidanceScale: cfg.DecoderGuidance}
	ups := upsamplerOptions(p, cfg)
	var zero unclip.Tensor
	switch req.Mode {
	case ModeText, ModeReport:
		rec.Mode = dicomio.ModeText
		if req.Mode == ModeReport {
			rec.Mode = dicomio.ModeReportConditioned
			rec.ReportText = req.Caption
		} else {
			rec.Prompt = req.Caption
		}
		if strings.TrimSpace(req.Caption) == "" {
			return zero, nil, rec, nil, errors.New("empty caption")
		}
		useAR := cfg.UseARPrior || !p.HasPrior()
		if useAR && !p.HasARPrior() {
			return zero, nil, rec, nil, errors.New("the bundle has no prior: text-to-image needs a diffusion or AR prior")
		}
		rec.PriorKind = "diffusion"
		if useAR {
			rec.PriorKind = "ar"
		}
		captions := make([]string, n)
		for i := range captions {
			captions[i] = req.Caption
		}
		g, err := p.Generate(ctx, captions, noise, unclip.GenerateOptions{
			UseARPrior: useAR,
			Prior:      unclip.PriorOptions{DiffusionOptions: unclip.DiffusionOptions{Steps: cfg.PriorSteps}},
			Decoder:    dec,
			Upsamplers: ups,
			NoUpsample: cfg.NoUpsample,
			Progress:   progress,
		})
		if err != nil {
			return zero, nil, rec, nil, err
		}
		return g.Images, g.ImageEmbeds, rec, nil, nil
	case ModeVariation:
		rec.Mode = dicomio.ModeVariation
		if len(req.Sources) != 1 {
			return zero, nil, rec, nil, fmt.Errorf("a variation needs exactly one source image, got %d", len(req.Sources))
		}
		src, img, err := loadSource(p, req.Sources[0])
		if err != nil {
			return zero, nil, rec, nil, err
		}
		eta := cfg.Eta
		if eta == 0 {
			eta = 0.8
		}
		rec.Eta = eta
		v, err := p.Vary(ctx, img, n, noise, unclip.VaryOptions{
			Decoder: dec, Eta: unclip.Float(eta), Upsamplers: ups, NoUpsample: cfg.NoUpsample, Progress: progress,
		})
		if err != nil {
			return zero, nil, rec, nil, err
		}
		embeds := make([]float32, 0, n*len(v.ImageEmbed))
		for range n {
			embeds = append(embeds, v.ImageEmbed...)
		}
		return v.Images, embeds, rec, []*dicomio.SourceInstance{src}, nil
	case ModeInterpolation:
		rec.Mode = dicomio.ModeInterpolation
		if len(req.Sources) != 2 {
			return zero, nil, rec, nil, fmt.Errorf("an interpolation needs exactly two source images, got %d", len(req.Sources))
		}
		srcA, a, err := loadSource(p, req.Sources[0])
		if err != nil {
			return zero, nil, rec, nil, err
		}
		srcB, b, err := loadSource(p, req.Sources[1])
		if err != nil {
			return zero, nil, rec, nil, err
		}
		s, err := p.Interpolate(ctx, a, b, max(n, 2), noise, unclip.SequenceOptions{
			Decoder: dec, Upsamplers: ups, NoUpsample: cfg.NoUpsample, Progress: progress,
		})
		if err != nil {
			return zero, nil, rec, nil, err
		}
		return s.Images, s.ImageEmbeds, rec, []*dicomio.SourceInstance{srcA, srcB}, nil
	case ModeTextEdit:
		rec.Mode = dicomio.ModeTextEdit
		rec.Prompt = req.Caption
		if len(req.Sources) != 1 {
			return zero, nil, rec, nil, fmt.Errorf("a text edit needs exactly one source image, got %d", len(req.Sources))
		}
		src, img, err := loadSource(p, req.Sources[0])
		if err != nil {
			return zero, nil, rec, nil, err
		}
		thetas := make([]float64, n)
		for i := range thetas {
			if n > 1 {
				thetas[i] = theta(req) * float64(i) / float64(n-1)
			} else {
				thetas[i] = theta(req)
			}
		}
		s, err := p.TextDiff(ctx, img, req.Caption, req.Baseline, thetas, noise, unclip.SequenceOptions{
			Decoder: dec, Upsamplers: ups, NoUpsample: cfg.NoUpsample, Progress: progress,
		})
		if err != nil {
			return zero, nil, rec, nil, err
		}
		if n == 1 {
			rec.Theta = thetas[0]
		}
		return s.Images, s.ImageEmbeds, rec, []*dicomio.SourceInstance{src}, nil
	default:
		return zero, nil, rec, nil, fmt.Errorf("unknown mode %q", req.Mode)
	}
}

func upsamplerOptions(p *unclip.Pipeline, cfg Config) []unclip.DiffusionOptions {
	if cfg.UpsamplerSteps == 0 {
		return nil
	}
	out := make([]unclip.DiffusionOptions, p.NumUpsamplers())
	for i := range out {
		out[i].Steps = cfg.UpsamplerSteps
	}
	return out
}

// loadSource reads a real DICOM image, keeps what the writer may reference of it, and turns
// its first frame into the model's input [1, C, S, S].
func loadSource(p *unclip.Pipeline, path string) (src *dicomio.SourceInstance, t unclip.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("read %s: internal error: %v", path, r)
		}
	}()
	in, img, err := dicomio.ReadImage(path, dicomio.ReadOptions{})
	if err != nil {
		return nil, t, err
	}
	if strings.EqualFold(in.Modality, "SEG") || img.BitsStored == 1 || img.BitsAllocated == 1 {
		// A label map seen as an image would condition the model on its label values.
		return nil, t, fmt.Errorf("read %s: %w", path, dicomio.ErrLabels)
	}
	if img.Samples != 1 {
		return nil, t, fmt.Errorf("read %s: %d samples per pixel: the model takes greyscale images", path, img.Samples)
	}
	values, _, err := dicomio.ModalityFrame(&in, img, 0)
	if err != nil {
		return nil, t, fmt.Errorf("read %s: %w", path, err)
	}
	v32 := make([]float32, len(values))
	for i, v := range values {
		v32[i] = float32(v)
	}
	var win *unclip.Window
	if len(in.WindowCenter) > 0 && len(in.WindowWidth) > 0 && in.WindowWidth[0] > 0 {
		win = &unclip.Window{Center: in.WindowCenter[0], Width: in.WindowWidth[0]}
	}
	t, err = p.Bundle.Manifest.Image.PreprocessModality(v32, in.Rows, in.Columns, win, strings.EqualFold(in.Photometric, "MONOCHROME1"))
	if err != nil {
		return nil, t, fmt.Errorf("preprocess %s: %w", path, err)
	}
	src, err = dicomio.ReadSourceInstance(path)
	if err != nil {
		return nil, t, err
	}
	return src, t, nil
}

// writeOne quantises, watermarks and writes one image [1, C, S, S] in [-1, 1]; it also
// says whether the watermark's payload reads back from the written values and whether the
// mark is fragile.
func writeOne(ctx context.Context, cfg Config, idx int, img unclip.Tensor, rec dicomio.GenerationRecord,
	sources []*dicomio.SourceInstance, req Request, dir string) (*dicomio.SyntheticResult, MarkCheck, error) {
	var check MarkCheck
	if len(img.Shape) != 4 || img.Shape[1] != 1 {
		return nil, check, fmt.Errorf("item %d: unexpected image shape %v (want [1, 1, S, S])", idx, img.Shape)
	}
	h, w := img.Shape[2], img.Shape[3]
	unit := make([]float32, h*w)
	for i, v := range img.Data[:h*w] {
		unit[i] = float32(math.Min(1, math.Max(0, (float64(v)+1)/2)))
	}
	name := fmt.Sprintf("%s-%05d.dcm", safeName(cfg.RunID), idx)
	path := filepath.Join(dir, name)
	res, err := dicomio.WriteSynthetic(ctx, path, dicomio.SyntheticImage{
		Pixels: &dicomio.Image{
			Rows: h, Columns: w, Frames: 1, Samples: 1,
			BitsAllocated: 32, BitsStored: 32, Photometric: "MONOCHROME2", F32: unit,
		},
		Values:       dicomio.ValuesUnit,
		Record:       rec,
		Sources:      sources,
		Demographics: req.Demographics,
	}, dicomio.SyntheticOptions{
		UIDRoot:         cfg.UIDRoot,
		RunID:           cfg.RunID,
		Item:            idx,
		PatientIDPrefix: cfg.PatientIDPrefix,
		BitDepth:        cfg.BitDepth,
		Created:         cfg.Created,
		SoftwareVersion: cfg.SoftwareVersion,
		Watermark:       watermarkStep(cfg.Key, cfg.Mark, &check),
	})
	if err != nil {
		return nil, check, fmt.Errorf("write %s: %w", path, err)
	}
	res.Path = path
	return res, check, nil
}

func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func baseRow(cfg Config, req Request, idx int, seed uint64) manifests.GenerationRow {
	row := manifests.GenerationRow{
		RunID:        cfg.RunID,
		Item:         int32(idx),
		Mode:         string(req.Mode),
		Caption:      req.Caption,
		Sex:          req.Demographics.Sex,
		ViewPosition: req.View,
		Finding:      req.Finding,
		Bundle:       cfg.BundleName,
		BundleSHA256: cfg.BundleSHA256,
		Seed:         int64(seed),
	}
	if req.Demographics.AgeKnown {
		a := req.Demographics.AgeYears
		row.AgeYears = &a
	}
	return row
}

func fillRow(row *manifests.GenerationRow, res *dicomio.SyntheticResult, rec dicomio.GenerationRecord) {
	row.Path = res.Path
	row.SOPInstanceUID = res.SOPInstanceUID
	row.StudyInstanceUID = res.StudyInstanceUID
	row.SeriesInstanceUID = res.SeriesInstanceUID
	row.SOPClassUID = res.SOPClassUID
	row.PatientID = res.PatientID
	row.Modality = res.Modality
	row.BitsStored = int32(res.BitsStored)
	if res.Stored != nil {
		row.Rows, row.Columns = int32(res.Stored.Rows), int32(res.Stored.Columns)
	}
	row.PriorKind = rec.PriorKind
	row.DecoderSteps = int32(rec.DecoderSteps)
	row.DecoderGuidance = rec.DecoderGuidance
	row.Theta = rec.Theta
	row.Eta = rec.Eta
	row.WatermarkPayload = res.Provenance.Generation.WatermarkPayloadID
	row.WatermarkKeyID = res.Provenance.Generation.WatermarkKeyID
	row.WatermarkPSNRFloor = res.Provenance.Generation.WatermarkPSNRFloor
	row.WatermarkSSIMFloor = res.Provenance.Generation.WatermarkSSIMFloor
}

// recordSettings writes the sampling settings in effect (the overrides, else the bundle's
// defaults) into the record, so that an image says exactly how it was made.
func recordSettings(rec *dicomio.GenerationRecord, p *unclip.Pipeline, cfg Config, usesPrior bool) {
	pick := func(override int, d *unclip.DiffusionSpec) int {
		if override > 0 || d == nil {
			return override
		}
		return d.SamplingSteps
	}
	cs := p.Bundle.Manifest.Components
	if cs.Decoder != nil {
		rec.DecoderSteps = pick(cfg.DecoderSteps, cs.Decoder.Diffusion)
		rec.DecoderGuidance = cfg.DecoderGuidance
		if rec.DecoderGuidance == 0 && cs.Decoder.Diffusion != nil {
			rec.DecoderGuidance = cs.Decoder.Diffusion.GuidanceScale
		}
	}
	if usesPrior && cs.Prior != nil && !cfg.UseARPrior {
		rec.PriorSteps = pick(cfg.PriorSteps, cs.Prior.Diffusion)
		if cs.Prior.Diffusion != nil {
			rec.PriorGuidance = cs.Prior.Diffusion.GuidanceScale
		}
	}
	if !cfg.NoUpsample {
		for i := range cs.Upsamplers {
			rec.UpsamplerSteps = append(rec.UpsamplerSteps, pick(cfg.UpsamplerSteps, cs.Upsamplers[i].Diffusion))
		}
	}
}
