package wmfile

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"math"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/watermark"
)

// AttackReport is what augment watermark attack reports for people, beside table.json and
// table.md: report.html, a self-contained page (plots as inline SVG, sample images as data
// URIs) with the table, the share of images that kept each attack's expectation, the scores
// each attack left against the pilot-alone thresholds, and one image's attacked copies.
type AttackReport struct {
	KeyID string
	// Runs are the per-image outcomes (RunSuite's, images dropped), in input order.
	Runs [][]watermark.AttackOutcome
	// MarkedHere counts the files that carried no mark and were marked at Floors first.
	MarkedHere int
	Floors     watermark.Options
	// Sample is one input's marked image and its attacked copies, as thumbnails (Thumbnail).
	Sample *AttackSample
}

// AttackSample is one input's thumbnails: the marked image, then one per attack.
type AttackSample struct {
	Input   string
	Marked  *image.Gray
	Attacks []SampleThumb
}

// SampleThumb is one attacked copy's thumbnail and what the detector found in it.
type SampleThumb struct {
	Outcome watermark.AttackOutcome // Image dropped
	Thumb   *image.Gray
}

// NewAttackSample makes the report's sample from one input: thumbnails of its marked image
// and of each attacked copy in outs (RunSuite's, with their images), the outcomes kept
// without their images.
func NewAttackSample(input string, marked *watermark.Gray, outs []watermark.AttackOutcome) *AttackSample {
	s := &AttackSample{Input: input, Marked: Thumbnail(marked)}
	for _, o := range outs {
		if o.Image == nil {
			continue
		}
		th := Thumbnail(o.Image)
		o.Image = nil
		s.Attacks = append(s.Attacks, SampleThumb{Outcome: o, Thumb: th})
	}
	return s
}

// thumbSide is the longest side of the report's sample images.
const thumbSide = 192

// Thumbnail scales g to at most thumbSide px on its longest side (area averaging) and maps
// its values from their smallest to their largest to 8 bits, as a full-range window shows
// them.
func Thumbnail(g *watermark.Gray) *image.Gray {
	w, h := g.Width, g.Height
	if s := float64(thumbSide) / float64(max(w, h)); s < 1 {
		w, h = max(1, int(math.Round(float64(w)*s))), max(1, int(math.Round(float64(h)*s)))
		g = watermark.Resize(g, w, h)
	}
	lo, hi := slices.Min(g.Pix), slices.Max(g.Pix)
	im := image.NewGray(image.Rect(0, 0, w, h))
	for i, v := range g.Pix {
		if hi > lo {
			im.Pix[i] = uint8((int(v-lo)*255 + int(hi-lo)/2) / int(hi-lo))
		}
	}
	return im
}

// WriteAttackReport writes dir/report.html (temporary file, then rename).
func WriteAttackReport(dir string, r AttackReport) error {
	rows := watermark.Summarize(r.Runs)
	passPlot, err := svgOf(passSharePlot(rows))
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	scorePlot, err := svgOf(scorePlot(r.Runs))
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	type thumb struct {
		Src            template.URL
		Title, Verdict string
		Passed         bool
	}
	page := struct {
		KeyID              string
		Images, MarkedHere int
		PSNR, SSIM         float64
		Rows               []watermark.SuiteRow
		PassPlot           template.HTML
		ScorePlot          template.HTML
		Th                 watermark.Thresholds
		SampleInput        string
		Thumbs             []thumb
	}{KeyID: r.KeyID, Images: len(r.Runs), MarkedHere: r.MarkedHere, Rows: rows,
		PassPlot: template.HTML(passPlot), ScorePlot: template.HTML(scorePlot), Th: watermark.PilotThresholds()}
	fl := r.Floors.WithDefaults()
	page.PSNR, page.SSIM = fl.PSNR, fl.SSIM
	if s := r.Sample; s != nil {
		page.SampleInput = s.Input
		src, err := pngDataURL(s.Marked)
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		page.Thumbs = append(page.Thumbs, thumb{Src: src, Title: "marked", Verdict: "as marked", Passed: true})
		for _, a := range s.Attacks {
			src, err := pngDataURL(a.Thumb)
			if err != nil {
				return fmt.Errorf("write report: %w", err)
			}
			o := a.Outcome
			v := fmt.Sprintf("absent (%.1fσ)", shownScore(o.Result))
			switch {
			case o.Err != "":
				v = "error: " + o.Err
			case o.PayloadOK:
				v = fmt.Sprintf("payload read (%.1fσ)", shownScore(o.Result))
			case o.Result.Present:
				v = fmt.Sprintf("present, payload lost (%.1fσ)", shownScore(o.Result))
			}
			page.Thumbs = append(page.Thumbs, thumb{Src: src, Title: o.Attack, Verdict: v, Passed: o.Passed})
		}
	}
	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, page); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return dicomio.WriteFileAtomic(filepath.Join(dir, "report.html"), buf.Bytes())
}

