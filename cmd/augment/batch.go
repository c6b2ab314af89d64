package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
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
