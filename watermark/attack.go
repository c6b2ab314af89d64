package watermark

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// Expectation is what an attack must leave intact.
type Expectation string

const (
	// ExpectPayload means the payload must be recovered exactly.
	ExpectPayload Expectation = "payload"
	// ExpectPresence means the mark must be detected; the payload may be lost.
	ExpectPresence Expectation = "presence"
)

// Attack is one operation of the robustness suite.
type Attack struct {
	Name   string                     `json:"name"`
	Expect Expectation                `json:"expect"`
	Apply  func(*Gray) (*Gray, error) `json:"-"`
}

// Suite is the robustness suite: what happens to images in real pipelines.
func Suite() []Attack {
	pay, pres := ExpectPayload, ExpectPresence
	return []Attack{
		{"none", pay, func(g *Gray) (*Gray, error) { return g.Clone(), nil }},
		{"jpeg-q90", pay, func(g *Gray) (*Gray, error) { return JPEGRoundTrip(g, 90) }},
		{"jpeg-q75", pay, func(g *Gray) (*Gray, error) { return JPEGRoundTrip(g, 75) }},
		{"jpeg-q50", pres, func(g *Gray) (*Gray, error) { return JPEGRoundTrip(g, 50) }},
		{"rescale-x0.5", pay, func(g *Gray) (*Gray, error) { return Rescale(g, 0.5), nil }},
		{"rescale-x2", pay, func(g *Gray) (*Gray, error) { return Rescale(g, 2), nil }},
		{"rescale-x0.25", pres, func(g *Gray) (*Gray, error) { return Rescale(g, 0.25), nil }},
		{"resize-224x224", pay, func(g *Gray) (*Gray, error) { return Resize(g, 224, 224), nil }},
		{"pad-square", pay, func(g *Gray) (*Gray, error) { return PadSquare(g), nil }},
		{"crop-80%-to-224x224", pay, func(g *Gray) (*Gray, error) { return Resize(CropArea(g, 0.8), 224, 224), nil }},
		{"crop-75%", pay, func(g *Gray) (*Gray, error) { return CropArea(g, 0.75), nil }},
		{"crop-50%", pres, func(g *Gray) (*Gray, error) { return CropArea(g, 0.5), nil }},
		{"noise-2%", pay, func(g *Gray) (*Gray, error) { return AddNoise(g, 0.02, 1), nil }},
		{"blur-1px", pay, func(g *Gray) (*Gray, error) { return Blur(g, 1), nil }},
		{"brightness+20%", pay, func(g *Gray) (*Gray, error) { return Brightness(g, 0.2), nil }},
		{"brightness-20%", pay, func(g *Gray) (*Gray, error) { return Brightness(g, -0.2), nil }},
		{"contrast+20%", pay, func(g *Gray) (*Gray, error) { return Contrast(g, 1.2), nil }},
		{"contrast-20%", pay, func(g *Gray) (*Gray, error) { return Contrast(g, 0.8), nil }},
		{"window-level-8bit", pay, func(g *Gray) (*Gray, error) { return WindowTo8Bit(g, 0.6), nil }},
		{"equalise-8bit", pay, func(g *Gray) (*Gray, error) { return Equalise8Bit(g), nil }},
		{"rotate-90", pay, func(g *Gray) (*Gray, error) { return Orient(g, 5), nil }},
		{"rotate-180", pay, func(g *Gray) (*Gray, error) { return Orient(g, 3), nil }},
		{"rotate-270", pay, func(g *Gray) (*Gray, error) { return Orient(g, 6), nil }},
		{"flip-horizontal", pay, func(g *Gray) (*Gray, error) { return Orient(g, 1), nil }},
		{"flip-vertical", pay, func(g *Gray) (*Gray, error) { return Orient(g, 2), nil }},
		{"transpose", pay, func(g *Gray) (*Gray, error) { return Orient(g, 4), nil }},
	}
}

// AttackOutcome is the result of one attack on one image.
type AttackOutcome struct {
	Attack string      `json:"attack"`
	Expect Expectation `json:"expect"`
	Result Result      `json:"result"`
	// PayloadOK is true when the decoded payload equals the embedded one.
	PayloadOK bool `json:"payload_ok"`
	// Passed is true when the expectation was met.
	Passed bool `json:"passed"`
	// Image is the attacked image (for writing out); not serialised.
	Image *Gray  `json:"-"`
	Err   string `json:"error,omitempty"`
}

