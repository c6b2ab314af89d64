package codec

import (
	"fmt"
	"math"
)

// YBRFullToRGB converts 8-bit, pixel-interleaved YBR_FULL samples (full-range YCbCr, as the
// JPEG decoders here return colour frames) to RGB, with the equations of ITU-T T.871 that
// pydicom's convert_color_space uses, rounding to nearest and clipping to 0..255.
func YBRFullToRGB(ybr []byte) ([]byte, error) {
	if len(ybr)%3 != 0 {
		return nil, fmt.Errorf("YBR_FULL to RGB: %d bytes is not a whole number of 3-sample pixels", len(ybr))
	}
	const (
		crToR = 1.402
		cbToG = -0.114 * 1.772 / 0.587
		crToG = -0.299 * 1.402 / 0.587
		cbToB = 1.772
	)
	clip := func(v float64) byte {
		v = math.Floor(v + 0.5)
		return byte(min(max(v, 0), 255))
	}
	out := make([]byte, len(ybr))
	for i := 0; i < len(ybr); i += 3 {
		y, cb, cr := float64(ybr[i]), float64(ybr[i+1])-128, float64(ybr[i+2])-128
		out[i] = clip(y + crToR*cr)
		out[i+1] = clip(y + cbToG*cb + crToG*cr)
		out[i+2] = clip(y + cbToB*cb)
	}
	return out, nil
}
