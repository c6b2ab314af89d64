package dicomio

import (
	"encoding/binary"
	"fmt"
	"math"
)

// PixelValues says what the values of a float frame mean.
type PixelValues string

const (
	// ValuesUnit: float values in [0,1] as a generator outputs them (values outside are clamped).
	ValuesUnit PixelValues = "unit"
	// ValuesModality: float values in modality units (Hounsfield units for CT, for example).
	ValuesModality PixelValues = "modality"
	// ValuesStored: integer values are stored values (with SyntheticImage.Rescale, if any,
	// mapping them to modality values). Integer frames always mean this.
	ValuesStored PixelValues = "stored"
)

// Rescale is a linear Modality LUT: modality value = stored value × Slope + Intercept.
type Rescale struct {
	Slope     float64 `json:"slope"`
	Intercept float64 `json:"intercept"`
}

// Window is a linear VOI window in modality values.
type Window struct {
	Center float64 `json:"center"`
	Width  float64 `json:"width"`
}

// quantized is a frame ready to be written: stored values and how they map to modality values.
type quantized struct {
	img     *Image // U8 (BitsAllocated 8) or U16 (BitsAllocated 16), BitsStored set
	rescale Rescale
	values  PixelValues
}

// validateFrame checks the shape of a generated frame against its value slice.
func synthValidateFrame(img *Image) (n int, err error) {
	if img == nil {
		return 0, fmt.Errorf("no pixels")
	}
	if img.Rows <= 0 || img.Columns <= 0 || img.Rows > 65535 || img.Columns > 65535 {
		return 0, fmt.Errorf("frame size %d×%d out of range 1–65535", img.Rows, img.Columns)
	}
	frames, samples := max(img.Frames, 1), max(img.Samples, 1)
	if samples != 1 && samples != 3 {
		return 0, fmt.Errorf("%d samples per pixel: only 1 (grey) or 3 (RGB) can be written", samples)
	}
	n = img.Rows * img.Columns * frames * samples
	set, have := 0, 0
	for _, l := range []int{len(img.U8), len(img.I8), len(img.U16), len(img.I16), len(img.U32), len(img.I32), len(img.F32), len(img.F64)} {
		if l > 0 {
			set++
			have = l
		}
	}
	if set != 1 {
		return 0, fmt.Errorf("exactly one pixel slice must be set, found %d", set)
	}
	if have != n {
		return 0, fmt.Errorf("%d values for %d frame(s) of %d×%d×%d", have, frames, img.Rows, img.Columns, samples)
	}
	return n, nil
}

// isFloatFrame reports whether img holds float values.
func synthIsFloat(img *Image) bool { return len(img.F32) > 0 || len(img.F64) > 0 }

// frameValue returns value i of img as float64, whichever slice holds it.
func synthFrameValue(img *Image, i int) float64 {
	switch {
	case img.U8 != nil:
		return float64(img.U8[i])
	case img.I8 != nil:
		return float64(img.I8[i])
	case img.U16 != nil:
		return float64(img.U16[i])
	case img.I16 != nil:
		return float64(img.I16[i])
	case img.U32 != nil:
		return float64(img.U32[i])
	case img.I32 != nil:
		return float64(img.I32[i])
	case img.F32 != nil:
		return float64(img.F32[i])
	default:
		return img.F64[i]
	}
}

