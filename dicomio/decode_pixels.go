package dicomio

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/medaugment/augment/dicomio/codec"
)

// decodeGeometry checks the image attributes and returns the number of samples of all
// frames and the bytes the decoded buffer will take, refusing more than maxBytes before
// anything is allocated.
func decodeGeometry(in *Instance, maxBytes int64) (samples int64, outBytes int64, err error) {
	switch {
	case in.Rows <= 0 || in.Columns <= 0 || in.Rows > 0xFFFF || in.Columns > 0xFFFF:
		return 0, 0, fmt.Errorf("%w: rows %d, columns %d", ErrBadPixelLayout, in.Rows, in.Columns)
	case in.SamplesPerPixel <= 0 || in.SamplesPerPixel > 4:
		return 0, 0, fmt.Errorf("%w: samples per pixel %d", ErrBadPixelLayout, in.SamplesPerPixel)
	case in.Frames <= 0 || in.Frames > 1<<24:
		return 0, 0, fmt.Errorf("%w: number of frames %d", ErrBadPixelLayout, in.Frames)
	}
	switch in.BitsAllocated {
	case 1, 8, 16, 32:
	case 64:
		if !in.FloatPixels {
			return 0, 0, fmt.Errorf("%w: bits allocated 64 for integer pixel data", ErrBadPixelLayout)
		}
	default:
		return 0, 0, fmt.Errorf("%w: bits allocated %d", ErrBadPixelLayout, in.BitsAllocated)
	}
	if in.BitsStored <= 0 || in.BitsStored > in.BitsAllocated {
		return 0, 0, fmt.Errorf("%w: bits stored %d with bits allocated %d", ErrBadPixelLayout, in.BitsStored, in.BitsAllocated)
	}
	samples = int64(in.Rows) * int64(in.Columns) * int64(in.SamplesPerPixel) * int64(in.Frames)
	width := int64(in.BitsAllocated+7) / 8
	outBytes = samples * width
	if outBytes > maxBytes || outBytes < 0 {
		return 0, 0, fmt.Errorf("decoded pixels of %d bytes (%d×%d×%d samples × %d frames) %w of %d bytes",
			outBytes, in.Rows, in.Columns, in.SamplesPerPixel, in.Frames, ErrTooLarge, maxBytes)
	}
	return samples, outBytes, nil
}

// decodePixels decodes the pixel data of the layout to stored values.
func (l *readLayout) decodePixels(in *Instance, maxBytes int64) (*Image, error) {
	if l.pixelTag == 0 {
		return nil, ErrNoPixelData
	}
	samples, outBytes, err := decodeGeometry(in, maxBytes)
	if err != nil {
		return nil, err
	}
	img := &Image{
		Rows: in.Rows, Columns: in.Columns, Frames: in.Frames, Samples: in.SamplesPerPixel,
		BitsAllocated: in.BitsAllocated, BitsStored: in.BitsStored,
		Signed: in.PixelRepresentation == 1 && !in.FloatPixels, Photometric: in.Photometric,
	}
	if l.pixelLen >= 0 {
		return img, l.decodeNative(in, img, samples)
	}
	return img, l.decodeEncapsulated(in, img, outBytes)
}

