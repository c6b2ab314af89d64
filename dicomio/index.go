package dicomio

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// RecordKind says what a scanned file turned out to be.
type RecordKind string

// The kinds of scanned file.
const (
	KindInstance  RecordKind = "instance"  // a DICOM instance (image, report, ...)
	KindDirectory RecordKind = "dicomdir"  // a DICOMDIR
	KindSidecar   RecordKind = "sidecar"   // a JSON-lines file of reports keyed by Study Instance UID
	KindNotDICOM  RecordKind = "not-dicom" // any other file not named .dcm; skipped
	KindError     RecordKind = "error"     // a DICOM file that could not be read or decoded
)

// Record is the result of scanning one file.
type Record struct {
	Kind     RecordKind
	Instance Instance // Path is always set
	// PixelSHA256 is Image.PixelSHA256 of the instance, with ScanOptions.PixelHash.
	PixelSHA256 string
	// Reports are the sidecar's report texts by Study Instance UID (KindSidecar).
	Reports map[string]string
	// Err is the reader error (KindError), with the path and a reason (ErrorReason).
	Err error
}

// ScanOptions tune Scan.
type ScanOptions struct {
	// Workers reading files in parallel; 0 means 2.
	Workers int
	// PixelHash decodes the pixels of every instance that has them and sets PixelSHA256.
	// Without it only the metadata is read (pixel data is skipped, not decoded).
	PixelHash bool
	// Decode decodes pixels (to check they decode) without keeping a hash.
	Decode bool
	Read   ReadOptions
}

// ScanFile reads one file: a DICOM instance by content, a report sidecar, or another file.
func ScanFile(path string, opt ScanOptions) Record {
	return scanFile(path, opt, nil)
}

// scanFile is ScanFile reading into the buffers of scratch (nil: new buffers); the decoded
// pixels never leave it, so that the next file can reuse them.
func scanFile(path string, opt ScanOptions, scratch *readScratch) Record {
	rec := Record{Instance: Instance{Path: path}}
	src, err := readOpenWith(path, scratch)
	if err != nil {
		rec.Kind, rec.Err = KindError, readFail(path, err)
		return rec
	}
	defer src.close()
	if !src.isDICOM {
		if IsReportSidecar(path) {
			reports, err := ReadReportSidecar(path)
			if err != nil {
				rec.Kind, rec.Err = KindError, &ReadError{Path: path, Reason: "bad report sidecar", Err: err}
				return rec
			}
			rec.Kind, rec.Reports = KindSidecar, reports
			return rec
		}
		if scanNamedDICOM(path) {
			// Named like DICOM but not DICOM by content: worth reporting.
			rec.Kind, rec.Err = KindError, readFail(path, fmt.Errorf("%w: no DICM prefix and no plausible data set", ErrNotDICOM))
			return rec
		}
		rec.Kind = KindNotDICOM
		return rec
	}
	pixels := opt.PixelHash || opt.Decode
	in, img, err := src.read(opt.Read, pixels)
	if pixels && errors.Is(err, ErrNoPixelData) && !in.HasPixels {
		err = nil // a report or a directory: nothing to decode
	}
	rec.Instance = in
	switch {
	case err != nil:
		rec.Kind, rec.Err = KindError, err
	case in.IsDirectory:
		rec.Kind = KindDirectory
	default:
		rec.Kind = KindInstance
		if img != nil && opt.PixelHash {
			rec.PixelSHA256 = img.PixelSHA256()
		}
	}
	return rec
}

// scanNamedDICOM reports whether the file name says DICOM (.dcm, .dicom, .dic).
func scanNamedDICOM(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".dcm", ".dicom", ".dic":
		return true
	}
	return false
}