// quantizeFrame converts a generated frame to stored values of bits bits (8, 12 or 16).
//
//   - unit floats: stored = round(v × (2^bits − 1)); the Modality LUT maps the stored range onto
//     unitRange when given (the modality values of 0 and 1), else it is the identity.
//   - modality floats: integral values whose range fits are stored exactly (offset by the minimum
//     when needed, slope 1); otherwise the range [min,max] is spread over 0 … 2^bits − 1.
//   - integer frames are stored values (rescale maps them to modality values); they are offset by
//     their minimum when they do not fit the unsigned range, and rejected when their range does not.
func quantizeFrame(img *Image, n, bits int, values PixelValues, unitRange *[2]float64, rescale *Rescale) (*quantized, error) {
	maxStored := float64(int(1)<<bits - 1)
	stored := make([]uint16, n)
	q := &quantized{rescale: Rescale{Slope: 1}}
	switch {
	case synthIsFloat(img) && values != ValuesModality:
		if values != "" && values != ValuesUnit {
			return nil, fmt.Errorf("float pixels must be %q or %q values, not %q", ValuesUnit, ValuesModality, values)
		}
		q.values = ValuesUnit
		for i := range n {
			v := synthFrameValue(img, i)
			if math.IsNaN(v) {
				v = 0
			}
			stored[i] = uint16(math.Round(math.Min(1, math.Max(0, v)) * maxStored))
		}
		if unitRange != nil {
			lo, hi := unitRange[0], unitRange[1]
			if !(hi > lo) || math.IsInf(hi-lo, 0) {
				return nil, fmt.Errorf("unit range [%g,%g] is empty", lo, hi)
			}
			q.rescale = Rescale{Slope: (hi - lo) / maxStored, Intercept: lo}
		}
	case synthIsFloat(img):
		q.values = ValuesModality
		lo, hi, integral := math.Inf(1), math.Inf(-1), true
		for i := range n {
			v := synthFrameValue(img, i)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("pixel %d is %g: modality values must be finite", i, v)
			}
			lo, hi = math.Min(lo, v), math.Max(hi, v)
			if v != math.Trunc(v) {
				integral = false
			}
		}
		switch {
		case integral && hi-lo <= maxStored:
			off := 0.0
			if lo < 0 || hi > maxStored {
				off = lo
			}
			q.rescale = Rescale{Slope: 1, Intercept: off}
			for i := range n {
				stored[i] = uint16(synthFrameValue(img, i) - off)
			}
		default:
			slope := (hi - lo) / maxStored
			if slope == 0 {
				slope = 1
			}
			q.rescale = Rescale{Slope: slope, Intercept: lo}
			for i := range n {
				stored[i] = uint16(math.Min(maxStored, math.Round((synthFrameValue(img, i)-lo)/slope)))
			}
		}
	default:
		q.values = ValuesStored
		if rescale != nil {
			if rescale.Slope == 0 || math.IsNaN(rescale.Slope) || math.IsNaN(rescale.Intercept) {
				return nil, fmt.Errorf("rescale slope %g, intercept %g is not a valid mapping", rescale.Slope, rescale.Intercept)
			}
			q.rescale = *rescale
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for i := range n {
			v := synthFrameValue(img, i)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		off := 0.0
		if lo < 0 || hi > maxStored {
			if hi-lo > maxStored {
				return nil, fmt.Errorf("integer values span %g … %g, more than %d bits hold; choose a larger bit depth", lo, hi, bits)
			}
			off = lo
			q.rescale.Intercept += q.rescale.Slope * off
		}
		for i := range n {
			stored[i] = uint16(synthFrameValue(img, i) - off)
		}
	}
	out := &Image{
		Rows: img.Rows, Columns: img.Columns, Frames: max(img.Frames, 1), Samples: max(img.Samples, 1),
		BitsStored: bits, Photometric: img.Photometric,
	}
	if bits == 8 {
		out.BitsAllocated = 8
		out.U8 = make([]uint8, n)
		for i, v := range stored {
			out.U8[i] = uint8(v)
		}
	} else {
		out.BitsAllocated = 16
		out.U16 = stored
	}
	q.img = out
	return q, nil
}

// storedBytes returns the native little-endian Pixel Data bytes of a stored image (padded to an
// even length) and checks that every value fits in BitsStored.
func synthStoredBytes(img *Image) ([]byte, error) {
	limit := uint32(1)<<img.BitsStored - 1
	switch img.BitsAllocated {
	case 8:
		if len(img.U8) == 0 {
			return nil, fmt.Errorf("8-bit stored image without 8-bit values")
		}
		b := make([]byte, len(img.U8), len(img.U8)+1)
		copy(b, img.U8)
		if len(b)%2 == 1 {
			b = append(b, 0)
		}
		return b, nil
	case 16:
		if len(img.U16) == 0 {
			return nil, fmt.Errorf("16-bit stored image without 16-bit values")
		}
		b := make([]byte, 2*len(img.U16))
		for i, v := range img.U16 {
			if uint32(v) > limit {
				return nil, fmt.Errorf("stored value %d at %d does not fit %d bits", v, i, img.BitsStored)
			}
			binary.LittleEndian.PutUint16(b[2*i:], v)
		}
		return b, nil
	}
	return nil, fmt.Errorf("bits allocated %d cannot be written", img.BitsAllocated)
}