// decodeNative unpacks native (uncompressed) pixel data.
func (l *readLayout) decodeNative(in *Instance, img *Image, samples int64) error {
	need := (samples*int64(in.BitsAllocated) + 7) / 8
	ybr422 := in.Photometric == "YBR_FULL_422" && in.SamplesPerPixel == 3 && in.BitsAllocated == 8
	if ybr422 {
		// Two luminance samples share one Cb and one Cr: 2 bytes per pixel.
		need = samples / 3 * 2
	}
	if l.pixelAvail < need {
		return fmt.Errorf("pixel data has %d bytes, %d expected for %d×%d×%d samples × %d frames at %d bits: %w",
			l.pixelAvail, need, in.Rows, in.Columns, in.SamplesPerPixel, in.Frames, in.BitsAllocated, ErrTruncated)
	}
	raw := l.data[l.pixelStart : l.pixelStart+need]
	bo := l.bo
	if in.BitsAllocated <= 8 && bo == binary.BigEndian && l.pixelVR == "OW" {
		// 8-bit (and 1-bit) samples in an OW value are packed in big-endian 16-bit words.
		raw = decodeSwap16(raw)
	}
	n := int(samples)
	switch {
	case in.FloatPixels && in.BitsAllocated == 32:
		img.F32 = make([]float32, n)
		for i := range img.F32 {
			img.F32[i] = math.Float32frombits(bo.Uint32(raw[4*i:]))
		}
	case in.FloatPixels && in.BitsAllocated == 64:
		img.F64 = make([]float64, n)
		for i := range img.F64 {
			img.F64[i] = math.Float64frombits(bo.Uint64(raw[8*i:]))
		}
	case in.BitsAllocated == 1:
		img.U8 = make([]uint8, n)
		for i := range img.U8 {
			img.U8[i] = (raw[i>>3] >> (uint(i) & 7)) & 1
		}
	case ybr422:
		img.U8 = decodeExpand422(raw, n)
		img.Photometric = "YBR_FULL"
	case in.BitsAllocated == 8:
		buf := make([]byte, n)
		copy(buf, raw)
		decodeSetBytes(img, buf, 1, binary.LittleEndian, false)
	case in.BitsAllocated == 16:
		decodeSetBytes(img, raw[:2*n], 2, bo, false)
	case in.BitsAllocated == 32:
		decodeSetBytes(img, raw[:4*n], 4, bo, false)
	}
	if in.SamplesPerPixel > 1 && in.PlanarConfiguration == 1 {
		decodeInterleave(img)
	}
	return nil
}

// decodeSwap16 returns b with the bytes of each 16-bit word swapped.
func decodeSwap16(b []byte) []byte {
	out := make([]byte, len(b))
	for i := 0; i+1 < len(b); i += 2 {
		out[i], out[i+1] = b[i+1], b[i]
	}
	if len(b)%2 == 1 {
		out[len(b)-1] = b[len(b)-1]
	}
	return out
}

// decodeExpand422 expands YBR_FULL_422 samples (Y1 Y2 Cb Cr per pixel pair) to n
// pixel-interleaved YBR_FULL samples.
func decodeExpand422(raw []byte, n int) []uint8 {
	out := make([]uint8, n)
	for p, q := 0, 0; p+6 <= n && q+4 <= len(raw); p, q = p+6, q+4 {
		y1, y2, cb, cr := raw[q], raw[q+1], raw[q+2], raw[q+3]
		out[p], out[p+1], out[p+2] = y1, cb, cr
		out[p+3], out[p+4], out[p+5] = y2, cb, cr
	}
	return out
}

// decodeSetBytes stores raw words of the given width and byte order in the image's typed
// slice. Signed values are read as two's complement of the word width; with extend they are
// first sign-extended from BitsStored (codecs return the stored bit pattern).
func decodeSetBytes(img *Image, raw []byte, width int, bo binary.ByteOrder, extend bool) {
	n := len(raw) / width
	shift := uint(0)
	if extend {
		shift = uint(width*8 - img.BitsStored)
	}
	switch width {
	case 1:
		if img.Signed {
			img.I8 = make([]int8, n)
			for i, b := range raw[:n] {
				img.I8[i] = int8(b<<shift) >> shift
			}
			return
		}
		img.U8 = raw[:n:n]
	case 2:
		if img.Signed {
			img.I16 = make([]int16, n)
			for i := range img.I16 {
				img.I16[i] = int16(bo.Uint16(raw[2*i:])<<shift) >> shift
			}
			return
		}
		img.U16 = make([]uint16, n)
		for i := range img.U16 {
			img.U16[i] = bo.Uint16(raw[2*i:])
		}
	case 4:
		if img.Signed {
			img.I32 = make([]int32, n)
			for i := range img.I32 {
				img.I32[i] = int32(bo.Uint32(raw[4*i:])<<shift) >> shift
			}
			return
		}
		img.U32 = make([]uint32, n)
		for i := range img.U32 {
			img.U32[i] = bo.Uint32(raw[4*i:])
		}
	}
}

