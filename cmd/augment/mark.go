package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medaugment/augment/cmd/augment/pipeline"
	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/watermark"
)

// markDateShiftKeyEnv names the environment variable holding the secret date-shift key.
const markDateShiftKeyEnv = "AUGMENT_DATE_SHIFT_KEY"

func (a *app) markCommand() *cobra.Command {
	var (
		out, runID, root, prefix, dates, iod, tool, created, keyFile string
		strength                                                     watermark.Options
	)
	cmd := &cobra.Command{
		Use:   "mark FILE|DIR... --out DIR",
		Short: "Re-mark images made by other tools as synthetic DICOM (new UIDs, de-identified, provenance tags)",
		Long: `mark writes a copy of each image with the same pixels, marked as synthetic in the standard's
terms: Synthetic Data YES, Image Type DERIVED\SECONDARY, Contributing Equipment (Synthesizing
Equipment), the input referenced in Source Image Sequence, new Study/Series/SOP Instance UIDs
derived from the run id, a synthetic patient, only allow-listed attributes of the input, and
augment's provenance record in a private block. Outputs are named <SOP Instance UID>.dcm.
The same run id writes byte-identical files. Folders are walked; DICOM files without an image
(reports) are skipped. A file that cannot be marked is reported and the others go on; the exit
code is then 2. See docs/synthetic-dicom.md.

--dates shift reads the secret shift key from $` + markDateShiftKeyEnv + `.`,
		Example: `  augment mark gan-output/*.dcm --out marked/ --tool "other-gan 2.1" --run-id batch-7
  augment mark --json --uid-root 1.2.826.0.1.3680043.10.999 --patient-prefix TRAIN- in/ --out marked/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("mark: --out DIR is required")
			}
			if err := checkStrength("mark", strength); err != nil {
				return err
			}
			opts := dicomio.MarkOptions{OutDir: out, Tool: tool, Synthetic: dicomio.SyntheticOptions{
				UIDRoot: root, RunID: runID, PatientIDPrefix: prefix, DatePolicy: dicomio.DatePolicy(dates),
				DateShiftKey: os.Getenv(markDateShiftKeyEnv), IOD: dicomio.IODChoice(iod), SoftwareVersion: version,
			}}
			keyID := ""
			if keyFile != "" || os.Getenv(keyEnv) != "" {
				key, err := loadWatermarkKey(keyFile)
				if err != nil {
					return err
				}
				opts.Synthetic.Watermark, keyID = pipeline.WatermarkHook(key, strength), key.ID()
			}
			if created != "" {
				t, err := time.Parse(time.RFC3339, created)
				if err != nil {
					return usageError("mark: --created: %v", err)
				}
				opts.Synthetic.Created = t
			}
			if err := dicomio.ValidateUIDRoot(root); err != nil {
				return usageError("mark: --uid-root: %v", err)
			}
			if opts.Synthetic.DatePolicy == dicomio.DatesShift && opts.Synthetic.DateShiftKey == "" {
				return usageError("mark: --dates shift needs a secret key in $%s", markDateShiftKeyEnv)
			}
			ctx := cmd.Context()
			var files []string
			if err := dicomio.WalkFiles(ctx, args, func(p string) error { files = append(files, p); return nil }); err != nil {
				return usageError("mark: %v", err)
			}
			if opts.Synthetic.RunID == "" {
				opts.Synthetic.RunID = pipeline.DefaultBatchRunID("mark", keyID, files)
			}
			bar := a.newProgress(len(files), "marking")
			var marked, failed, skipped int
			_, err := dicomio.MarkFiles(ctx, files, opts, func(r dicomio.MarkResult) {
				bar.Add(1)
				switch {
				case r.OK:
					marked++
				case r.Skipped:
					skipped++
				default:
					failed++
				}
				if a.jsonOut {
					_ = a.printJSON(r)
					return
				}
				switch {
				case r.OK:
					if !a.quiet {
						fmt.Fprintf(a.stdout, "marked  %s → %s (%s)%s\n", r.Input, r.Output.Path, r.Output.IOD, repeatsNote(r.Output.RepeatsUIDOf))
					}
				case r.Skipped:
					if !a.quiet {
						fmt.Fprintf(a.stdout, "skipped %s: %s\n", r.Input, skipReason(strings.Contains(r.Error, dicomio.ErrLabels.Error())))
					}
				default:
					fmt.Fprintf(a.stderr, "failed  %s\n", r.Error)
				}
			})
			bar.Finish()
			if err != nil {
				return err
			}
			if !a.jsonOut && !a.quiet {
				fmt.Fprintf(a.stdout, "%d marked, %d skipped, %d failed\n", marked, skipped, failed)
			}
			if failed > 0 {
				return usageError("mark: %d of %d file(s) could not be marked", failed, len(files))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "output folder (created if missing)")
	f.StringVar(&runID, "run-id", "", "run id from which the new UIDs and payload ids are derived; reuse it to rewrite identical files (default: mark-DIGEST, from the key id and the inputs' contents)")
	f.StringVar(&root, "uid-root", "", "root of the new UIDs (default: 2.25 UUID-derived UIDs)")
	f.StringVar(&prefix, "patient-prefix", "SYN-", "prefix of synthetic Patient IDs")
	f.StringVar(&dates, "dates", string(dicomio.DatesRemove), "date policy: remove, or shift (key in $"+markDateShiftKeyEnv+")")
	f.StringVar(&iod, "iod", string(dicomio.IODAuto), "output IOD: auto (keep CR/CT/MR where possible) or secondary-capture")
	f.StringVar(&tool, "tool", "", "name and version of the program that generated the images")
	f.StringVar(&keyFile, "key-file", "", "watermark key file (or $"+keyEnv+"): also embed the provenance watermark; without a key the pixels are kept exactly")
	markStrengthFlags(f, &strength, "")
	f.StringVar(&created, "created", "", "creation time to record (RFC 3339); omitted by default so reruns are byte-identical")
	return cmd
}
