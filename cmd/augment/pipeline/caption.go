package pipeline

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/medaugment/augment/dicomio"
)

// The caption format is the training kit's (unclip/train/data.py, caption()): a model is
// conditioned best on text shaped like what it was trained on.

var viewNames = map[string]string{"PA": "PA", "AP": "AP", "AP SUPINE": "AP supine", "L": "lateral", "LL": "lateral", "RL": "lateral", "LATERAL": "lateral"}

var sexNames = map[string]string{"M": "male", "F": "female"}

var radiologyTerms = regexp.MustCompile(`(?i)radiograph|x-ray|xray|\bcxr\b|chest film|opacit|consolidat|infiltrat|ground.glass|effusion|` +
	`lung|lobe|pleura|cardiomegal|heart|mediastin|hil(um|ar)|airspace|interstitial|atelecta|` +
	`pneumothorax|nodul|reticul|bilateral|diaphragm|costophrenic|tube|catheter|shadow|haz`)

var sentenceEnd = regexp.MustCompile(`[.!?]\s+`)

// AgeBand is the decade band of an age in years ("70-79 years"), as captions name it.
func AgeBand(years float64) string {
	lo := int(years) / 10 * 10
	return fmt.Sprintf("%d-%d years", lo, lo+9)
}

// RadiologySentences keeps the sentences of free-text notes that describe the image.
func RadiologySentences(notes string) string {
	notes = strings.TrimSpace(notes)
	if notes == "" {
		return ""
	}
	var keep []string
	start := 0
	for _, loc := range sentenceEnd.FindAllStringIndex(notes, -1) {
		// split after the punctuation mark, dropping the white space
		keep = appendIfRadiology(keep, notes[start:loc[0]+1])
		start = loc[1]
	}
	keep = appendIfRadiology(keep, notes[start:])
	return strings.Join(keep, " ")
}

func appendIfRadiology(keep []string, s string) []string {
	s = strings.TrimSpace(s)
	if s != "" && radiologyTerms.MatchString(s) {
		keep = append(keep, s)
	}
	return keep
}

// Caption builds the conditioning text for an image: view, sex, age band, finding and the
// radiology sentences of the report's notes, e.g.
// "PA chest radiograph, male, 70-79 years, COVID-19. Diffuse bilateral opacities."
func Caption(view string, d dicomio.Demographics, finding, notes string) string {
	v := strings.TrimSpace(view)
	if n, ok := viewNames[strings.ToUpper(v)]; ok {
		v = n
	}
	parts := []string{strings.TrimSpace(v + " chest radiograph")}
	if s, ok := sexNames[strings.ToUpper(d.Sex)]; ok {
		parts = append(parts, s)
	}
	if d.AgeKnown {
		parts = append(parts, AgeBand(d.AgeYears))
	}
	if f := strings.TrimSpace(finding); f != "" {
		if strings.EqualFold(f, "no finding") {
			f = "no finding"
		}
		parts = append(parts, f)
	}
	text := strings.Join(parts, ", ") + "."
	if r := RadiologySentences(notes); r != "" {
		text += " " + r
	}
	return text
}

// SplitReport separates an SR's text into the finding (its first line, the Finding item of
// the reports augment reads) and the notes (the remaining lines).
func SplitReport(report string) (finding, notes string) {
	report = strings.TrimSpace(report)
	if report == "" {
		return "", ""
	}
	first, rest, _ := strings.Cut(report, "\n")
	return strings.TrimSpace(first), strings.TrimSpace(strings.ReplaceAll(rest, "\n", " "))
}