// decodeInterleave turns planar (colour-by-plane) frames into pixel-interleaved ones.
func decodeInterleave(img *Image) {
	s := img.Samples
	px := img.Rows * img.Columns
	frame := px * s
	switch {
	case img.U8 != nil:
		img.U8 = decodeInterleaveOf(img.U8, img.Frames, px, s, frame)
	case img.I8 != nil:
		img.I8 = decodeInterleaveOf(img.I8, img.Frames, px, s, frame)
	case img.U16 != nil:
		img.U16 = decodeInterleaveOf(img.U16, img.Frames, px, s, frame)
	case img.I16 != nil:
		img.I16 = decodeInterleaveOf(img.I16, img.Frames, px, s, frame)
	case img.U32 != nil:
		img.U32 = decodeInterleaveOf(img.U32, img.Frames, px, s, frame)
	case img.I32 != nil:
		img.I32 = decodeInterleaveOf(img.I32, img.Frames, px, s, frame)
	case img.F32 != nil:
		img.F32 = decodeInterleaveOf(img.F32, img.Frames, px, s, frame)
	case img.F64 != nil:
		img.F64 = decodeInterleaveOf(img.F64, img.Frames, px, s, frame)
	}
}

func decodeInterleaveOf[T any](src []T, frames, px, s, frame int) []T {
	out := make([]T, len(src))
	for f := 0; f < frames; f++ {
		base := f * frame
		for p := 0; p < px; p++ {
			for c := 0; c < s; c++ {
				out[base+p*s+c] = src[base+c*px+p]
			}
		}
	}
	return out
}

// decodeEncapsulated decodes compressed frames with the codec package.
func (l *readLayout) decodeEncapsulated(in *Instance, img *Image, outBytes int64) error {
	if !codec.Supported(l.ts) {
		return &readUnsupportedTS{uid: l.ts, name: codec.Name(l.ts)}
	}
	if in.FloatPixels {
		return fmt.Errorf("%w: float pixel data in %s", ErrUnsupportedPixels, codec.Name(l.ts))
	}
	fragments := make([][]byte, len(l.fragments))
	for i, f := range l.fragments {
		fragments[i] = l.data[f[0]:f[1]]
	}
	offsets := l.extOffsets
	if len(offsets) == 0 {
		for _, o := range l.offsetTable {
			offsets = append(offsets, uint64(o))
		}
	}
	frames, err := codec.SplitFrames(l.ts, fragments, offsets, in.Frames)
	if err != nil {
		return fmt.Errorf("%w: %v", errReadCodec, err)
	}
	info := codec.FrameInfo{
		Rows: in.Rows, Columns: in.Columns, SamplesPerPixel: in.SamplesPerPixel,
		BitsAllocated: in.BitsAllocated, BitsStored: in.BitsStored, Signed: img.Signed,
		Photometric: in.Photometric, PlanarConfiguration: in.PlanarConfiguration,
	}
	if len(frames) == 1 {
		// One frame: the codec's buffer is the image, no copy.
		var dst []byte
		if l.scratch != nil {
			dst = l.scratch.pixels
		}
		dec, err := codec.DecodeInto(l.ts, frames[0], info, dst)
		if err != nil {
			return fmt.Errorf("frame 1: %w: %v", errReadCodec, err)
		}
		l.scratch.keepPixels(dec.Data)
		if int64(len(dec.Data)) != outBytes {
			return fmt.Errorf("%w: decoded %d bytes, want %d", errReadCodec, len(dec.Data), outBytes)
		}
		if dec.Photometric != "" {
			img.Photometric = dec.Photometric
		}
		decodeSetBytes(img, dec.Data, (in.BitsAllocated+7)/8, binary.LittleEndian, false)
		return nil
	}
	buf := make([]byte, 0, outBytes)
	var dst []byte // each frame is copied out before the next is decoded
	for i, fr := range frames {
		dec, err := codec.DecodeInto(l.ts, fr, info, dst)
		if err != nil {
			return fmt.Errorf("frame %d: %w: %v", i+1, errReadCodec, err)
		}
		if cap(dec.Data) > cap(dst) {
			dst = dec.Data[:0]
		}
		if int64(len(buf)+len(dec.Data)) > outBytes {
			return fmt.Errorf("frame %d: %w: decoded more bytes than the image holds", i+1, errReadCodec)
		}
		buf = append(buf, dec.Data...)
		if dec.Photometric != "" {
			img.Photometric = dec.Photometric
		}
	}
	if int64(len(buf)) != outBytes {
		return fmt.Errorf("%w: decoded %d bytes, want %d", errReadCodec, len(buf), outBytes)
	}
	decodeSetBytes(img, buf, (in.BitsAllocated+7)/8, binary.LittleEndian, false)
	return nil
}
