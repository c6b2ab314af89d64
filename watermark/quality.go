package watermark

import (
	"fmt"
	"math"
)

// valueRange is a window on an image's values: what a viewer maps to the screen's levels.
type valueRange struct{ lo, span float64 }

// displayRange is the window a viewer shows g in: for 8 bits or fewer its values as they are
// (the bit depth's range), for deeper images the span of its values (their full-range
// window: such images are always windowed to be seen). A mark is as visible as it is large
// against that window: a 16-bit CT slice that holds 2 000 of its 65 536 values, or a 12-bit
// image in a 16-bit PNG, shows a mark at 45 dB of the bit depth 25–30 dB above what 45 dB of
// its window allows.
func displayRange(g *Gray) valueRange {
	if g.BitDepth <= 8 {
		return bitDepthRange(g)
	}
	lo, hi := uint16(math.MaxUint16), uint16(0)
	for _, v := range g.Pix {
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi < lo {
		return valueRange{0, 1}
	}
	return valueRange{float64(lo), math.Max(1, float64(hi)-float64(lo))}
}

// bitDepthRange is the range of g's bit depth, what PSNR and SSIM are defined against.
func bitDepthRange(g *Gray) valueRange { return valueRange{0, g.Max()} }

// PSNR is the peak signal-to-noise ratio in dB of b against a at a's bit depth
// (+Inf when they are equal).
func PSNR(a, b *Gray) (float64, error) {
	return psnrIn(a, b, a.Max())
}

// PSNRDisplay is PSNR against the window a viewer shows a in (displayRange: the bit depth up
// to 8 bits, the span of its values above; at most PSNR): what the embedder holds at
// DefaultPSNR, so that the mark is as faint on an image that uses part of a deep bit depth (a
// CT, an MR, a 12-bit image in a 16-bit file) as on one that uses all of it.
func PSNRDisplay(a, b *Gray) (float64, error) {
	return psnrIn(a, b, displayRange(a).span)
}

// psnrIn is PSNR with peak as the signal's peak.
func psnrIn(a, b *Gray, peak float64) (float64, error) {
	if a.Width != b.Width || a.Height != b.Height {
		return 0, fmt.Errorf("psnr: sizes differ: %d×%d and %d×%d", a.Width, a.Height, b.Width, b.Height)
	}
	var se float64
	for i, v := range a.Pix {
		d := float64(v) - float64(b.Pix[i])
		se += d * d
	}
	if se == 0 {
		return math.Inf(1), nil
	}
	mse := se / float64(len(a.Pix))
	return 10 * math.Log10(peak*peak/mse), nil
}

// DefaultSSIM is the lowest mean SSIM, as displayed, that a marked image may have (the
// invisibility floor is 0.99; the margin covers the estimate's sampling on large images).
const DefaultSSIM = 0.9915

// ssimExactPixels is the image size up to which ssimEstimate computes SSIM exactly;
// ssimSampleWindows about how many windows it averages above.
const (
	ssimExactPixels   = 1 << 18
	ssimSampleWindows = 1 << 15
)

// ssimEstimate is SSIM for images up to ssimExactPixels and, above, the mean over windows
// on a strided grid (every stride-th row and column, about ssimSampleWindows windows: the
// mean of SSIM values this close to 1 needs no more).
// The images are compared as shown in the window vr: values less vr.lo, dynamic range vr.span.
func ssimEstimate(a, b *Gray, vr valueRange) (float64, error) {
	n := a.Width * a.Height
	if n <= ssimExactPixels {
		return ssimIn(a, b, vr)
	}
	stride := int(math.Ceil(math.Sqrt(float64(n) / ssimSampleWindows)))
	return ssimStrided(a, b, stride, vr)
}

// SSIM is the mean structural similarity (Wang et al. 2004: 11×11 Gaussian window σ=1.5,
// K1=0.01, K2=0.03, dynamic range of a's bit depth) of b against a.
func SSIM(a, b *Gray) (float64, error) {
	return ssimIn(a, b, bitDepthRange(a))
}

// SSIMDisplay is SSIM of the images as a viewer shows them (displayRange as the dynamic
// range): what the embedder holds at 0.99.
func SSIMDisplay(a, b *Gray) (float64, error) {
	return ssimIn(a, b, displayRange(a))
}

// ssimIn is SSIM of the images seen in the window vr.
func ssimIn(a, b *Gray, vr valueRange) (float64, error) {
	k, err := ssimWindow(a, b)
	if err != nil {
		return 0, err
	}
	w, h := a.Width, a.Height
	const r = ssimRadius
	n := w * h
	fa, fb := make([]float64, n), make([]float64, n)
	for i := range fa {
		fa[i], fb[i] = float64(a.Pix[i])-vr.lo, float64(b.Pix[i])-vr.lo
	}
	prod := func(x, y []float64) []float64 {
		p := make([]float64, n)
		for i := range p {
			p[i] = x[i] * y[i]
		}
		return p
	}
	// 'valid' filtering: only windows fully inside the image.
	ow, oh := w-2*r, h-2*r
	filt := func(src []float64) []float64 {
		tmp := make([]float64, ow*h)
		for y := 0; y < h; y++ {
			for x := 0; x < ow; x++ {
				v := 0.0
				for i, kv := range k {
					v += kv * src[y*w+x+i]
				}
				tmp[y*ow+x] = v
			}
		}
		out := make([]float64, ow*oh)
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				v := 0.0
				for i, kv := range k {
					v += kv * tmp[(y+i)*ow+x]
				}
				out[y*ow+x] = v
			}
		}
		return out
	}
	ma, mb := filt(fa), filt(fb)
	saa, sbb, sab := filt(prod(fa, fa)), filt(prod(fb, fb)), filt(prod(fa, fb))
	L := vr.span
	c1, c2 := (0.01*L)*(0.01*L), (0.03*L)*(0.03*L)
	total := 0.0
	for i := range ma {
		va := saa[i] - ma[i]*ma[i]
		vb := sbb[i] - mb[i]*mb[i]
		cov := sab[i] - ma[i]*mb[i]
		total += ((2*ma[i]*mb[i] + c1) * (2*cov + c2)) / ((ma[i]*ma[i] + mb[i]*mb[i] + c1) * (va + vb + c2))
	}
	return total / float64(len(ma)), nil
}

