package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/medaugment/augment/dicomio"
)

// Source is a real image found by a scan, with what a caption needs to say about it.
type Source struct {
	Path         string
	Study        string
	Modality     string
	View         string
	Demographics dicomio.Demographics
	Report       string // the study's report text ("" when none)
}

// ScanSources walks paths and returns every single-frame greyscale image instance with its
// study's report (from an SR in the study or a reports sidecar), in a stable order, and the
// files that could not be read.
func ScanSources(ctx context.Context, paths []string) ([]Source, []error, error) {
	idx := dicomio.NewIndex()
	var images []dicomio.Instance
	var bad []error
	err := dicomio.Scan(ctx, paths, dicomio.ScanOptions{}, func(r dicomio.Record) error {
		idx.Add(r)
		switch {
		case r.Err != nil:
			bad = append(bad, r.Err)
		case r.Kind == dicomio.KindInstance && r.Instance.HasPixels && !r.Instance.IsReport() &&
			r.Instance.SamplesPerPixel == 1 && r.Instance.Frames <= 1:
			images = append(images, r.Instance)
		}
		return nil
	})
	if err != nil {
		return nil, bad, err
	}
	out := make([]Source, 0, len(images))
	for _, in := range images {
		out = append(out, Source{
			Path:         in.Path,
			Study:        in.StudyInstanceUID,
			Modality:     in.Modality,
			View:         in.ViewPosition,
			Demographics: in.Demographics,
			Report:       idx.Report(in.StudyInstanceUID),
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, bad, nil
}

// ReportRequests turns sources into report-conditioned requests: each image's view,
// demographics and report make the caption, and its synthetic twin is conditioned on the
// same sex and age. perSource images are made for each source; limit > 0 keeps the first
// limit sources.
func ReportRequests(sources []Source, perSource, limit int) []Request {
	if limit > 0 && len(sources) > limit {
		sources = sources[:limit]
	}
	reqs := make([]Request, 0, len(sources))
	for _, s := range sources {
		finding, notes := SplitReport(s.Report)
		reqs = append(reqs, Request{
			Mode:         ModeReport,
			Caption:      Caption(s.View, s.Demographics, finding, notes),
			Demographics: s.Demographics,
			View:         s.View,
			Finding:      finding,
			Count:        max(perSource, 1),
		})
	}
	return reqs
}

// VariationRequests asks for count variations of each source.
func VariationRequests(sources []Source, count int) []Request {
	reqs := make([]Request, 0, len(sources))
	for _, s := range sources {
		finding, _ := SplitReport(s.Report)
		reqs = append(reqs, Request{
			Mode:         ModeVariation,
			Sources:      []string{s.Path},
			Demographics: s.Demographics,
			View:         s.View,
			Finding:      finding,
			Count:        max(count, 1),
		})
	}
	return reqs
}

// ParseSex normalises a sex given on the command line to DICOM's M, F or O.
func ParseSex(s string) (string, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "":
		return "", nil
	case "M", "MALE":
		return "M", nil
	case "F", "FEMALE":
		return "F", nil
	case "O", "OTHER":
		return "O", nil
	}
	return "", fmt.Errorf("sex %q: want M, F or O", s)
}
