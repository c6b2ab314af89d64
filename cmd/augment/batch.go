package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/medaugment/augment/dicomio"
)

// defaultWorkers is how many files the watermark commands process at once: every core, at
// most 4 (a 4096 px 16-bit image takes about 200 MB while it is marked).
func defaultWorkers() int { return min(runtime.NumCPU(), 4) }

// forEachOrdered runs work(i) for i = 0 … n−1 on up to workers goroutines and calls emit with
// each result in the order of i, on the calling goroutine, so that output and numbering do
// not depend on which worker finished first. A panic in work(i) becomes its error. When emit
// returns an error, the remaining results are awaited but not emitted, and the error is
// returned. work should return early once ctx is done.
func forEachOrdered[R any](ctx context.Context, n, workers int, work func(ctx context.Context, i int) (R, error), emit func(i int, r R, err error) error) error {
	type result struct {
		r   R
		err error
	}
	results := make([]chan result, n)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	slots := make(chan struct{}, max(1, workers))
	go func() {
		for i := range n {
			slots <- struct{}{}
			go func() {
				defer func() { <-slots }()
				var res result
				defer func() {
					if p := recover(); p != nil {
						res.err = fmt.Errorf("internal error: %v\n%s", p, debug.Stack())
					}
					results[i] <- res
				}()
				res.r, res.err = work(ctx, i)
			}()
		}
	}()
	var first error
	for i := range n {
		res := <-results[i]
		if first == nil {
			first = emit(i, res.r, res.err)
		}
	}
	return first
}

// inputFiles lists the files of args, walking folders (hidden files left out). A file named on
// the command line is always listed (one keep refuses is then reported by the command); of
// the files found in a folder, those keep refuses (a labels.csv or a README beside the
// images) are left out and counted. A file keep cannot read is listed, so that it is reported.
func inputFiles(ctx context.Context, args []string, keep func(path string) (bool, error)) (files []string, left int, err error) {
	named := make(map[string]bool, len(args))
	for _, p := range args {
		named[p] = true
	}
	err = dicomio.WalkFiles(ctx, args, func(p string) error {
		if !named[p] {
			if strings.HasPrefix(filepath.Base(p), ".") {
				return nil
			}
			if ok, err := keep(p); err == nil && !ok {
				left++
				return nil
			}
		}
		files = append(files, p)
		return nil
	})
	return files, left, err
}

// skipReason says why a DICOM file was skipped rather than marked.
func skipReason(labels bool) string {
	if labels {
		return "a segmentation or 1-bit image (labels, not intensities)"
	}
	return "not an image"
}