// RunSuite applies every attack of the suite to a marked image and detects the mark in each
// result; want is the payload that was embedded.
func RunSuite(ctx context.Context, marked *Gray, key Key, want Payload, attacks []Attack) ([]AttackOutcome, error) {
	out := make([]AttackOutcome, 0, len(attacks))
	for _, a := range attacks {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		o := AttackOutcome{Attack: a.Name, Expect: a.Expect}
		img, err := a.Apply(marked)
		if err != nil {
			o.Err = err.Error()
			out = append(out, o)
			continue
		}
		o.Image = img
		r, err := Detect(img, key)
		if err != nil {
			o.Err = err.Error()
			out = append(out, o)
			continue
		}
		o.Result = r
		o.PayloadOK = r.Payload != nil && *r.Payload == want
		if a.Expect == ExpectPayload {
			o.Passed = o.PayloadOK
		} else {
			o.Passed = r.Present && (r.Payload == nil || *r.Payload == want)
		}
		out = append(out, o)
	}
	return out, nil
}

// To8Bit maps the image's value range [lo, hi] linearly onto 0..255 with clipping: the export
// a viewer does.
func To8Bit(g *Gray, lo, hi float64) *Gray {
	out := NewGray(g.Width, g.Height, 8)
	if hi <= lo {
		hi = lo + 1
	}
	s := 255 / (hi - lo)
	for i, v := range g.Pix {
		out.Pix[i] = uint16(math.Max(0, math.Min(255, math.Round((float64(v)-lo)*s))))
	}
	return out
}

// fullRange returns the smallest and largest value.
func fullRange(g *Gray) (float64, float64) {
	lo, hi := uint16(math.MaxUint16), uint16(0)
	for _, v := range g.Pix {
		lo, hi = min(lo, v), max(hi, v)
	}
	return float64(lo), float64(hi)
}

// JPEGRoundTrip exports the image to 8 bits (its full value range; 8-bit images unchanged),
// encodes it as baseline JPEG at quality q and decodes it: an 8-bit image.
func JPEGRoundTrip(g *Gray, q int) (*Gray, error) {
	src := g
	if g.BitDepth != 8 {
		lo, hi := fullRange(g)
		src = To8Bit(g, lo, hi)
	}
	im := image.NewGray(image.Rect(0, 0, g.Width, g.Height))
	for i, v := range src.Pix {
		im.Pix[i] = uint8(v)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, im, &jpeg.Options{Quality: q}); err != nil {
		return nil, fmt.Errorf("jpeg encode: %w", err)
	}
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		return nil, fmt.Errorf("jpeg decode: %w", err)
	}
	out := NewGray(g.Width, g.Height, 8)
	b := dec.Bounds()
	for y := 0; y < g.Height; y++ {
		for x := 0; x < g.Width; x++ {
			c := dec.At(b.Min.X+x, b.Min.Y+y)
			r, _, _, _ := c.RGBA()
			out.Pix[y*g.Width+x] = uint16(r >> 8)
		}
	}
	return out, nil
}

// Rescale resizes by factor f (area averaging when shrinking, linear when enlarging).
func Rescale(g *Gray, f float64) *Gray {
	w, h := max(1, int(math.Round(float64(g.Width)*f))), max(1, int(math.Round(float64(g.Height)*f)))
	return Resize(g, w, h)
}

// Resize resizes to w×h whatever the aspect (area averaging when shrinking, linear when
// enlarging, per axis): what a training pipeline does to reach its fixed input size.
func Resize(g *Gray, w, h int) *Gray {
	v, _ := resampleGray(g, w, h, false)
	return fromFloats(v, w, h, g.BitDepth)
}

func fromFloats(v []float32, w, h, bits int) *Gray {
	out := NewGray(w, h, bits)
	m := out.Max()
	for i, f := range v {
		out.Pix[i] = uint16(math.Max(0, math.Min(m, math.Round(float64(f)))))
	}
	return out
}

