package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/medaugment/augment/cmd/augment/pipeline"
	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/unclip"
	"github.com/medaugment/augment/watermark"
	"github.com/spf13/cobra"
)

// keyEnv names the environment variable that may hold the watermark key.
const keyEnv = "AUGMENT_WATERMARK_KEY"

type generateFlags struct {
	bundleDir    string
	ortLib       string
	out          string
	prompts      []string
	fromReports  []string
	vary         []string
	interpolate  []string
	edit         string
	editCaption  string
	editBaseline string
	theta        float64
	count        int
	limit        int
	seed         uint64
	runID        string
	keyFile      string
	sex          string
	age          float64
	uidRoot      string
	prefix       string
	bitDepth     int
	priorSteps   int
	steps        int
	upSteps      int
	guidance     float64
	eta          float64
	arPrior      bool
	noUpsample   bool
	threads      int
	preview      string
	mark         watermark.Options
}

func (a *app) generateCommand() *cobra.Command {
	var f generateFlags
	cmd := &cobra.Command{
		Use:   "generate --out DIR [--prompt TEXT]... [--from-reports PATH]... [--vary FILE]...",
		Short: "Generate watermarked synthetic DICOM images with an unCLIP bundle",
		Long: `generate samples synthetic images with the unCLIP stack and writes each one as a DICOM
instance marked as synthetic (Synthetic Data = YES, Contributing Equipment, de-identified
synthetic patient) with an invisible provenance watermark in its pixels, plus a Parquet
manifest (OUT/manifest.parquet) with one row per image.

Requests: --prompt (text → image), --from-reports (one image per real image of the scanned
studies, conditioned on its report, view, sex and age), --vary (variations of a real image by
DDIM inversion), --interpolate A,B (slerp between two images), --edit FILE --caption TEXT
(a text diff applied to a real image). The embedded bundle is used unless --bundle is given.
The watermark key comes from --key-file or $` + keyEnv + `; --watermark-psnr and
--watermark-ssim set the mark's strength (docs/watermark.md, Strength).`,
		Example: `  augment generate --key-file wm.key --out synth --prompt "PA chest radiograph, female, 60-69 years, COVID-19." --count 4
  augment generate --key-file wm.key --out synth --from-reports ../data/cxr/val --limit 20
  augment generate --key-file wm.key --out synth --vary study/CR01.dcm --count 3 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runGenerate(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.bundleDir, "bundle", "", "model bundle folder (default: $"+bundleEnv+", else the embedded cxr-tiny bundle)")
	fl.StringVar(&f.ortLib, "ort-lib", "", "ONNX Runtime shared library (default: $"+unclip.ORTLibEnv+", the copy make setup fetches, system paths)")
	fl.StringVarP(&f.out, "out", "o", "", "output folder (required)")
	fl.StringArrayVarP(&f.prompts, "prompt", "p", nil, "caption to generate from (repeatable)")
	fl.StringArrayVar(&f.fromReports, "from-reports", nil, "folder of real studies: generate from each image's report and demographics (repeatable)")
	fl.StringArrayVar(&f.vary, "vary", nil, "DICOM image to make variations of (repeatable)")
	fl.StringArrayVar(&f.interpolate, "interpolate", nil, "two DICOM images A,B to interpolate between (repeatable)")
	fl.StringVar(&f.edit, "edit", "", "DICOM image to edit with a text diff (needs --caption)")
	fl.StringVar(&f.editCaption, "caption", "", "target caption of --edit")
	fl.StringVar(&f.editBaseline, "baseline", "", "baseline caption of --edit (default empty)")
	fl.Float64Var(&f.theta, "theta", 0.5, "largest text-edit angle (frames go from 0 to it)")
	fl.IntVarP(&f.count, "count", "n", 1, "images per request (frames for --interpolate and --edit)")
	fl.IntVar(&f.limit, "limit", 0, "with --from-reports, use at most this many source images (0: all)")
	fl.Uint64Var(&f.seed, "seed", 1, "random seed; with the same run id, a rerun writes identical files")
	fl.StringVar(&f.runID, "run-id", "", "run id (default: run-SEED-DIGEST, DIGEST from the bundle, key id, settings and requests); names files and derives UIDs and payload ids")
	fl.StringVar(&f.keyFile, "key-file", "", "watermark key file (or set $"+keyEnv+")")
	fl.StringVar(&f.sex, "sex", "", "conditioned sex of --prompt images (M, F, O), written to the synthetic patient")
	fl.Float64Var(&f.age, "age", -1, "conditioned age in years of --prompt images, written to the synthetic patient")
	fl.StringVar(&f.uidRoot, "uid-root", "", "root of new UIDs (default 2.25, UUID-derived)")
	fl.StringVar(&f.prefix, "patient-prefix", "SYN-", "prefix of synthetic Patient IDs")
	fl.IntVar(&f.bitDepth, "bit-depth", 0, "stored bits: 8, 12 or 16 (default 16)")
	fl.IntVar(&f.priorSteps, "prior-steps", 0, "diffusion prior sampling steps (default: the bundle's)")
	fl.IntVar(&f.steps, "steps", 0, "decoder sampling steps (default: the bundle's)")
	fl.IntVar(&f.upSteps, "upsampler-steps", 0, "upsampler sampling steps (default: the bundle's)")
	fl.Float64Var(&f.guidance, "guidance", 0, "decoder classifier-free guidance scale (default: the bundle's)")
	fl.Float64Var(&f.eta, "eta", 0, "DDIM η of variations (default 0.8; 0 reconstructs)")
	fl.BoolVar(&f.arPrior, "ar-prior", false, "use the autoregressive prior instead of the diffusion prior")
	fl.BoolVar(&f.noUpsample, "no-upsample", false, "stop at the decoder's resolution")
	fl.IntVar(&f.threads, "threads", 0, "ONNX Runtime intra-op threads (default: all cores)")
	fl.StringVar(&f.preview, "preview", "", "also write a PNG contact sheet of the images to this path")
	markStrengthFlags(fl, &f.mark, "watermark-")
	return cmd
}

// generateSummary is the --json summary line.
type generateSummary struct {
	Out      string `json:"out"`
	Manifest string `json:"manifest"`
	// EarlierRows counts the manifest's rows from earlier runs into the same folder.
	EarlierRows int    `json:"manifest_earlier_rows"`
	Bundle      string `json:"bundle"`
	RunID       string `json:"run_id"`
	KeyID       string `json:"watermark_key_id"`
	Written     int    `json:"written"`
	Failed      int    `json:"failed"`
	// WeakMarks counts written images whose watermark payload did not read back from their
	// pixels (watermark_verified = false in the manifest).
	WeakMarks int `json:"weak_watermarks"`
	// FragileMarks counts written images whose watermark lives in flat areas at the ends of
	// the value range (watermark_fragile = true in the manifest).
	FragileMarks int     `json:"fragile_watermarks"`
	Seconds      float64 `json:"seconds"`
}

func (a *app) runGenerate(cmd *cobra.Command, f generateFlags) error {
	ctx := cmd.Context()
	if f.out == "" {
		return usageError("generate: --out is required")
	}
	if err := checkStrength("generate", f.mark); err != nil {
		return err
	}
	key, err := loadWatermarkKey(f.keyFile)
	if err != nil {
		return err
	}
	sex, err := pipeline.ParseSex(f.sex)
	if err != nil {
		return usageError("generate: %v", err)
	}
	reqs, err := a.generateRequests(cmd, f, sex)
	if err != nil {
		return err
	}
	if len(reqs) == 0 {
		return usageError("generate: nothing to do: give --prompt, --from-reports, --vary, --interpolate or --edit")
	}

	bundle, err := openBundle(f.bundleDir)
	if err != nil {
		return usageError("generate: %v", err)
	}
	manifest, err := bundle.ReadFile(unclip.ManifestName)
	if err != nil {
		return usageError("generate: %v", err)
	}
	sum := sha256.Sum256(manifest)
	threads := f.threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p, err := unclip.Open(bundle, unclip.RuntimeOptions{Library: f.ortLib, IntraOpThreads: threads})
	if err != nil {
		return usageError("generate: %v", err)
	}
	defer p.Close()

	bar := a.newProgress(pipeline.Total(reqs), "generating")
	defer bar.Finish()
	cfg := pipeline.Config{
		Pipeline:        p,
		BundleName:      bundle.Manifest.Name,
		BundleSHA256:    hex.EncodeToString(sum[:]),
		OutDir:          f.out,
		RunID:           f.runID,
		Seed:            f.seed,
		Key:             key,
		Mark:            f.mark,
		UIDRoot:         f.uidRoot,
		PatientIDPrefix: f.prefix,
		BitDepth:        f.bitDepth,
		SoftwareVersion: version,
		PriorSteps:      f.priorSteps,
		DecoderSteps:    f.steps,
		UpsamplerSteps:  f.upSteps,
		DecoderGuidance: f.guidance,
		UseARPrior:      f.arPrior,
		NoUpsample:      f.noUpsample,
		Eta:             f.eta,
		Progress: func(e pipeline.Event) {
			if e.Done {
				bar.Add(1)
			} else if e.Stage != "" {
				bar.Describe(fmt.Sprintf("%-12s %3d/%d", e.Stage, e.Step, e.Total))
			}
		},
	}
	if cfg.RunID == "" {
		if cfg.RunID, err = pipeline.DefaultRunID(cfg, reqs); err != nil {
			return usageError("generate: %v", err)
		}
	}
	runID := cfg.RunID
	res, err := pipeline.Generate(ctx, cfg, reqs)
	bar.Finish()
	if res != nil {
		for _, it := range res.Items {
			if a.jsonOut {
				if perr := a.printJSON(it.Row); perr != nil {
					return perr
				}
			} else if it.Err != nil {
				fmt.Fprintf(a.stderr, "item %d: %v\n", it.Row.Item, it.Err)
			}
		}
	}
	if err != nil {
		return err // it says "generate:"
	}
	if f.preview != "" && res.Written > 0 {
		if err := pipeline.WritePreview(f.preview, res.Items, 8, 128); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	s := generateSummary{Out: f.out, Manifest: res.ManifestPath, Bundle: bundle.Manifest.Name, RunID: runID,
		KeyID: key.ID(), Written: res.Written, Failed: res.Failed, Seconds: res.Elapsed.Seconds(), EarlierRows: res.EarlierRows}
	for _, it := range res.Items {
		if it.Err == nil && !it.Row.WatermarkVerified {
			s.WeakMarks++
		}
		if it.Err == nil && it.Row.WatermarkFragile {
			s.FragileMarks++
		}
	}
	if a.jsonOut {
		if err := a.printJSON(map[string]any{"summary": s}); err != nil {
			return err
		}
	} else if !a.quiet {
		earlier := ""
		if s.EarlierRows > 0 {
			earlier = fmt.Sprintf(" (also keeps %d row(s) of earlier runs into this folder)", s.EarlierRows)
		}
		fmt.Fprintf(a.stdout, "wrote %d synthetic instances (%d failed) to %s in %.1fs\nmanifest: %s%s\nbundle: %s, run id: %s, watermark key id: %s\n",
			s.Written, s.Failed, f.out, s.Seconds, s.Manifest, earlier, s.Bundle, s.RunID, s.KeyID)
		if s.WeakMarks > 0 {
			fmt.Fprintf(a.stdout, "%d image(s) carry a watermark too weak to identify them by their pixels alone (watermark_verified = false in the manifest; their DICOM tags still say synthetic; --watermark-psnr and --watermark-ssim make a stronger mark)\n", s.WeakMarks)
		}
		if s.FragileMarks > 0 {
			fmt.Fprintf(a.stdout, "%d image(s) carry a fragile watermark: it lives in flat areas at the ends of the value range, which JPEG, blur and brightness changes remove (watermark_fragile = true in the manifest; --watermark-psnr and --watermark-ssim make a stronger mark)\n", s.FragileMarks)
		}
	}
	if res.Written == 0 {
		return usageError("generate: no image was written")
	}
	return nil
}

// generateRequests turns the flags into requests; a source that cannot be scanned is a
// usage error only when no request remains.
func (a *app) generateRequests(cmd *cobra.Command, f generateFlags, sex string) ([]pipeline.Request, error) {
	if f.count < 1 {
		return nil, usageError("generate: --count %d: give at least 1", f.count)
	}
	for _, p := range f.prompts {
		if strings.TrimSpace(p) == "" {
			return nil, usageError("generate: --prompt is empty")
		}
	}
	var reqs []pipeline.Request
	demo := dicomio.Demographics{Sex: sex}
	if f.age >= 0 && cmd.Flags().Changed("age") {
		demo.AgeYears, demo.AgeKnown = f.age, true
	}
	for _, p := range f.prompts {
		reqs = append(reqs, pipeline.Request{Mode: pipeline.ModeText, Caption: p, Demographics: demo, Count: f.count})
	}
	if len(f.fromReports) > 0 {
		sources, bad, err := pipeline.ScanSources(cmd.Context(), f.fromReports)
		if err != nil {
			return nil, usageError("generate: scan %s: %v", strings.Join(f.fromReports, ", "), err)
		}
		for _, e := range bad {
			a.logger.Warn("skipped unreadable file", "error", e)
		}
		if len(sources) == 0 {
			return nil, usageError("generate: no greyscale image found in %s", strings.Join(f.fromReports, ", "))
		}
		reqs = append(reqs, pipeline.ReportRequests(sources, f.count, f.limit)...)
	}
	for _, v := range f.vary {
		reqs = append(reqs, pipeline.Request{Mode: pipeline.ModeVariation, Sources: []string{v}, Count: f.count})
	}
	for _, pair := range f.interpolate {
		ab := strings.Split(pair, ",")
		if len(ab) != 2 || ab[0] == "" || ab[1] == "" {
			return nil, usageError("generate: --interpolate %q: want two files A,B", pair)
		}
		reqs = append(reqs, pipeline.Request{Mode: pipeline.ModeInterpolation, Sources: ab, Count: max(f.count, 2)})
	}
	if f.edit != "" {
		if f.editCaption == "" {
			return nil, usageError("generate: --edit needs --caption")
		}
		reqs = append(reqs, pipeline.Request{Mode: pipeline.ModeTextEdit, Sources: []string{f.edit},
			Caption: f.editCaption, Baseline: f.editBaseline, Theta: f.theta, Count: f.count})
	}
	return reqs, nil
}

// loadWatermarkKey reads the key from a file, else from the environment.
func loadWatermarkKey(path string) (watermark.Key, error) {
	if path != "" {
		k, err := watermark.LoadKey(path)
		if err != nil {
			return k, usageError("watermark key: %v", err)
		}
		return k, nil
	}
	if os.Getenv(keyEnv) != "" {
		k, err := watermark.KeyFromEnv(keyEnv)
		if err != nil {
			return k, usageError("watermark key: %v", err)
		}
		return k, nil
	}
	return watermark.Key{}, usageError("no watermark key: pass --key-file or set $%s (every synthetic image is watermarked)", keyEnv)
}
