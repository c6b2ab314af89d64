package watermark

import "fmt"

// relianceShare is the share of an image's pixels at an end of its value range from which
// MarkReliance checks where the mark is read.
const relianceShare = 0.25

// Reliance says whether a mark depends on the flat areas an image has at an end of its
// value range (the black surround of an ultrasound sector, a test pattern's white). There
// the mark can only go one way, it is a fraction of a grey level, and only lossless
// operations keep it: JPEG's flat blocks, the rounding after a blur and brightness changes
// that clip remove it.
type Reliance struct {
	// RangeEndShare is the share of the original's pixels at 0 or at the largest value of
	// its bit depth.
	RangeEndShare float64 `json:"range_end_share"`
	// Fragile is true when that share is at least a quarter and no payload is read from the
	// marked image with the mark kept only at the other pixels: the mark will not survive
	// what clips or smooths the flat areas (docs/watermark.md, *Images at scanners' sizes*).
	Fragile bool `json:"fragile"`
}

// MarkReliance checks whether the mark in marked, made from img with key, relies on the
// pixels where img is at an end of its value range. It runs the detector once, and only on
// images with at least a quarter of their pixels there.
func MarkReliance(img, marked *Gray, key Key) (Reliance, error) {
	if err := sameShape(img, marked); err != nil {
		return Reliance{}, fmt.Errorf("mark reliance: %w", err)
	}
	r := Reliance{RangeEndShare: rangeEndShare(img)}
	if r.RangeEndShare < relianceShare {
		return r, nil
	}
	_, rest, _, err := splitAtRangeEnds(img, marked)
	if err != nil {
		return r, fmt.Errorf("mark reliance: %w", err)
	}
	res, err := Detect(rest, key)
	if err != nil {
		return r, fmt.Errorf("mark reliance: %w", err)
	}
	r.Fragile = res.Payload == nil
	return r, nil
}

// splitAtRangeEnds returns img with marked's values only where img is at an end of its
// value range (ends) and only elsewhere (rest), and the share of those pixels.
func splitAtRangeEnds(img, marked *Gray) (ends, rest *Gray, share float64, err error) {
	if err := sameShape(img, marked); err != nil {
		return nil, nil, 0, err
	}
	top := uint16(img.Max())
	ends, rest = img.Clone(), img.Clone()
	n := 0
	for i, v := range img.Pix {
		if v == 0 || v == top {
			ends.Pix[i] = marked.Pix[i]
			n++
		} else {
			rest.Pix[i] = marked.Pix[i]
		}
	}
	return ends, rest, float64(n) / float64(len(img.Pix)), nil
}

// rangeEndShare is the share of img's pixels at 0 or at the largest value of its bit depth.
func rangeEndShare(img *Gray) float64 {
	top := uint16(img.Max())
	n := 0
	for _, v := range img.Pix {
		if v == 0 || v == top {
			n++
		}
	}
	return float64(n) / float64(len(img.Pix))
}

// sameShape says whether marked has img's size and bit depth.
func sameShape(img, marked *Gray) error {
	if img.Width != marked.Width || img.Height != marked.Height || img.BitDepth != marked.BitDepth {
		return fmt.Errorf("the marked image (%d×%d, %d bits) is not the original's shape (%d×%d, %d bits)",
			marked.Width, marked.Height, marked.BitDepth, img.Width, img.Height, img.BitDepth)
	}
	return nil
}