// Scan walks paths and reads every file with a small pool of workers, calling fn with one
// Record per file in walk order. Only the current files' data is held: memory stays flat
// however many files there are. fn's error, a walk error or the context's cancellation stop
// the scan; a bad file does not (it is a Record of KindError).
func Scan(ctx context.Context, paths []string, opt ScanOptions, fn func(Record) error) error {
	workers := opt.Workers
	if workers <= 0 {
		workers = 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type job struct {
		seq  int
		path string
	}
	type result struct {
		seq int
		rec Record
	}
	jobs := make(chan job, workers)
	results := make(chan result, workers)
	var walkErr error
	var wg sync.WaitGroup
	go func() {
		defer close(jobs)
		seq := 0
		walkErr = WalkFiles(ctx, paths, func(path string) error {
			select {
			case jobs <- job{seq, path}:
				seq++
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch readScratch // this worker's buffers, reused from file to file
			for j := range jobs {
				rec := scanFile(j.path, opt, &scratch)
				select {
				case results <- result{j.seq, rec}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	// Deliver in walk order; at most a few results wait here.
	pending := map[int]Record{}
	next := 0
	var fnErr error
	for r := range results {
		if fnErr != nil {
			continue
		}
		pending[r.seq] = r.rec
		for {
			rec, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if err := fn(rec); err != nil {
				fnErr = err
				cancel()
				break
			}
		}
	}
	if fnErr != nil {
		return fnErr
	}
	if walkErr != nil && !errors.Is(walkErr, context.Canceled) {
		return walkErr
	}
	return ctx.Err()
}

// Index is the Study → Series → Instance index of a scan and its running summary. Add
// records to it; it keeps UIDs, paths and counts, never data sets or pixels.
type Index struct {
	studies    map[string]*IndexStudy
	summary    Summary
	srReports  map[string]string
	sidecar    map[string]string
	hashes     map[string][]DuplicateInstance
	errExample map[string]int
}

// IndexStudy is one study of the index.
type IndexStudy struct {
	StudyInstanceUID string
	PatientID        string
	Series           map[string]*IndexSeries
}

// IndexSeries is one series of a study.
type IndexSeries struct {
	SeriesInstanceUID string
	Modality          string
	Instances         []IndexInstance
}

// IndexInstance is one instance of a series.
type IndexInstance struct {
	SOPInstanceUID string
	Path           string
}

// Summary is what a scan found.
type Summary struct {
	Files            int            `json:"files"`
	Studies          int            `json:"studies"`
	Series           int            `json:"series"`
	Instances        int            `json:"instances"`
	Images           int            `json:"images"` // instances with pixel data
	Directories      int            `json:"dicomdirs"`
	NotDICOM         int            `json:"not_dicom"`
	Sidecars         int            `json:"report_sidecars"`
	Modalities       map[string]int `json:"modalities"`
	TransferSyntaxes map[string]int `json:"transfer_syntaxes"`
	// Demographics coverage over images.
	Sex         map[string]int `json:"sex"` // M, F, O, unknown
	SexKnown    int            `json:"sex_known"`
	AgeKnown    int            `json:"age_known"`
	EthnicKnown int            `json:"ethnic_group_known"`
	Synthetic   int            `json:"synthetic"` // Synthetic Data = YES
	// Reports: SR instances with text, and studies with a report from SR or a sidecar.
	SRInstances       int `json:"sr_instances"`
	StudiesWithReport int `json:"studies_with_report"`
	// Errors by reason, with up to three example paths for each.
	Errors        map[string]int      `json:"errors"`
	ErrorExamples map[string][]string `json:"error_examples,omitempty"`
	// Duplicates are groups of instances with identical pixels under different SOP
	// Instance UIDs (only with pixel hashes).
	Duplicates []DuplicateGroup `json:"duplicates"`
}

// DuplicateGroup is a set of instances whose stored pixel values are identical.
type DuplicateGroup struct {
	PixelSHA256 string              `json:"pixel_sha256"`
	Instances   []DuplicateInstance `json:"instances"`
}

// DuplicateInstance names one member of a duplicate group.
type DuplicateInstance struct {
	Path             string `json:"path"`
	SOPInstanceUID   string `json:"sop_instance_uid"`
	StudyInstanceUID string `json:"study_instance_uid"`
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		studies:   map[string]*IndexStudy{},
		srReports: map[string]string{},
		sidecar:   map[string]string{},
		hashes:    map[string][]DuplicateInstance{},
		summary: Summary{
			Modalities: map[string]int{}, TransferSyntaxes: map[string]int{}, Sex: map[string]int{},
			Errors: map[string]int{}, ErrorExamples: map[string][]string{},
		},
	}
}

// Add records one scanned file.
func (x *Index) Add(rec Record) {
	s := &x.summary
	s.Files++
	switch rec.Kind {
	case KindNotDICOM:
		s.NotDICOM++
		return
	case KindDirectory:
		s.Directories++
		return
	case KindSidecar:
		s.Sidecars++
		for study, text := range rec.Reports {
			if prev := x.sidecar[study]; prev != "" && prev != text {
				text = prev + "\n" + text
			}
			x.sidecar[study] = text
		}
		return
	case KindError:
		reason := ErrorReason(rec.Err)
		s.Errors[reason]++
		if len(s.ErrorExamples[reason]) < 3 {
			s.ErrorExamples[reason] = append(s.ErrorExamples[reason], rec.Instance.Path)
		}
		return
	}
	in := &rec.Instance
	s.Instances++
	st := x.studies[in.StudyInstanceUID]
	if st == nil {
		st = &IndexStudy{StudyInstanceUID: in.StudyInstanceUID, PatientID: in.PatientID, Series: map[string]*IndexSeries{}}
		x.studies[in.StudyInstanceUID] = st
	}
	se := st.Series[in.SeriesInstanceUID]
	if se == nil {
		se = &IndexSeries{SeriesInstanceUID: in.SeriesInstanceUID, Modality: in.Modality}
		st.Series[in.SeriesInstanceUID] = se
		s.Series++
	}
	se.Instances = append(se.Instances, IndexInstance{SOPInstanceUID: in.SOPInstanceUID, Path: in.Path})
	s.Modalities[orUnknown(in.Modality)]++
	s.TransferSyntaxes[in.TransferSyntaxUID]++
	if in.SyntheticData == "YES" {
		s.Synthetic++
	}
	if in.ReportText != "" {
		s.SRInstances++
		if prev := x.srReports[in.StudyInstanceUID]; prev != "" {
			x.srReports[in.StudyInstanceUID] = prev + "\n" + in.ReportText
		} else {
			x.srReports[in.StudyInstanceUID] = in.ReportText
		}
	}
	if !in.HasPixels {
		return
	}
	s.Images++
	d := in.Demographics
	s.Sex[orUnknown(d.Sex)]++
	if d.Sex != "" {
		s.SexKnown++
	}
	if d.AgeKnown {
		s.AgeKnown++
	}
	if d.EthnicGroup != "" {
		s.EthnicKnown++
	}
	if rec.PixelSHA256 != "" {
		x.hashes[rec.PixelSHA256] = append(x.hashes[rec.PixelSHA256],
			DuplicateInstance{Path: in.Path, SOPInstanceUID: in.SOPInstanceUID, StudyInstanceUID: in.StudyInstanceUID})
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Report returns the report text of a study: its SR instances' text, else its sidecar row.
func (x *Index) Report(studyUID string) string {
	if t := x.srReports[studyUID]; t != "" {
		return t
	}
	return x.sidecar[studyUID]
}

// Studies returns the studies in Study Instance UID order.
func (x *Index) Studies() []*IndexStudy {
	out := make([]*IndexStudy, 0, len(x.studies))
	for _, st := range x.studies {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StudyInstanceUID < out[j].StudyInstanceUID })
	return out
}

// Summary returns the summary of what was added so far.
func (x *Index) Summary() Summary {
	s := x.summary
	s.Studies = len(x.studies)
	s.StudiesWithReport = 0
	for uid := range x.studies {
		if x.Report(uid) != "" {
			s.StudiesWithReport++
		}
	}
	s.Duplicates = nil
	for sha, members := range x.hashes {
		uids := map[string]bool{}
		for _, m := range members {
			uids[m.SOPInstanceUID] = true
		}
		if len(members) > 1 && len(uids) > 1 {
			g := DuplicateGroup{PixelSHA256: sha, Instances: append([]DuplicateInstance(nil), members...)}
			sort.Slice(g.Instances, func(i, j int) bool { return g.Instances[i].Path < g.Instances[j].Path })
			s.Duplicates = append(s.Duplicates, g)
		}
	}
	sort.Slice(s.Duplicates, func(i, j int) bool { return s.Duplicates[i].Instances[0].Path < s.Duplicates[j].Instances[0].Path })
	return s
}

// String formats a one-line description of a duplicate group.
func (g DuplicateGroup) String() string {
	return fmt.Sprintf("%s…: %d instances", g.PixelSHA256[:min(12, len(g.PixelSHA256))], len(g.Instances))
}
