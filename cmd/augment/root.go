package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Exit codes shared by every command.
const (
	ExitOK          = 0 // everything fine
	ExitCheckFailed = 1 // a check (verify, gate, validation) failed
	ExitUsage       = 2 // usage or input error
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// checkFailed is returned by commands whose check failed; it maps to exit code 1.
type checkFailed struct{ msg string }

func (c *checkFailed) Error() string { return c.msg }

// failCheck reports that a check failed (exit code 1) with a message.
func failCheck(format string, args ...any) error {
	return &checkFailed{msg: fmt.Sprintf(format, args...)}
}

// app holds the global flags and the streams every command writes to.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	quiet          bool
	jsonOut        bool
	verbose        bool
	logger         *slog.Logger
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "augment",
		Short: "Synthetic medical images that are safe to train on",
		Long: `augment reads DICOM studies, generates synthetic scans with an unCLIP model bundle,
stamps every synthetic image with an invisible provenance watermark and DICOM tags that
say it is synthetic, and writes Parquet manifests with subgroup-balance and
fidelity/privacy reports.`,
		Example: `  augment scan ../data/cxr/train --out inventory.parquet
  augment scan --json --pixel-hash study/ > instances.jsonl`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelWarn
			if a.verbose {
				level = slog.LevelDebug
			}
			a.logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
		},
	}
	root.PersistentFlags().BoolVarP(&a.quiet, "quiet", "q", false, "no progress bars or summaries on the terminal")
	root.PersistentFlags().BoolVar(&a.jsonOut, "json", false, "print machine-readable JSON")
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "log debug messages to stderr")
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nsee '%s --help'", err, c.CommandPath())
	})

	root.AddCommand(a.versionCommand())
	// Each capability registers its command here, one line each.
	for _, add := range a.commands() {
		root.AddCommand(add())
	}
	return root
}

// commands lists the constructors of the top-level commands beyond version and completion.
func (a *app) commands() []func() *cobra.Command {
	return []func() *cobra.Command{
		// scan, mark, inspect, bundle, generate, watermark, ... are added by their files.
		a.scanCommand,
		a.bundleCommand,
		a.markCommand,
		a.inspectCommand,
		a.generateCommand,
		a.watermarkCommand,
	}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print augment's version",
		Example: "  augment version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.jsonOut {
				return a.printJSON(map[string]string{"version": version})
			}
			_, err := fmt.Fprintln(a.stdout, "augment", version)
			return err
		},
	}
}

// printJSON writes v as one line of JSON to stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// interactive reports whether progress and human summaries should go to the terminal.
func (a *app) interactive() bool {
	if a.quiet {
		return false
	}
	f, ok := a.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// usageError marks err as a usage or input error (exit code 2); it is the default for errors.
func usageError(format string, args ...any) error { return fmt.Errorf(format, args...) }
