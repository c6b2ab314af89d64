package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/medaugment/augment/dicomio"
	"github.com/spf13/cobra"
)

func (a *app) inspectCommand() *cobra.Command {
	var requireMarked bool
	cmd := &cobra.Command{
		Use:   "inspect FILE|DIR...",
		Short: "Show the synthetic-provenance view of DICOM files: marked or not, by what, from what, with which settings",
		Long: `inspect reads the attributes that say whether an instance is synthetic — Synthetic Data
(0008,001C), Image Type, Derivation, Contributing Equipment, Source Image Sequence,
de-identification — and augment's provenance record from its private block, if present.
Folders are walked: every DICOM file in them is inspected (other files are left out and
counted). With --require-marked the exit code is 1 when any file is not marked synthetic: a
gate for a release folder of synthetic images.`,
		Example: `  augment inspect out/1.dcm
  augment inspect --json marked/ | jq 'select(.marked | not) | .path'
  augment inspect --require-marked --quiet release/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, notDICOM, err := inputFiles(cmd.Context(), args, dicomio.IsDICOMFile)
			if err != nil {
				return usageError("inspect: %v", err)
			}
			if notDICOM > 0 && !a.quiet && !a.jsonOut {
				fmt.Fprintf(a.stdout, "%d file(s) in the folders are not DICOM and were left out\n", notDICOM)
			}
			var unreadable, unmarked int
			for _, path := range files {
				if err := cmd.Context().Err(); err != nil {
					return err
				}
				p, err := dicomio.InspectProvenance(path)
				if err != nil {
					unreadable++
					fmt.Fprintln(a.stderr, err)
					continue
				}
				if !p.Marked {
					unmarked++
				}
				switch {
				case a.jsonOut:
					if err := a.printJSON(p); err != nil {
						return err
					}
				case !a.quiet:
					printProvenance(a.stdout, p)
				}
			}
			if unreadable > 0 {
				return usageError("inspect: %d of %d file(s) could not be read", unreadable, len(files))
			}
			if requireMarked && unmarked > 0 {
				return failCheck("%d of %d file(s) are not marked synthetic", unmarked, len(files))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&requireMarked, "require-marked", false, "exit 1 when a file is not marked synthetic")
	return cmd
}

// printProvenance writes the human view of one file's provenance.
func printProvenance(w io.Writer, p *dicomio.Provenance) {
	fmt.Fprintln(w, p.Path)
	state := "NOT marked synthetic"
	if p.Marked {
		state = "marked synthetic (Synthetic Data YES)"
	} else if p.SyntheticData != "" {
		state += " (Synthetic Data " + p.SyntheticData + ")"
	}
	if p.ByAugment {
		state += "; augment provenance record present"
	}
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-14s %s\n", k, v)
		}
	}
	row("status", state)
	row("image type", strings.Join(p.ImageType, `\`))
	if s := p.Synthesizer(); s != nil {
		made := s.Manufacturer
		if s.ModelName != "" && s.ModelName != s.Manufacturer {
			made += " " + s.ModelName
		}
		if s.SoftwareVersions != "" {
			made += " (" + s.SoftwareVersions + ")"
		}
		row("made by", strings.TrimSpace(made+" "+s.DateTime))
		row("contribution", s.Description)
	}
	row("derivation", p.DerivationDescription)
	for _, s := range p.Sources {
		row("from", fmt.Sprintf("%s (SOP Class %s; %s)", s.SOPInstanceUID, s.SOPClassUID, s.Purpose.Meaning))
	}
	if p.PatientIdentityRemoved != "" {
		var codes []string
		for _, c := range p.DeidentificationCodes {
			codes = append(codes, c.Value+" "+c.Meaning)
		}
		row("de-identified", strings.Join(nonBlank(p.PatientIdentityRemoved, p.DeidentificationMethod, strings.Join(codes, ", ")), "; "))
	}
	row("patient", p.PatientID)
	if r := p.Record; r != nil {
		g := r.Generation
		row("mode", string(g.Mode))
		row("bundle", strings.TrimSpace(g.Bundle+" "+g.BundleSHA256))
		row("tool", g.Tool)
		row("prompt", g.Prompt)
		if g.ReportText != "" {
			row("report", fmt.Sprintf("%d characters", len(g.ReportText)))
		}
		if g.Mode != dicomio.ModeRemark {
			row("settings", fmt.Sprintf("seed %d; prior %s, guidance %g, %d steps; decoder guidance %g, %d steps; upsampler steps %v; theta %g; eta %g",
				g.Seed, g.PriorKind, g.PriorGuidance, g.PriorSteps, g.DecoderGuidance, g.DecoderSteps, g.UpsamplerSteps, g.Theta, g.Eta))
		}
		if g.WatermarkPayloadID != "" || g.WatermarkKeyID != "" {
			wm := fmt.Sprintf("payload %s, key %s", g.WatermarkPayloadID, g.WatermarkKeyID)
			if g.WatermarkPSNRFloor > 0 {
				wm += fmt.Sprintf(", held at PSNR ≥ %.2f dB and SSIM ≥ %.4f", g.WatermarkPSNRFloor, g.WatermarkSSIMFloor)
			}
			row("watermark", wm)
		}
		row("conditioned", strings.TrimSpace(r.Sex+" "+r.Age))
		row("written", fmt.Sprintf("%s by %s, run %s item %d, %d bits, dates %s", r.IOD, r.Software, r.RunID, r.Item, r.BitsStored, r.DatePolicy))
	} else if p.RecordError != "" {
		row("record", p.RecordError)
	}
}

// nonBlank returns the non-empty strings of ss.
func nonBlank(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
}
