package wmfile

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/medaugment/augment/watermark"
)

// TestWriteAttackReport: report.html is one self-contained page (nothing fetched: plots as
// inline SVG, images as data URLs) with the table's rows, both plots, and the sample's
// marked image and attacked copies, each captioned with what the detector found.
func TestWriteAttackReport(t *testing.T) {
	key, err := watermark.NewKey([]byte("report-test-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	g := watermark.NewGray(200, 180, 12)
	for i := range g.Pix {
		x, y := float64(i%g.Width), float64(i/g.Width)
		g.Pix[i] = uint16(2000 + 900*math.Sin(x/9)*math.Cos(y/13) + float64((i*7919)%97))
	}
	p := watermark.Payload{ID: 5, Version: watermark.PayloadVersion}
	m, err := watermark.Embed(g, key, p)
	if err != nil {
		t.Fatal(err)
	}
	outs, err := watermark.RunSuite(context.Background(), m, key, p, watermark.Suite())
	if err != nil {
		t.Fatal(err)
	}
	outs[1].Passed = false // so that the page has a broken expectation to show, whatever the image
	sample := NewAttackSample("scan.png", m, outs)
	for k := range outs {
		outs[k].Image = nil
	}
	dir := t.TempDir()
	r := AttackReport{KeyID: key.ID(), Runs: [][]watermark.AttackOutcome{outs, outs}, MarkedHere: 2,
		Floors: watermark.Options{PSNR: 42, SSIM: 0.98}, Sample: sample}
	if err := WriteAttackReport(dir, r); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "report.html")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("report mode %v (%v), want 0644", fi.Mode().Perm(), err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if n := strings.Count(page, "<svg"); n != 2 {
		t.Errorf("%d inline SVG plots, want 2", n)
	}
	if n := strings.Count(page, `src="data:image/png;base64,`); n != len(outs)+1 {
		t.Errorf("%d sample images, want %d (the marked image and one per attack)", n, len(outs)+1)
	}
	if ext := regexp.MustCompile(`(src|href)="(https?:)?//`).FindString(page); ext != "" {
		t.Errorf("the page fetches something: %s", ext)
	}
	for _, want := range []string{key.ID(), "marked here at PSNR ≥ 42.00 dB and SSIM ≥ 0.9800", "<td>rescale-x0.25</td>", "<b>rotate-90</b>", "payload read", "2 image(s)"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	// A broken expectation shows as a failing table row and a red-framed sample.
	failed := 0
	for _, o := range outs {
		if !o.Passed {
			failed++
		}
	}
	if strings.Count(page, `<figure class="fail">`) != failed || strings.Count(page, `<tr class="fail">`) != failed {
		t.Errorf("%d failing samples and %d failing rows marked, want %d", strings.Count(page, `<figure class="fail">`), strings.Count(page, `<tr class="fail">`), failed)
	}
	if th := Thumbnail(watermark.NewGray(1000, 500, 16)); th.Bounds().Dx() != thumbSide || th.Bounds().Dy() != thumbSide/2 {
		t.Errorf("thumbnail of 1000×500: %v", th.Bounds())
	}
}

func TestShownScore(t *testing.T) {
	for _, c := range []struct {
		r    watermark.Result
		want float64
	}{
		{watermark.Result{Score: 9.5, CoarseScore: 7}, 9.5},
		{watermark.Result{Score: 4.6, CoarseScore: 7.3}, 7.3},
		{watermark.Result{Score: 2, CoarseScore: 0}, 2},
	} {
		if got := shownScore(c.r); got != c.want {
			t.Errorf("shownScore(%+v) = %v, want %v", c.r, got, c.want)
		}
	}
}
