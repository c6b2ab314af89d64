package codec

import (
	"image/color"
	"testing"
)

// TestYBRFullToRGB converts colours encoded with Go's full-range YCbCr (the same JFIF
// equations) back to RGB, within rounding.
func TestYBRFullToRGB(t *testing.T) {
	cases := [][3]uint8{{0, 0, 0}, {255, 255, 255}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {128, 64, 200}, {12, 250, 99}}
	for _, c := range cases {
		y, cb, cr := color.RGBToYCbCr(c[0], c[1], c[2])
		got, err := YBRFullToRGB([]byte{y, cb, cr})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if d := int(got[i]) - int(c[i]); d < -2 || d > 2 {
				t.Errorf("RGB %v → YCbCr (%d,%d,%d) → %v", c, y, cb, cr, got)
				break
			}
		}
	}
	if _, err := YBRFullToRGB([]byte{1, 2}); err == nil {
		t.Error("no error for a partial pixel")
	}
}
