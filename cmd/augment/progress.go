package main

import (
	"io"

	"github.com/schollz/progressbar/v3"
)

// progress is a bar on an interactive terminal and a no-op otherwise.
type progress struct{ bar *progressbar.ProgressBar }

// newProgress starts a progress bar of total steps (-1 when unknown) if the session is
// interactive; otherwise the returned progress does nothing.
func (a *app) newProgress(total int, description string) *progress {
	if !a.interactive() {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100_000_000),
	)}
}

// Add advances the bar by n steps.
func (p *progress) Add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// Describe changes the bar's label.
func (p *progress) Describe(s string) {
	if p.bar != nil {
		p.bar.Describe(s)
	}
}

// Finish clears the bar.
func (p *progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Exit()
	}
}

var _ io.Writer = (*progressbar.ProgressBar)(nil)
