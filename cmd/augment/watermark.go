package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/medaugment/augment/cmd/augment/pipeline"
	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/manifests"
	"github.com/medaugment/augment/watermark"
	"github.com/medaugment/augment/watermark/wmfile"
)

func (a *app) watermarkCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watermark",
		Short: "Embed, verify and stress-test the invisible provenance watermark",
		Long: `The provenance watermark is a keyed, invisible mark in the pixels of 8- to 16-bit greyscale
images that survives what happens to images in real pipelines (JPEG export, rescaling,
cropping, rotation, window/level export) and carries a 40-bit payload id. The key comes from
--key-file or $` + keyEnv + ` and is never printed; outputs name it by its key id.
See docs/watermark.md.`,
		Example: `  augment watermark embed --key-file wm.key scan.png --out marked/
  augment watermark verify --key-file wm.key marked/scan.png
  augment watermark attack --key-file wm.key marked/*.png --out attacked/`,
	}
	cmd.AddCommand(a.watermarkEmbedCommand(), a.watermarkVerifyCommand(), a.watermarkAttackCommand())
	return cmd
}

// expandFiles lists the files of args for the watermark commands: those found in folders
// that are not PNG, TIFF, JPEG or DICOM are left out and counted (inputFiles).
func expandFiles(ctx context.Context, args []string) ([]string, int, error) {
	return inputFiles(ctx, args, wmfile.IsImageFile)
}

// markStrengthFlags adds the flags that set a mark's strength: the invisibility floors it is
// held at (watermark.Options), --psnr and --ssim, or with a prefix (generate's
// --watermark-psnr). Lower floors make a stronger, more robust and less invisible mark.
func markStrengthFlags(fl *pflag.FlagSet, o *watermark.Options, prefix string) {
	fl.Float64Var(&o.PSNR, prefix+"psnr", watermark.DefaultPSNR,
		"lowest PSNR in dB of a marked image against the original, in its display range; lower is stronger and more visible (see docs/watermark.md, Strength)")
	fl.Float64Var(&o.SSIM, prefix+"ssim", watermark.DefaultSSIM,
		"lowest mean SSIM of a marked image against the original, in its display range; lower is stronger and more visible")
}

// checkStrength returns a usage error when the strength flags are out of range. The flags
// default to the floors themselves, so a 0 is the user's (for the package, 0 means the
// default) and is refused like any other value out of range.
func checkStrength(cmdName string, o watermark.Options) error {
	if o.PSNR == 0 || o.SSIM == 0 {
		return usageError("%s: --psnr %g, --ssim %g: a floor of 0 is outside PSNR 20..90 dB and SSIM 0.5..1", cmdName, o.PSNR, o.SSIM)
	}
	if err := o.Validate(); err != nil {
		return usageError("%s: %v", cmdName, err)
	}
	return nil
}

// noteNotImages says how many files found in folders were left out as not images.
func (a *app) noteNotImages(n int) {
	if n > 0 && !a.jsonOut && !a.quiet {
		fmt.Fprintf(a.stdout, "%d file(s) in the folders are not images (PNG, TIFF, JPEG, DICOM) and were left out\n", n)
	}
}