// ssimStrided is SSIM's mean over the windows centred on every stride-th row and column.
func ssimStrided(a, b *Gray, stride int, vr valueRange) (float64, error) {
	k, err := ssimWindow(a, b)
	if err != nil {
		return 0, err
	}
	w, h := a.Width, a.Height
	const r = ssimRadius
	L := vr.span
	c1, c2 := (0.01*L)*(0.01*L), (0.03*L)*(0.03*L)
	total, cnt := 0.0, 0
	for cy := r; cy < h-r; cy += stride {
		for cx := r; cx < w-r; cx += stride {
			var ma, mb, saa, sbb, sab float64
			for dy := -r; dy <= r; dy++ {
				ra, rb := a.Pix[(cy+dy)*w:], b.Pix[(cy+dy)*w:]
				for dx := -r; dx <= r; dx++ {
					wt := k[dy+r] * k[dx+r]
					va, vb := float64(ra[cx+dx])-vr.lo, float64(rb[cx+dx])-vr.lo
					ma += wt * va
					mb += wt * vb
					saa += wt * va * va
					sbb += wt * vb * vb
					sab += wt * va * vb
				}
			}
			va, vb, cov := saa-ma*ma, sbb-mb*mb, sab-ma*mb
			total += ((2*ma*mb + c1) * (2*cov + c2)) / ((ma*ma + mb*mb + c1) * (va + vb + c2))
			cnt++
		}
	}
	return total / float64(cnt), nil
}

// ssimRadius is the radius of SSIM's 11×11 window.
const ssimRadius = 5

// ssimWindow checks that a and b can be compared and returns SSIM's 1-D Gaussian window
// (σ = 1.5, 11 taps, summing to 1).
func ssimWindow(a, b *Gray) ([]float64, error) {
	if a.Width != b.Width || a.Height != b.Height {
		return nil, fmt.Errorf("ssim: sizes differ: %d×%d and %d×%d", a.Width, a.Height, b.Width, b.Height)
	}
	if a.Width < 2*ssimRadius+1 || a.Height < 2*ssimRadius+1 {
		return nil, fmt.Errorf("ssim: image %d×%d is smaller than the 11×11 window", a.Width, a.Height)
	}
	k := make([]float64, 2*ssimRadius+1)
	s := 0.0
	for i := range k {
		d := float64(i - ssimRadius)
		k[i] = math.Exp(-d * d / (2 * 1.5 * 1.5))
		s += k[i]
	}
	for i := range k {
		k[i] /= s
	}
	return k, nil
}
