package dicomio

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"slices"
	"strings"
)

// Len is the number of stored samples in the image (frames × rows × columns × samples).
func (im *Image) Len() int {
	switch {
	case im.U8 != nil:
		return len(im.U8)
	case im.I8 != nil:
		return len(im.I8)
	case im.U16 != nil:
		return len(im.U16)
	case im.I16 != nil:
		return len(im.I16)
	case im.U32 != nil:
		return len(im.U32)
	case im.I32 != nil:
		return len(im.I32)
	case im.F32 != nil:
		return len(im.F32)
	case im.F64 != nil:
		return len(im.F64)
	}
	return 0
}

// At returns stored sample i (C order) as a float64.
func (im *Image) At(i int) float64 {
	switch {
	case im.U8 != nil:
		return float64(im.U8[i])
	case im.I8 != nil:
		return float64(im.I8[i])
	case im.U16 != nil:
		return float64(im.U16[i])
	case im.I16 != nil:
		return float64(im.I16[i])
	case im.U32 != nil:
		return float64(im.U32[i])
	case im.I32 != nil:
		return float64(im.I32[i])
	case im.F32 != nil:
		return float64(im.F32[i])
	case im.F64 != nil:
		return im.F64[i]
	}
	return 0
}

// DType names the element type of the stored values as numpy does ("uint8", "int16", ...).
func (im *Image) DType() string {
	switch {
	case im.U8 != nil:
		return "uint8"
	case im.I8 != nil:
		return "int8"
	case im.U16 != nil:
		return "uint16"
	case im.I16 != nil:
		return "int16"
	case im.U32 != nil:
		return "uint32"
	case im.I32 != nil:
		return "int32"
	case im.F32 != nil:
		return "float32"
	case im.F64 != nil:
		return "float64"
	}
	return ""
}

// PixelSHA256 is the hex SHA-256 of the stored values in C order (frames, rows, columns,
// samples), little endian, in the image's element type: the smallest integer type that holds
// them (uint8/int8 for ≤ 8 bits allocated, else uint16/int16, uint32/int32 for 32 bits) or
// float for float pixel data. Equal pixels give equal hashes whatever the file's encoding.
func (im *Image) PixelSHA256() string {
	h := sha256.New()
	im.writeLE(h)
	return hex.EncodeToString(h.Sum(nil))
}

// writeLE writes the stored values little endian to h, in chunks.
func (im *Image) writeLE(h hash.Hash) {
	var buf [8192]byte
	n := im.Len()
	width := 0
	switch im.DType() {
	case "uint8", "int8":
		if im.U8 != nil {
			h.Write(im.U8)
			return
		}
		width = 1
	case "uint16", "int16":
		width = 2
	case "uint32", "int32", "float32":
		width = 4
	case "float64":
		width = 8
	}
	per := len(buf) / max(width, 1)
	for start := 0; start < n; start += per {
		end := min(start+per, n)
		b := buf[:0]
		for i := start; i < end; i++ {
			switch {
			case im.I8 != nil:
				b = append(b, byte(im.I8[i]))
			case im.U16 != nil:
				b = binary.LittleEndian.AppendUint16(b, im.U16[i])
			case im.I16 != nil:
				b = binary.LittleEndian.AppendUint16(b, uint16(im.I16[i]))
			case im.U32 != nil:
				b = binary.LittleEndian.AppendUint32(b, im.U32[i])
			case im.I32 != nil:
				b = binary.LittleEndian.AppendUint32(b, uint32(im.I32[i]))
			case im.F32 != nil:
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(im.F32[i]))
			case im.F64 != nil:
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(im.F64[i]))
			}
		}
		h.Write(b)
	}
}

// IsMonochrome reports whether the photometric interpretation is MONOCHROME1 or MONOCHROME2.
func IsMonochrome(photometric string) bool {
	return strings.HasPrefix(strings.ToUpper(photometric), "MONOCHROME")
}

// ModalityFrame returns the modality values of one frame (0-based) of a single-sample image:
// stored values through Rescale Slope and Intercept. padding marks the pixels whose stored
// value is the Pixel Padding Value (or within the padding range); they carry no anatomy.
func ModalityFrame(in *Instance, im *Image, frame int) (values []float64, padding []bool, err error) {
	if im.Samples != 1 {
		return nil, nil, fmt.Errorf("modality values of %s: %d samples per pixel (%s)", in.Path, im.Samples, im.Photometric)
	}
	if frame < 0 || frame >= im.Frames {
		return nil, nil, fmt.Errorf("modality values of %s: frame %d of %d", in.Path, frame, im.Frames)
	}
	px := im.Rows * im.Columns
	base := frame * px
	values = make([]float64, px)
	padding = make([]bool, px)
	slope, icpt := in.RescaleSlope, in.RescaleIntercept
	if slope == 0 {
		slope = 1
	}
	lo, hi, pad := pixelPaddingRange(in)
	for i := range values {
		s := im.At(base + i)
		if pad && s >= lo && s <= hi {
			padding[i] = true
		}
		values[i] = s*slope + icpt
	}
	return values, padding, nil
}

// pixelPaddingRange returns the stored-value range that marks padding.
func pixelPaddingRange(in *Instance) (lo, hi float64, ok bool) {
	if in.PaddingValue == nil {
		return 0, 0, false
	}
	lo = float64(*in.PaddingValue)
	hi = lo
	if in.PaddingRangeEnd != nil {
		hi = float64(*in.PaddingRangeEnd)
		if hi < lo {
			lo, hi = hi, lo
		}
	}
	return lo, hi, true
}