func (a *app) watermarkEmbedCommand() *cobra.Command {
	var keyFile, out, runID string
	var replace bool
	var workers int
	var strength watermark.Options
	cmd := &cobra.Command{
		Use:   "embed --key-file K IN... --out DIR",
		Short: "Embed the watermark (PNG, TIFF, JPEG or DICOM in; PNG, TIFF or DICOM out)",
		Long: `embed writes a marked copy of each image to --out. PNG and TIFF stay PNG and TIFF, JPEG
becomes PNG (re-encoding JPEG would weaken the mark), and DICOM is written as a synthetic
instance (Synthetic Data YES, new UIDs, payload and key ids in augment's provenance record),
every frame of a multi-frame instance carrying its payload; a PNG or TIFF output records the
payload and key ids (a tEXt chunk, the ImageDescription tag). The payload id of file i is
derived from --run-id and i, so the same run id writes the same marks; the default run id is
a digest of the key id and the inputs' contents, so that marking the same files again gives
the same payloads and any other batch other ones. A file whose mark lives
in flat areas at the ends of its value range (an ultrasound's black surround), which JPEG,
blur and brightness changes remove, gets a WARNING ("reliance" in --json). A file that cannot
be marked is reported and the others go on; the exit code is then 2. A file that already
carries this key's mark with a payload that decodes (an image augment generated) is refused:
its payload is the link to its manifest row, and marking it again would replace it
(--replace-mark does so). DICOM files without an image (reports) are skipped.

--psnr and --ssim set the mark's strength: the floors it is held at, in the range a viewer
shows the image in. The defaults (45.05 dB, 0.9915) keep it invisible; lower floors make a
mark that survives more and may be seen (docs/watermark.md, Strength).`,
		Example: `  augment watermark embed --key-file wm.key scans/*.png --out marked/
  AUGMENT_WATERMARK_KEY=... augment watermark embed --json --run-id batch-7 ct/ --out marked/
  augment watermark embed --key-file wm.key --psnr 42 --ssim 0.98 thumbnails/ --out marked/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("watermark embed: --out DIR is required")
			}
			if err := checkStrength("watermark embed", strength); err != nil {
				return err
			}
			key, err := loadWatermarkKey(keyFile)
			if err != nil {
				return err
			}
			files, notImages, err := expandFiles(cmd.Context(), args)
			if err != nil {
				return usageError("watermark embed: %v", err)
			}
			a.noteNotImages(notImages)
			if err := os.MkdirAll(out, 0o755); err != nil {
				return usageError("watermark embed: %v", err)
			}
			if runID == "" {
				runID = pipeline.DefaultBatchRunID("embed", key.ID(), files)
			}
			bar := a.newProgress(len(files), "embedding")
			failed, skipped, weak := 0, 0, 0
			outputs := &dicomio.OutputSet{Ordered: true} // names do not depend on which worker ran first
			work := func(ctx context.Context, i int) (wmfile.Embedded, error) {
				defer outputs.Settle(i)
				if err := ctx.Err(); err != nil {
					return wmfile.Embedded{Input: files[i]}, err
				}
				var check pipeline.MarkCheck
				o := wmfile.EmbedOptions{
					OutDir:  out,
					Mark:    strength,
					Item:    i,
					Outputs: outputs,
					Replace: replace,
					Payload: watermark.Payload{ID: pipeline.PayloadID(runID, i), Version: watermark.PayloadVersion},
					DICOM: dicomio.MarkOptions{Tool: "augment watermark embed", Synthetic: dicomio.SyntheticOptions{
						RunID: runID, SoftwareVersion: version, Watermark: pipeline.CheckedWatermarkHook(key, strength, &check),
					}},
				}
				e, err := wmfile.EmbedFile(ctx, files[i], key, o)
				if err == nil && e.Format == wmfile.DICOM {
					e.Reliance = &watermark.Reliance{RangeEndShare: check.RangeEndShare, Fragile: check.Fragile}
					e.Verified = check.Verified
				}
				return e, err
			}
			emit := func(i int, e wmfile.Embedded, err error) error {
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					return err // interrupted: stop reporting
				}
				f := files[i]
				bar.Add(1)
				if errors.Is(err, dicomio.ErrNotImage) || errors.Is(err, dicomio.ErrLabels) {
					// A structured report or a segmentation beside the images: nothing to mark.
					skipped++
					if a.jsonOut {
						return a.printJSON(map[string]any{"input": f, "skipped": true, "error": err.Error()})
					}
					if !a.quiet {
						fmt.Fprintf(a.stdout, "skipped %s: %s\n", f, skipReason(errors.Is(err, dicomio.ErrLabels)))
					}
					return nil
				}
				if err != nil {
					failed++
					if a.jsonOut {
						return a.printJSON(map[string]string{"input": f, "error": err.Error()})
					}
					fmt.Fprintf(a.stderr, "augment: %v\n", err)
					return nil
				}
				if a.jsonOut {
					return a.printJSON(e)
				}
				if !e.Verified {
					weak++
				}
				fmt.Fprintf(a.stdout, "%s -> %s  payload %s  key %s%s%s%s\n", e.Input, e.Output, e.Payload, e.KeyID,
					repeatsNote(e.RepeatsUIDOf), weakWarning(e.Verified), relianceWarning(e.Reliance))
				return nil
			}
			if err := forEachOrdered(cmd.Context(), len(files), workers, work, emit); err != nil {
				bar.Finish()
				return err
			}
			if err := cmd.Context().Err(); err != nil {
				bar.Finish()
				return err
			}
			bar.Finish()
			if !a.jsonOut && !a.quiet && skipped > 0 {
				fmt.Fprintf(a.stdout, "%d file(s) skipped: DICOM without an image to mark\n", skipped)
			}
			if !a.jsonOut && !a.quiet && weak > 0 {
				fmt.Fprintf(a.stdout, "%d image(s) carry a mark too weak to identify them by their pixels alone (\"verified\": false in --json)\n", weak)
			}
			if failed > 0 {
				return usageError("watermark embed: %d of %d files failed", failed, len(files))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the secret key (else $"+keyEnv+")")
	cmd.Flags().StringVar(&out, "out", "", "output folder")
	cmd.Flags().StringVar(&runID, "run-id", "", "run id from which the payload ids are derived (default: embed-DIGEST, from the key id and the inputs' contents)")
	cmd.Flags().BoolVar(&replace, "replace-mark", false, "mark files that already carry this key's mark, replacing their payload")
	cmd.Flags().IntVar(&workers, "workers", defaultWorkers(), "files marked at once (output and payload ids do not depend on it)")
	markStrengthFlags(cmd.Flags(), &strength, "")
	return cmd
}

// verifiedFile is verify's JSON line: the verdict and, with --manifest, the provenance of the
// manifest row whose payload the file carries.
type verifiedFile struct {
	wmfile.Verdict
	Provenance *manifests.GenerationRow `json:"provenance,omitempty"`
}

func (a *app) watermarkVerifyCommand() *cobra.Command {
	var keyFiles []string
	var manifestPaths []string
	var workers int
	cmd := &cobra.Command{
		Use:   "verify --key-file K FILE...",
		Short: "Detect the watermark: present or absent, payload, corrected errors, false-positive probability",
		Long: `verify looks for the mark in each file (DICOM, PNG, JPEG, TIFF; first frame) and prints
whether it is present, the payload id when the error-correcting code decodes it, the number
of corrected errors and the probability that an unmarked image scores as high.

Exit code 1 flags the dangerous case: a mark is present but the file does not say Synthetic
Data = YES — a synthetic image whose labels were stripped. PNG, JPEG and TIFF files carry no
such tag, so a mark found in one is always reported this way. Unreadable files give exit
code 2 (when nothing is flagged).

With --manifest (a generation manifest, repeatable), a decoded payload is looked up and the
provenance of the matching row is printed: run, item, mode, caption, bundle, seed and the
instance the image was written as.

--key-file may be given several times (the keys of several sites or years): each file is
read with every key, and the false-positive probability is multiplied by their number, so
that an unmarked file is still reported present with probability at most 1e-9. A DICOM file
whose provenance record, or a PNG or TIFF whose record, names one of the keys is read with
that key alone.`,
		Example: `  augment watermark verify --key-file wm.key export/*.png
  augment watermark verify --key-file wm.key --manifest synth/manifest.parquet export/img.png
  augment watermark verify --json --key-file wm.key study/ | jq .result.payload
  augment watermark verify --key-file site-a.key --key-file site-b.key export/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := loadWatermarkKeys(keyFiles)
			if err != nil {
				return err
			}
			files, notImages, err := expandFiles(cmd.Context(), args)
			if err != nil {
				return usageError("watermark verify: %v", err)
			}
			a.noteNotImages(notImages)
			var index manifests.PayloadIndex
			if len(manifestPaths) > 0 {
				if index, err = manifests.IndexPayloads(manifestPaths...); err != nil {
					return usageError("watermark verify: %v", err)
				}
			}
			bar := a.newProgress(len(files), "verifying")
			stripped, failed, present, absent, skipped := 0, 0, 0, 0, 0
			work := func(ctx context.Context, i int) (wmfile.Verdict, error) {
				if err := ctx.Err(); err != nil {
					return wmfile.Verdict{Path: files[i]}, err
				}
				return wmfile.VerifyFile(files[i], keys...), nil
			}
			emit := func(_ int, v wmfile.Verdict, err error) error {
				if err != nil {
					return err
				}
				bar.Add(1)
				switch {
				case v.Error != "":
					failed++
				case v.Skipped:
					skipped++
				case v.Result.Present:
					present++
				default:
					absent++
				}
				if v.TagsStripped {
					stripped++
				}
				out := verifiedFile{Verdict: v}
				if index != nil && v.Result != nil && v.Result.Payload != nil {
					if row, ok := index.Lookup(v.Result.Payload.String()); ok {
						out.Provenance = &row
					}
				}
				if a.jsonOut {
					return a.printJSON(out)
				}
				fmt.Fprintln(a.stdout, verdictLine(v))
				if index != nil && v.Result != nil && v.Result.Payload != nil {
					fmt.Fprintln(a.stdout, "  "+provenanceLine(out.Provenance))
				}
				return nil
			}
			if err := forEachOrdered(cmd.Context(), len(files), workers, work, emit); err != nil {
				bar.Finish()
				return err
			}
			bar.Finish()
			if !a.jsonOut && !a.quiet && len(files) > 1 {
				fmt.Fprintf(a.stdout, "%d file(s): %d with the mark (%d without their Synthetic Data tag), %d without, %d skipped, %d unreadable\n",
					len(files), present, stripped, absent, skipped, failed)
			}
			if stripped > 0 {
				return failCheck("watermark verify: %d file(s) carry the synthetic-image watermark but do not say Synthetic Data = YES (tags stripped)", stripped)
			}
			if failed > 0 {
				return usageError("watermark verify: %d of %d files could not be read", failed, len(files))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyFiles, "key-file", nil, "file holding a secret key (repeatable; else $"+keyEnv+")")
	cmd.Flags().StringArrayVar(&manifestPaths, "manifest", nil, "generation manifest (manifest.parquet) to look decoded payloads up in (repeatable)")
	cmd.Flags().IntVar(&workers, "workers", defaultWorkers(), "files verified at once (output stays in input order)")
	return cmd
}

// loadWatermarkKeys loads every key file given, or the key of $AUGMENT_WATERMARK_KEY when none
// is; two files holding one key count once.
func loadWatermarkKeys(paths []string) ([]watermark.Key, error) {
	if len(paths) == 0 {
		k, err := loadWatermarkKey("")
		return []watermark.Key{k}, err
	}
	var keys []watermark.Key
	seen := map[string]bool{}
	for _, p := range paths {
		k, err := loadWatermarkKey(p)
		if err != nil {
			return nil, err
		}
		if !seen[k.ID()] {
			seen[k.ID()] = true
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// provenanceLine says where a decoded payload came from, per the manifests given.
func provenanceLine(r *manifests.GenerationRow) string {
	if r == nil {
		return "provenance: payload not in the given manifests"
	}
	what := r.Caption
	if len(r.SourceSOPUIDs) > 0 {
		what = fmt.Sprintf("from %d source image(s)", len(r.SourceSOPUIDs))
	}
	s := fmt.Sprintf("provenance: run %s item %d, %s %q, bundle %s, seed %d, written as %s (%s)",
		r.RunID, r.Item, r.Mode, what, r.Bundle, r.Seed, r.SOPInstanceUID, r.Path)
	if r.WatermarkPSNRFloor > 0 {
		s += fmt.Sprintf(", marked at PSNR ≥ %.2f dB and SSIM ≥ %.4f", r.WatermarkPSNRFloor, r.WatermarkSSIMFloor)
	}
	return s
}

// attackedFile is one file's line of attack's report: the attacks whose expectation it broke,
// with the score each left.
type attackedFile struct {
	Input  string   `json:"input"`
	Failed []string `json:"failed"`
	// MarkedHere: the file carried no decodable mark and was marked at --psnr/--ssim first.
	MarkedHere bool `json:"marked_here"`
}

// attackRun is one file's outcomes, whether attack marked it first, and for the first file
// the report's thumbnails.
type attackRun struct {
	outs       []watermark.AttackOutcome
	markedHere bool
	sample     *wmfile.AttackSample
}

// fileError is one file's failure, which the batch reports and goes on from.
type fileError struct{ err error }

func (e fileError) Error() string { return e.err.Error() }
func (e fileError) Unwrap() error { return e.err }

// repeatsNote says that a DICOM input's SOP Instance UID repeats an earlier input's, so that
// its output got a UID of its own rather than replacing that input's output.
func repeatsNote(prev string) string {
	if prev == "" {
		return ""
	}
	return fmt.Sprintf("\n  NOTE: same SOP Instance UID as %s; written under a new UID of its own", prev)
}

// weakWarning says that the payload does not read back from the marked image.
func weakWarning(verified bool) string {
	if verified {
		return ""
	}
	return "\n  WARNING: weak mark: the payload does not read back from the marked image (its texture outweighs a mark this faint); it cannot be traced by its pixels alone (a stronger mark, lower --psnr and --ssim, may be)"
}

// relianceWarning is what embed adds to a file's line when its mark lives mostly in flat
// areas at the ends of the value range.
func relianceWarning(r *watermark.Reliance) string {
	if r == nil || !r.Fragile {
		return ""
	}
	return fmt.Sprintf("  WARNING: fragile mark: it lives mostly in the flat areas at the ends of the value range (%.0f %% of the pixels), which JPEG, blur and brightness changes remove (a stronger mark, lower --psnr and --ssim, puts more of it elsewhere)",
		100*r.RangeEndShare)
}

// verdictLine is the human-readable line for one verified file.
func verdictLine(v wmfile.Verdict) string {
	if v.Skipped {
		return fmt.Sprintf("%s  skipped: DICOM without an image", v.Path)
	}
	if v.Error != "" {
		return fmt.Sprintf("%s  error: %s", v.Path, v.Error)
	}
	note := ""
	if m := v.RecordMismatch(); m != "" {
		note = "\n  NOTE: " + m
	}
	r := v.Result
	if !r.Present {
		return fmt.Sprintf("%s  absent  (score %.1fσ, false-positive probability %.2g, key %s)%s", v.Path, r.Score, r.FalsePositive, r.KeyID, note)
	}
	payload := "payload not decodable"
	if r.Payload != nil {
		payload = fmt.Sprintf("payload %s, %d corrected bits", r.Payload, r.BitErrors)
	}
	where := r.Orientation
	if r.Content != nil {
		where += fmt.Sprintf(", letterboxed (read inside the bands: %d×%d at %d,%d)", r.Content.W, r.Content.H, r.Content.X, r.Content.Y)
	}
	if r.Stretch != 0 {
		where += fmt.Sprintf(", resized to another aspect (x/y scale %.3f)", r.Stretch)
	}
	if r.CoarseScore > r.Score {
		where += fmt.Sprintf(", with the coarse layer %.1fσ", r.CoarseScore)
	}
	line := fmt.Sprintf("%s  PRESENT  %s  (score %.1fσ, false-positive probability %.2g, %s, key %s)",
		v.Path, payload, r.Score, r.FalsePositive, where, r.KeyID)
	if v.TagsStripped {
		tag := "Synthetic Data is " + map[bool]string{true: "absent", false: v.SyntheticData}[v.SyntheticData == ""]
		if v.Format != wmfile.DICOM {
			tag = string(v.Format) + " carries no Synthetic Data tag"
		}
		line += "  WARNING: synthetic image without its labels (" + tag + ")"
	}
	return line + note
}

func (a *app) watermarkAttackCommand() *cobra.Command {
	var keyFile, out, runID string
	var workers int
	var strength watermark.Options
	cmd := &cobra.Command{
		Use:   "attack --key-file K FILE... --out DIR",
		Short: "Run the robustness suite on your own images and print the table",
		Long: `attack applies the robustness suite to each file and detects the mark in every result:
JPEG 90/75/50, rescale ×0.5/×2/×0.25, a resize to 224×224 whatever the aspect (a training
pipeline's input), letterboxing to a square, crops keeping 75 % and 50 % of the area, a
crop keeping 80 % resized to 224×224, Gaussian noise 2 %, blur σ=1 px, brightness and
contrast ±20 %, a window/level 8-bit export, a histogram equalisation to 8 bits, rotations
and flips. A file that carries no decodable mark is marked first: payload from --run-id,
strength from --psnr and --ssim, so that a stronger mark can be tried on your images
before it is used. The attacked images are written to --out as PNG with table.json,
table.md and report.html (a self-contained page: the table, plots of the share of images
kept and of the scores against the thresholds, and the first file's attacked copies); the
table is printed. Exit code 1 when an attack broke its expectation on some image.`,
		Example: `  augment watermark attack --key-file wm.key marked/*.png --out attacked/
  augment watermark attack --json --key-file wm.key ct/ --out attacked/ > table.json
  augment watermark attack --key-file wm.key --psnr 42 --ssim 0.98 scans/ --out attacked-42dB/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("watermark attack: --out DIR is required")
			}
			if err := checkStrength("watermark attack", strength); err != nil {
				return err
			}
			key, err := loadWatermarkKey(keyFile)
			if err != nil {
				return err
			}
			files, notImages, err := expandFiles(cmd.Context(), args)
			if err != nil {
				return usageError("watermark attack: %v", err)
			}
			a.noteNotImages(notImages)
			if err := os.MkdirAll(out, 0o755); err != nil {
				return usageError("watermark attack: %v", err)
			}
			suite := watermark.Suite()
			bar := a.newProgress(len(files)*len(suite), "attacking")
			var runs [][]watermark.AttackOutcome
			failed := 0
			taken := &dicomio.OutputSet{Ordered: true}
			work := func(ctx context.Context, i int) (attackRun, error) {
				defer taken.Settle(i)
				f := files[i]
				rep, err := wmfile.PrepareAttack(f, key, watermark.Payload{ID: pipeline.PayloadID(runID, i), Version: watermark.PayloadVersion}, strength)
				if err != nil {
					return attackRun{}, fileError{err}
				}
				outs, err := watermark.RunSuite(ctx, rep.Marked, key, rep.Payload, suite)
				if err != nil {
					return attackRun{}, err
				}
				err = wmfile.WriteAttacked(out, f, i, taken, outs)
				run := attackRun{outs: outs, markedHere: rep.Embedded}
				if i == 0 {
					run.sample = wmfile.NewAttackSample(f, rep.Marked, outs) // the report's thumbnails
				}
				for k := range outs {
					outs[k].Image = nil // written; the table needs only the results
				}
				if err != nil {
					return run, fileError{err}
				}
				return run, nil
			}
			var perFile []attackedFile
			var sample *wmfile.AttackSample
			markedHere := 0
			emit := func(i int, run attackRun, err error) error {
				outs := run.outs
				if run.sample != nil {
					sample = run.sample
				}
				bar.Add(len(suite))
				var fe fileError
				if err != nil && !errors.As(err, &fe) {
					return err // cancelled
				}
				if err != nil {
					failed++
					fmt.Fprintf(a.stderr, "augment: %v\n", fe.err)
				}
				if outs != nil {
					runs = append(runs, outs)
					af := attackedFile{Input: files[i], Failed: []string{}, MarkedHere: run.markedHere}
					if run.markedHere {
						markedHere++
					}
					for _, o := range outs {
						if !o.Passed {
							af.Failed = append(af.Failed, fmt.Sprintf("%s (%.1fσ)", o.Attack, o.Result.Score))
						}
					}
					perFile = append(perFile, af)
				}
				return nil
			}
			if err := forEachOrdered(cmd.Context(), len(files), workers, work, emit); err != nil {
				bar.Finish()
				return err
			}
			bar.Finish()
			rows := watermark.Summarize(runs)
			if err := wmfile.WriteTable(out, rows); err != nil {
				return usageError("watermark attack: %v", err)
			}
			report, floors := filepath.Join(out, "report.html"), strength.WithDefaults()
			if err := wmfile.WriteAttackReport(out, wmfile.AttackReport{KeyID: key.ID(), Runs: runs, MarkedHere: markedHere, Floors: strength, Sample: sample}); err != nil {
				return usageError("watermark attack: %v", err)
			}
			if a.jsonOut {
				doc := map[string]any{"key_id": key.ID(), "images": len(runs), "rows": rows, "files": perFile, "marked_here": markedHere, "report": report}
				if markedHere > 0 {
					doc["psnr_floor"], doc["ssim_floor"] = floors.PSNR, floors.SSIM
				}
				if err := a.printJSON(doc); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stdout, "%d image(s), key %s", len(runs), key.ID())
				if markedHere > 0 {
					fmt.Fprintf(a.stdout, "; %d carried no mark and were marked here at PSNR ≥ %.2f dB and SSIM ≥ %.4f", markedHere, floors.PSNR, floors.SSIM)
				}
				fmt.Fprintf(a.stdout, "\n\n%s", watermark.FormatTable(rows))
				fmt.Fprintf(a.stdout, "\nreport: %s (table.md and table.json beside it)\n", report)
				if !a.quiet {
					fmt.Fprintln(a.stdout)
					for _, af := range perFile {
						if len(af.Failed) > 0 {
							fmt.Fprintf(a.stdout, "%s: failed %s\n", af.Input, strings.Join(af.Failed, ", "))
						}
					}
				}
			}
			for _, r := range rows {
				if r.Passed < r.Images {
					return failCheck("watermark attack: some attacks broke their expectation (see the table)")
				}
			}
			if failed > 0 {
				return usageError("watermark attack: %d of %d files failed", failed, len(files))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the secret key (else $"+keyEnv+")")
	cmd.Flags().StringVar(&out, "out", "", "output folder for attacked images and the table")
	cmd.Flags().StringVar(&runID, "run-id", "watermark-attack", "run id for the payload of files that carry no mark yet")
	cmd.Flags().IntVar(&workers, "workers", defaultWorkers(), "files attacked at once")
	markStrengthFlags(cmd.Flags(), &strength, "")
	return cmd
}
