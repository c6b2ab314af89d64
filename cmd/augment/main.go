// Command augment makes synthetic medical images safe to use for training: it scans DICOM
// studies, generates synthetic scans with an unCLIP model bundle, watermarks and tags every
// synthetic image, and writes manifests and fidelity, privacy and subgroup-balance reports.
//
// The command files in this directory only parse flags and print; the work lives in the
// library packages and in the pipeline package beside this one.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The DICOM parser prints its panic's message through the standard logger before the
	// readers recover it and report it as an error naming the file: a second, unlabelled copy
	// between the command's lines.
	log.SetOutput(io.Discard)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the CLI with args and returns the process exit code:
// 0 ok, 1 a check failed, 2 usage or input error.
func run(ctx context.Context, args []string) int {
	app := newApp(os.Stdin, os.Stdout, os.Stderr)
	root := app.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ce *checkFailed
	if errors.As(err, &ce) {
		if ce.msg != "" {
			fmt.Fprintln(os.Stderr, "augment:", ce.msg)
		}
		return ExitCheckFailed
	}
	fmt.Fprintln(os.Stderr, "augment:", err)
	return ExitUsage
}
