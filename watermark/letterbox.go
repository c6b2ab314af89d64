package watermark

import "math"

// Letterboxing. Training pipelines that keep an image's aspect pad it with constant bands to
// a square (or another input shape). The full search finds the mark in a padded image when
// the cells shrink by at most minScale (images up to about 1.5 times as long as wide); a
// longer image (a whole-body nuclear-medicine scan, a full-spine radiograph) padded to a
// square shrinks them further. The bands are constant lines, which a marked image hardly
// has (the mark reaches nearly every pixel; an attack that clips may make some), so the
// detector cuts them off and reads the image inside when the mark's tile says that is the
// frame it was marked in (letterboxTrim): a choice made from the pixels alone, so the
// hypotheses and their counts stay the same.

// Letterbox settings.
const (
	letterboxMin   = 0.1 // least share of the padded side the bands must cover together
	letterboxSlack = 8   // most difference between two centred bands (JPEG's blocks), in pixels
	letterboxLoss  = 0.2 // share of the whole frame's tile energy the part inside may lose
)

// letterboxTrim says whether to read inside the bands, from the tile energy the whole frame
// and the part inside them gather at their own aspect (ownEnergy): bands that padding added
// put the whole frame's cells off the mark's, so the part inside gathers more; bands that
// an attack clipped (a brightness change that saturates the top rows) leave the whole frame
// as marked, and the part inside, read as a crop, gathers less.
func letterboxTrim(eWhole, eInside float64) bool {
	return eInside >= eWhole-letterboxLoss*math.Abs(eWhole)
}

// ownEnergy is the most tile energy (foldEnergy) gathered at img's own aspect at the cell
// sizes of the large geometry's grids (its own and the self-check's others), all folded from
// the large geometry's whitened field: key-free evidence of a mark at that frame.
func ownEnergy(img *Gray) float64 {
	img = shrinkForReads(img)
	f, _, _ := whitenedField(img, geomLarge)
	fw, fh := workSize(img.Width, img.Height, geomLarge)
	_, _, rw, rh := workRegion(fw, fh, geomLarge)
	e := math.Inf(-1)
	for _, g := range geomLarge.alternatives() {
		r := float64(geomLarge.workShort()) / float64(g.workShort()) // samples per bin of g's tile
		if v, _ := foldEnergy(f, rw, rh, r, r, tileBins); v > e {
			e = v
		}
	}
	return e
}

// Rect is a rectangle of pixels: its top-left corner and its size.
type Rect struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"width"`
	H int `json:"height"`
}

// letterbox returns the part of img inside constant padding bands, and whether there are
// such bands: bands of one value along one axis only (both ends, as centred within
// letterboxSlack px, or one end), covering at least letterboxMin of that side, leaving at
// least MinDetectSide px, and shortening the image's short side. Bands that leave the short
// side as it is leave the cells as they are: the whole frame is read, as its aligned reads
// need when the bands were there when the image was marked (radiographs published with black
// bands above and below, whose bands a lossy step made flat).
func letterbox(img *Gray) (Rect, bool) {
	w, h := img.Width, img.Height
	rowConst := func(y int, v uint16) bool {
		for _, p := range img.Pix[y*w : (y+1)*w] {
			if p != v {
				return false
			}
		}
		return true
	}
	colConst := func(x int, v uint16) bool {
		for y := 0; y < h; y++ {
			if img.Pix[y*w+x] != v {
				return false
			}
		}
		return true
	}
	band := func(n int, at func(int) uint16, isConst func(int, uint16) bool, idx func(int) int) (int, uint16) {
		v := at(idx(0))
		k := 0
		for k < n && isConst(idx(k), v) {
			k++
		}
		return k, v
	}
	same := func(i int) int { return i }
	top, vt := band(h, func(y int) uint16 { return img.Pix[y*w] }, rowConst, same)
	bottom, vb := band(h, func(y int) uint16 { return img.Pix[y*w] }, rowConst, func(i int) int { return h - 1 - i })
	left, vl := band(w, func(x int) uint16 { return img.Pix[x] }, colConst, same)
	right, vr := band(w, func(x int) uint16 { return img.Pix[x] }, colConst, func(i int) int { return w - 1 - i })
	// Bands along one axis only: on the other, the image's content reaches the border.
	accept := func(a, b int, va, vb uint16, side, other int) bool {
		if a+b < int(letterboxMin*float64(side)) || side-a-b < MinDetectSide || other < MinDetectSide {
			return false
		}
		if a > 0 && b > 0 && (va != vb || abs(a-b) > letterboxSlack) {
			return false
		}
		return true
	}
	var r Rect
	switch {
	case left == 0 && right == 0 && top+bottom < h && accept(top, bottom, vt, vb, h, w):
		r = Rect{0, top, w, h - top - bottom}
	case top == 0 && bottom == 0 && left+right < w && accept(left, right, vl, vr, w, h):
		r = Rect{left, 0, w - left - right, h}
	default:
		return Rect{}, false
	}
	return r, min(r.W, r.H) < min(w, h)
}

// subImage copies the rectangle r of img.
func subImage(img *Gray, r Rect) *Gray {
	out := NewGray(r.W, r.H, img.BitDepth)
	for y := 0; y < r.H; y++ {
		copy(out.Pix[y*r.W:(y+1)*r.W], img.Pix[(r.Y+y)*img.Width+r.X:])
	}
	return out
}