// PadSquare centres the image on a black square whose side is its long side: the
// letterboxing some training pipelines do instead of stretching.
func PadSquare(g *Gray) *Gray {
	s := max(g.Width, g.Height)
	out := NewGray(s, s, g.BitDepth)
	x0, y0 := (s-g.Width)/2, (s-g.Height)/2
	for y := 0; y < g.Height; y++ {
		copy(out.Pix[(y0+y)*s+x0:], g.Pix[y*g.Width:(y+1)*g.Width])
	}
	return out
}

// CropArea keeps a rectangle with the given share of the area, with the image's aspect,
// placed off-centre (a quarter of the spare margin from the top-left corner).
func CropArea(g *Gray, area float64) *Gray {
	s := math.Sqrt(area)
	w, h := int(math.Round(float64(g.Width)*s)), int(math.Round(float64(g.Height)*s))
	x0, y0 := (g.Width-w)/4, (g.Height-h)/4
	return Crop(g, x0, y0, w, h)
}

// Crop returns the w×h rectangle at (x0, y0).
func Crop(g *Gray, x0, y0, w, h int) *Gray {
	out := NewGray(w, h, g.BitDepth)
	for y := 0; y < h; y++ {
		copy(out.Pix[y*w:(y+1)*w], g.Pix[(y0+y)*g.Width+x0:(y0+y)*g.Width+x0+w])
	}
	return out
}

// AddNoise adds Gaussian noise with standard deviation frac of the image's value range
// (largest minus smallest value, as for the 8-bit export), from a fixed seed, clipped to the
// bit depth.
func AddNoise(g *Gray, frac float64, seed uint64) *Gray {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := g.Clone()
	m := g.Max()
	lo, hi := fullRange(g)
	sd := frac * math.Max(1, hi-lo)
	for i, v := range g.Pix {
		out.Pix[i] = uint16(math.Max(0, math.Min(m, math.Round(float64(v)+sd*rng.NormFloat64()))))
	}
	return out
}

// Blur applies a Gaussian blur of standard deviation sigma pixels.
func Blur(g *Gray, sigma float64) *Gray {
	r := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*r+1)
	s := 0.0
	for i := range k {
		d := float64(i - r)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		s += k[i]
	}
	for i := range k {
		k[i] /= s
	}
	w, h := g.Width, g.Height
	tmp := make([]float64, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			a := 0.0
			for i, kv := range k {
				a += kv * float64(g.Pix[y*w+clampInt(x+i-r, 0, w-1)])
			}
			tmp[y*w+x] = a
		}
	}
	out := NewGray(w, h, g.BitDepth)
	m := g.Max()
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			a := 0.0
			for i, kv := range k {
				a += kv * tmp[clampInt(y+i-r, 0, h-1)*w+x]
			}
			out.Pix[y*w+x] = uint16(math.Max(0, math.Min(m, math.Round(a))))
		}
	}
	return out
}

// Brightness adds frac of the image's value range (largest minus smallest value) to every
// value, clipped to the bit depth.
func Brightness(g *Gray, frac float64) *Gray {
	out := g.Clone()
	m := g.Max()
	lo, hi := fullRange(g)
	d := frac * math.Max(1, hi-lo)
	for i, v := range g.Pix {
		out.Pix[i] = uint16(math.Max(0, math.Min(m, math.Round(float64(v)+d))))
	}
	return out
}

// Contrast scales the deviations from the mean value by f, with clipping.
func Contrast(g *Gray, f float64) *Gray {
	mean := 0.0
	for _, v := range g.Pix {
		mean += float64(v)
	}
	mean /= float64(len(g.Pix))
	out := g.Clone()
	m := g.Max()
	for i, v := range g.Pix {
		out.Pix[i] = uint16(math.Max(0, math.Min(m, math.Round((float64(v)-mean)*f+mean))))
	}
	return out
}

// WindowTo8Bit applies a viewer's window/level and exports 8 bits: the window is centred on the
// median value and is width times the 1–99 % percentile range wide.
func WindowTo8Bit(g *Gray, width float64) *Gray {
	v := append([]uint16(nil), g.Pix...)
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	p1, p50, p99 := float64(v[len(v)/100]), float64(v[len(v)/2]), float64(v[len(v)*99/100])
	ww := math.Max(1, width*(p99-p1))
	return To8Bit(g, p50-ww/2, p50+ww/2)
}