// DisplayOptions choose the VOI window of display images.
type DisplayOptions struct {
	// IgnoreFileWindow computes the window from percentiles even when the file has one.
	IgnoreFileWindow bool
	// LowPercentile and HighPercentile (0–100) bound the computed window; zero values mean
	// 0.5 and 99.5.
	LowPercentile, HighPercentile float64
}

// DisplayImage is one frame ready for a viewer or a model: values in [0, 1], Channels
// samples per pixel (1 grey, 3 RGB), rows then columns then channels.
type DisplayImage struct {
	Rows, Columns, Channels int
	Pix                     []float32
	// WindowCenter and WindowWidth are the VOI window applied to monochrome modality values;
	// FromFile says whether it came from the file.
	WindowCenter, WindowWidth float64
	FromFile                  bool
}

// ErrNoDisplay is returned for photometric interpretations the display path does not map.
var ErrNoDisplay = errors.New("no display mapping")

// DisplayFrame maps one frame (0-based) to a display image. Monochrome: modality values
// (rescale applied), a VOI window (the file's first Window Center/Width, else percentiles of
// the non-padding pixels), padding shown black, MONOCHROME1 inverted so that larger is
// brighter. RGB and YBR_FULL: converted to RGB and scaled by the stored range.
func DisplayFrame(in *Instance, im *Image, frame int, opt DisplayOptions) (DisplayImage, error) {
	out := DisplayImage{Rows: im.Rows, Columns: im.Columns}
	if frame < 0 || frame >= im.Frames {
		return out, fmt.Errorf("display %s: frame %d of %d", in.Path, frame, im.Frames)
	}
	photometric := strings.ToUpper(im.Photometric)
	if IsMonochrome(photometric) && im.Samples == 1 {
		return displayMonochrome(in, im, frame, opt)
	}
	if im.Samples != 3 {
		return out, fmt.Errorf("display %s: %w for %s with %d samples per pixel", in.Path, ErrNoDisplay, im.Photometric, im.Samples)
	}
	px := im.Rows * im.Columns
	base := frame * px * 3
	bits := im.BitsStored
	if bits <= 0 {
		bits = im.BitsAllocated
	}
	scale := 1 / (math.Exp2(float64(bits)) - 1)
	out.Channels = 3
	out.Pix = make([]float32, px*3)
	switch photometric {
	case "RGB", "YBR_RCT", "YBR_ICT":
		// Codecs return RCT/ICT data already converted to RGB.
		for i := range out.Pix {
			out.Pix[i] = float32(clamp01(im.At(base+i) * scale))
		}
	case "YBR_FULL", "YBR_FULL_422":
		full := math.Exp2(float64(bits)) - 1
		half := (full + 1) / 2
		for p := 0; p < px; p++ {
			y, cb, cr := im.At(base+3*p), im.At(base+3*p+1)-half, im.At(base+3*p+2)-half
			out.Pix[3*p] = float32(clamp01((y + 1.402*cr) / full))
			out.Pix[3*p+1] = float32(clamp01((y - 0.344136*cb - 0.714136*cr) / full))
			out.Pix[3*p+2] = float32(clamp01((y + 1.772*cb) / full))
		}
	default:
		return out, fmt.Errorf("display %s: %w for %s", in.Path, ErrNoDisplay, im.Photometric)
	}
	return out, nil
}

func clamp01(v float64) float64 {
	switch {
	case v < 0 || math.IsNaN(v):
		return 0
	case v > 1:
		return 1
	}
	return v
}

func displayMonochrome(in *Instance, im *Image, frame int, opt DisplayOptions) (DisplayImage, error) {
	out := DisplayImage{Rows: im.Rows, Columns: im.Columns, Channels: 1}
	values, padding, err := ModalityFrame(in, im, frame)
	if err != nil {
		return out, err
	}
	center, width, fromFile := 0.0, 0.0, false
	if !opt.IgnoreFileWindow && len(in.WindowCenter) > 0 && len(in.WindowWidth) > 0 && in.WindowWidth[0] >= 1 {
		center, width, fromFile = in.WindowCenter[0], in.WindowWidth[0], true
	} else {
		lo, hi := opt.LowPercentile, opt.HighPercentile
		if lo == 0 && hi == 0 {
			lo, hi = 0.5, 99.5
		}
		plo, phi := pixelPercentiles(values, padding, lo, hi)
		width = max(phi-plo, 1)
		center = plo + width/2
	}
	out.WindowCenter, out.WindowWidth, out.FromFile = center, width, fromFile
	invert := strings.ToUpper(im.Photometric) == "MONOCHROME1"
	out.Pix = make([]float32, len(values))
	// Linear VOI function of PS3.3 C.11.2.1.2.1.
	c, w := center-0.5, width-1
	for i, x := range values {
		if padding[i] {
			continue // black
		}
		var y float64
		switch {
		case w <= 0:
			if x > c {
				y = 1
			}
		case x <= c-w/2:
			y = 0
		case x > c+w/2:
			y = 1
		default:
			y = (x-c)/w + 0.5
		}
		if invert {
			y = 1 - y
		}
		out.Pix[i] = float32(y)
	}
	return out, nil
}

// pixelPercentiles returns the lo-th and hi-th percentiles of the non-padding values.
func pixelPercentiles(values []float64, padding []bool, lo, hi float64) (float64, float64) {
	v := make([]float64, 0, len(values))
	for i, x := range values {
		if !padding[i] {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return 0, 1
	}
	slices.Sort(v)
	at := func(p float64) float64 {
		idx := int(math.Round(p / 100 * float64(len(v)-1)))
		return v[min(max(idx, 0), len(v)-1)]
	}
	return at(lo), at(hi)
}
