package dicomio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// reportSidecarFields are the text fields of a sidecar report row, in the order they are
// joined into the report text.
var reportSidecarFields = []string{"report", "text", "finding", "findings", "impression", "clinical_notes", "notes"}

// ReportSidecarKey is the field of a sidecar row that names its study.
const ReportSidecarKey = "study_instance_uid"

// IsReportSidecar reports whether path is a JSON-lines file whose first row is an object with
// a study_instance_uid field: a sidecar of reports keyed by Study Instance UID.
func IsReportSidecar(path string) bool {
	if !strings.HasSuffix(strings.ToLower(path), ".jsonl") {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var row map[string]any
		if json.Unmarshal(line, &row) != nil {
			return false
		}
		_, ok := row[ReportSidecarKey].(string)
		return ok
	}
	return false
}

// ReadReportSidecar reads a JSON-lines file of reports keyed by Study Instance UID and returns
// the report text of each study: the fields report, text, finding(s), impression,
// clinical_notes and notes that are present, one per line as "field: value". Rows of the
// same study are joined. A row that is not JSON is an error naming its line.
func ReadReportSidecar(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read report sidecar %s: %w", path, err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var row map[string]any
		if err := json.Unmarshal(b, &row); err != nil {
			return nil, fmt.Errorf("read report sidecar %s line %d: %w", path, line, err)
		}
		study, _ := row[ReportSidecarKey].(string)
		if study == "" {
			continue
		}
		if text := reportRowText(row); text != "" {
			if prev := out[study]; prev != "" {
				text = prev + "\n" + text
			}
			out[study] = text
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read report sidecar %s: %w", path, err)
	}
	return out, nil
}

func reportRowText(row map[string]any) string {
	var lines []string
	for _, k := range reportSidecarFields {
		switch v := row[k].(type) {
		case string:
			if s := strings.TrimSpace(v); s != "" {
				lines = append(lines, k+": "+s)
			}
		case []any:
			var parts []string
			for _, p := range v {
				if s, ok := p.(string); ok && strings.TrimSpace(s) != "" {
					parts = append(parts, strings.TrimSpace(s))
				}
			}
			if len(parts) > 0 {
				lines = append(lines, k+": "+strings.Join(parts, "; "))
			}
		}
	}
	return strings.Join(lines, "\n")
}