// Equalise8Bit maps the image through its cumulative histogram onto 0..255: the global
// histogram equalisation many chest X-ray pipelines apply before training.
func Equalise8Bit(g *Gray) *Gray {
	hist := make([]int, int(g.Max())+1)
	for _, v := range g.Pix {
		hist[v]++
	}
	lut := make([]uint16, len(hist))
	c := 0
	for i, h := range hist {
		c += h
		lut[i] = uint16(math.Round(255 * float64(c) / float64(len(g.Pix))))
	}
	out := NewGray(g.Width, g.Height, 8)
	for i, v := range g.Pix {
		out.Pix[i] = lut[v]
	}
	return out
}

// Orient applies one of the 8 orientations d (bit 2: transpose, bit 0: flip columns,
// bit 1: flip rows): 5 is a 90° clockwise rotation, 3 is 180°, 6 is 270°.
func Orient(g *Gray, d int) *Gray {
	w, h := g.Width, g.Height
	ow, oh := w, h
	if d&4 != 0 {
		ow, oh = h, w
	}
	out := NewGray(ow, oh, g.BitDepth)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			xx, yy := x, y
			if d&4 != 0 {
				xx, yy = y, x
			}
			if d&1 != 0 {
				xx = ow - 1 - xx
			}
			if d&2 != 0 {
				yy = oh - 1 - yy
			}
			out.Pix[yy*ow+xx] = g.Pix[y*w+x]
		}
	}
	return out
}

// SuiteRow sums up one attack over many images.
type SuiteRow struct {
	Attack        string      `json:"attack"`
	Expect        Expectation `json:"expect"`
	Images        int         `json:"images"`
	Present       int         `json:"present"`
	PayloadOK     int         `json:"payload_ok"`
	Passed        int         `json:"passed"`
	MinScore      float64     `json:"min_score"`
	MaxFP         float64     `json:"max_false_positive_probability"`
	MeanBitErrors float64     `json:"mean_corrected_bits"`
}

// Summarize turns per-image outcomes (one RunSuite result per image) into one row per attack,
// in suite order.
func Summarize(runs [][]AttackOutcome) []SuiteRow {
	var rows []SuiteRow
	idx := map[string]int{}
	bitSums := map[string]int{}
	for _, run := range runs {
		for _, o := range run {
			i, ok := idx[o.Attack]
			if !ok {
				i = len(rows)
				idx[o.Attack] = i
				rows = append(rows, SuiteRow{Attack: o.Attack, Expect: o.Expect, MinScore: math.Inf(1)})
			}
			r := &rows[i]
			r.Images++
			if o.Result.Present {
				r.Present++
			}
			if o.PayloadOK {
				r.PayloadOK++
				bitSums[o.Attack] += o.Result.BitErrors
			}
			if o.Passed {
				r.Passed++
			}
			r.MinScore = math.Min(r.MinScore, o.Result.Score)
			if o.Err == "" {
				r.MaxFP = math.Max(r.MaxFP, o.Result.FalsePositive)
			} else {
				r.MaxFP = 1
			}
		}
	}
	for i := range rows {
		if rows[i].PayloadOK > 0 {
			rows[i].MeanBitErrors = float64(bitSums[rows[i].Attack]) / float64(rows[i].PayloadOK)
		}
		if math.IsInf(rows[i].MinScore, 1) {
			rows[i].MinScore = 0
		}
	}
	return rows
}

// FormatTable renders rows as a Markdown table.
func FormatTable(rows []SuiteRow) string {
	var b strings.Builder
	b.WriteString("| attack | must keep | passed | mark present | payload exact | min score (σ) | max FP probability | mean corrected bits |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d/%d | %d/%d | %d/%d | %.1f | %.1e | %.1f |\n", r.Attack, r.Expect,
			r.Passed, r.Images, r.Present, r.Images, r.PayloadOK, r.Images, r.MinScore, r.MaxFP, r.MeanBitErrors)
	}
	return b.String()
}