// pngDataURL encodes an image as a data URL, so that the page needs no other file.
func pngDataURL(im image.Image) (template.URL, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, im); err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())), nil
}

// passSharePlot is a horizontal bar chart of the share of images that kept each attack's
// expectation, and its size.
func passSharePlot(rows []watermark.SuiteRow) (*plot.Plot, vg.Length, vg.Length, error) {
	p := plot.New()
	p.Title.Text = "Images that kept the expectation"
	p.X.Label.Text = "share of images"
	p.X.Min, p.X.Max = 0, 1
	vals := make(plotter.Values, len(rows))
	names := make([]string, len(rows))
	for i, r := range rows {
		// Top to bottom in the table's order: the nominal axis counts from the bottom.
		j := len(rows) - 1 - i
		names[j] = r.Attack
		if r.Images > 0 {
			vals[j] = float64(r.Passed) / float64(r.Images)
		}
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(8))
	if err != nil {
		return nil, 0, 0, err
	}
	bars.Horizontal = true
	bars.Color = color.RGBA{R: 0x3b, G: 0x6e, B: 0xa5, A: 0xff}
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalY(names...)
	return p, 5.5 * vg.Inch, vg.Length(len(rows))*13 + 60, nil
}

// scorePlot is, per attack, a box plot of the scores the attacked images left (the pilot's
// correlation in null standard deviations), with the primary read's and the full search's
// pilot-alone thresholds as vertical lines: a score right of a line is a mark present on the
// pilot alone; a decoded payload needs less. It also returns the plot's size.
func scorePlot(runs [][]watermark.AttackOutcome) (*plot.Plot, vg.Length, vg.Length, error) {
	p := plot.New()
	p.Title.Text = "Scores the attacks left"
	p.X.Label.Text = "score (σ): the pilot's, or joined with the coarse layer where higher"
	if len(runs) == 0 {
		return p, 5.5 * vg.Inch, 2 * vg.Inch, nil
	}
	n := len(runs[0])
	names := make([]string, n)
	hi := 10.0
	for i := 0; i < n; i++ {
		j := n - 1 - i
		names[j] = runs[0][i].Attack
		vals := make(plotter.Values, 0, len(runs))
		for _, outs := range runs {
			if i < len(outs) {
				v := shownScore(outs[i].Result)
				vals = append(vals, v)
				hi = max(hi, v)
			}
		}
		box, err := plotter.NewBoxPlot(vg.Points(7), float64(j), vals)
		if err != nil {
			return nil, 0, 0, err
		}
		box.Horizontal = true
		p.Add(box)
	}
	th := watermark.PilotThresholds()
	for _, t := range []struct {
		z    float64
		dash []vg.Length
	}{{th.Primary, nil}, {th.Search, []vg.Length{vg.Points(4), vg.Points(3)}}} {
		l, err := plotter.NewLine(plotter.XYs{{X: t.z, Y: -0.5}, {X: t.z, Y: float64(n) - 0.5}})
		if err != nil {
			return nil, 0, 0, err
		}
		l.Color = color.RGBA{R: 0xc0, G: 0x39, B: 0x2b, A: 0xff}
		l.Dashes = t.dash
		p.Add(l)
	}
	p.X.Min, p.X.Max = 0, math.Ceil(hi)
	p.NominalY(names...)
	return p, 5.5 * vg.Inch, vg.Length(n)*13 + 60, nil
}

