package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/dicomio/codec"
	"github.com/medaugment/augment/manifests"
)

func (a *app) scanCommand() *cobra.Command {
	var (
		out       string
		pixelHash bool
		maxMB     int64
		workers   int
	)
	cmd := &cobra.Command{
		Use:   "scan PATH...",
		Short: "Inventory DICOM studies: instances, demographics, reports and unreadable files",
		Long: `scan walks files and folders (recursively), reads every DICOM file by its content,
and prints a summary: studies, series, instances, modalities, transfer syntaxes,
demographics coverage, radiology reports (SR in the study, or a reports JSONL sidecar
keyed by study_instance_uid), files that could not be read, grouped by reason, and
with --pixel-hash the instances whose pixels are identical under different UIDs.

It writes an inventory manifest (Parquet, one row per DICOM file) to --out.
With --json it prints one JSON object per DICOM file (the summary goes to stderr).
Exit code 0 when the scan ran, even if some files were bad (they are reported);
2 when no input path can be read.`,
		Example: `  augment scan ../shared/data/cxr/train --out inventory.parquet
  augment scan --json --pixel-hash study/ > instances.jsonl
  augment scan --quiet --out "" a/ b/ single.dcm`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var paths []string
			for _, p := range args {
				if _, err := os.Stat(p); err != nil {
					fmt.Fprintf(a.stderr, "augment scan: skipping %s: %v\n", p, err)
					continue
				}
				paths = append(paths, p)
			}
			if len(paths) == 0 {
				return usageError("scan: no readable input path among %s", strings.Join(args, ", "))
			}
			opt := dicomio.ScanOptions{Workers: workers, PixelHash: pixelHash, Read: dicomio.ReadOptions{MaxBytes: maxMB << 20}}
			var inv *manifests.InventoryWriter
			if out != "" {
				var err error
				if inv, err = manifests.NewInventoryWriter(out); err != nil {
					return usageError("scan: %v", err)
				}
			}
			total := -1
			if a.interactive() {
				if n, err := dicomio.CountFiles(cmd.Context(), paths); err == nil {
					total = n
				}
			}
			bar := a.newProgress(total, "scan")
			start := time.Now()
			idx := dicomio.NewIndex()
			rows := 0
			err := dicomio.Scan(cmd.Context(), paths, opt, func(rec dicomio.Record) error {
				bar.Add(1)
				idx.Add(rec)
				if rec.Kind != dicomio.KindInstance && rec.Kind != dicomio.KindError {
					return nil
				}
				row := rec.InventoryRow()
				rows++
				if a.logger != nil && rec.Err != nil {
					a.logger.Debug("unreadable DICOM file", "path", rec.Instance.Path, "reason", dicomio.ErrorReason(rec.Err), "error", rec.Err)
				}
				if inv != nil {
					if err := inv.Write(row); err != nil {
						return err
					}
				}
				if a.jsonOut {
					return a.printJSON(row)
				}
				return nil
			})
			bar.Finish()
			if err != nil {
				if inv != nil {
					inv.Abort()
				}
				return fmt.Errorf("scan: %w", err)
			}
			if inv != nil {
				if err := inv.Close(); err != nil {
					return fmt.Errorf("scan: %w", err)
				}
			}
			if a.quiet {
				return nil
			}
			w := a.stdout
			if a.jsonOut {
				w = a.stderr
			}
			printScanSummary(w, idx.Summary(), time.Since(start), out, rows, pixelHash)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "inventory.parquet", `inventory manifest to write (Parquet); "" writes none`)
	cmd.Flags().BoolVar(&pixelHash, "pixel-hash", false, "decode pixels and record pixel_sha256; lists exact duplicates")
	cmd.Flags().Int64Var(&maxMB, "max-mb", dicomio.DefaultMaxBytes>>20, "largest file or decoded image to accept, in MiB")
	cmd.Flags().IntVar(&workers, "workers", 2, "files read in parallel")
	return cmd
}

// printScanSummary prints what a scan found for a person.
func printScanSummary(w io.Writer, s dicomio.Summary, took time.Duration, out string, rows int, pixelHash bool) {
	fmt.Fprintf(w, "Scanned %d files in %.1fs: %d instances in %d studies and %d series (%d images)\n",
		s.Files, took.Seconds(), s.Instances, s.Studies, s.Series, s.Images)
	fmt.Fprintf(w, "  Modalities:        %s\n", scanCounts(s.Modalities, nil))
	fmt.Fprintf(w, "  Transfer syntaxes: %s\n", scanCounts(s.TransferSyntaxes, func(uid string) string {
		return uid + " (" + codec.Name(uid) + ")"
	}))
	fmt.Fprintf(w, "  Demographics:      of %d images, sex known %d (%s), age known %d, ethnic group known %d\n",
		s.Images, s.SexKnown, scanCounts(s.Sex, nil), s.AgeKnown, s.EthnicKnown)
	fmt.Fprintf(w, "  Reports:           %d of %d studies have a report (%d SR instances, %d report sidecar files)\n",
		s.StudiesWithReport, s.Studies, s.SRInstances, s.Sidecars)
	if s.Synthetic > 0 {
		fmt.Fprintf(w, "  Synthetic:         %d instances say Synthetic Data = YES\n", s.Synthetic)
	}
	if s.NotDICOM > 0 || s.Directories > 0 {
		fmt.Fprintf(w, "  Skipped:           %d files that are not DICOM, %d DICOMDIR\n", s.NotDICOM, s.Directories)
	}
	if len(s.Errors) == 0 {
		fmt.Fprintf(w, "  Errors:            none\n")
	} else {
		n := 0
		for _, c := range s.Errors {
			n += c
		}
		fmt.Fprintf(w, "  Errors:            %d files could not be read\n", n)
		reasons := make([]string, 0, len(s.Errors))
		for r := range s.Errors {
			reasons = append(reasons, r)
		}
		sort.Slice(reasons, func(i, j int) bool {
			if s.Errors[reasons[i]] != s.Errors[reasons[j]] {
				return s.Errors[reasons[i]] > s.Errors[reasons[j]]
			}
			return reasons[i] < reasons[j]
		})
		for _, r := range reasons {
			fmt.Fprintf(w, "    %-40s %4d  e.g. %s\n", r, s.Errors[r], strings.Join(s.ErrorExamples[r], ", "))
		}
	}
	switch {
	case !pixelHash:
		fmt.Fprintf(w, "  Duplicates:        not checked (use --pixel-hash)\n")
	case len(s.Duplicates) == 0:
		fmt.Fprintf(w, "  Duplicates:        none (no identical pixels under different UIDs)\n")
	default:
		fmt.Fprintf(w, "  Duplicates:        %d groups of identical pixels under different UIDs (leakage risk between splits)\n", len(s.Duplicates))
		for _, g := range s.Duplicates {
			var paths []string
			for _, m := range g.Instances {
				paths = append(paths, m.Path)
			}
			fmt.Fprintf(w, "    %s  %s\n", g.PixelSHA256[:16], strings.Join(paths, ", "))
		}
	}
	if out != "" {
		fmt.Fprintf(w, "  Inventory:         %s (%d rows)\n", out, rows)
	}
}

// scanCounts formats counts as "A 3, B 2", largest first.
func scanCounts(m map[string]int, name func(string) string) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		label := k
		if name != nil {
			label = name(k)
		}
		parts[i] = fmt.Sprintf("%s %d", label, m[k])
	}
	return strings.Join(parts, ", ")
}