// svgOf renders a plot of size w×h (or the error that made it) as an SVG element.
func svgOf(p *plot.Plot, w, h vg.Length, err error) (string, error) {
	if err != nil {
		return "", err
	}
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return "", err
	}
	// Drop the XML declaration: the SVG is inlined in HTML.
	s := b.Bytes()
	if i := bytes.Index(s, []byte("<svg")); i > 0 {
		s = s[i:]
	}
	return string(s), nil
}

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Watermark robustness: {{.Images}} image(s)</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#222}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}
td:first-child,th:first-child{text-align:left}tr.fail td{background:#fdecea}
.plots{display:flex;flex-wrap:wrap;gap:1em}
.thumbs{display:flex;flex-wrap:wrap;gap:.8em}.thumbs figure{margin:0;width:200px;font-size:.8em}
.thumbs img{display:block;border:3px solid #2e7d32;image-rendering:pixelated}.thumbs .fail img{border-color:#c0392b}
</style></head><body>
<h1>Watermark robustness</h1>
<p>{{.Images}} image(s), key id <code>{{.KeyID}}</code>.{{if .MarkedHere}} {{.MarkedHere}} carried no mark and were marked here at PSNR ≥ {{printf "%.2f" .PSNR}} dB and SSIM ≥ {{printf "%.4f" .SSIM}}.{{end}}
Each attack must leave the payload readable, or (presence rows) the mark detected with a false-positive probability of at most 10⁻⁹.
The pilot alone makes a mark present at {{printf "%.2f" .Th.Primary}}σ where the image kept its frame (solid line) and at {{printf "%.2f" .Th.Search}}σ after a crop (dashed), whatever its cells' weights; a decoded payload needs less, and so does a read whose cells agree with the key evenly (its own tail bound is then smaller).</p>
<h2>Table</h2>
<table><tr><th>attack</th><th>must keep</th><th>passed</th><th>mark present</th><th>payload exact</th><th>min score (σ)</th><th>max FP probability</th><th>mean corrected bits</th></tr>
{{range .Rows}}<tr{{if lt .Passed .Images}} class="fail"{{end}}><td>{{.Attack}}</td><td>{{.Expect}}</td><td>{{.Passed}}/{{.Images}}</td><td>{{.Present}}/{{.Images}}</td><td>{{.PayloadOK}}/{{.Images}}</td><td>{{printf "%.1f" .MinScore}}</td><td>{{printf "%.1e" .MaxFP}}</td><td>{{printf "%.1f" .MeanBitErrors}}</td></tr>
{{end}}</table>
<h2>Plots</h2>
<div class="plots"><div>{{.PassPlot}}</div><div>{{.ScorePlot}}</div></div>
{{if .Thumbs}}<h2>Sample: {{.SampleInput}}</h2>
<p>The marked image and what each attack made of it (values mapped from their smallest to their largest; red: the expectation was broken).</p>
<div class="thumbs">{{range .Thumbs}}<figure{{if not .Passed}} class="fail"{{end}}><img src="{{.Src}}" alt="{{.Title}}"><figcaption><b>{{.Title}}</b><br>{{.Verdict}}</figcaption></figure>
{{end}}</div>{{end}}
</body></html>
`))

// shownScore is the score the report shows for a detection: the pilot's, or the primary
// read joined with the coarse layer's where that is higher (a quarter-size copy of a small
// image is found that way while its pilot alone scores 4–5σ).
func shownScore(r watermark.Result) float64 { return max(r.Score, r.CoarseScore) }
