package codec

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
)

// deflateMaxRatio bounds how much deflate can expand its input (RFC 1951: a length-258 match
// in under 2 bits is about 1032:1).
const deflateMaxRatio = 1032

// decodeDeflate decodes a frame of Deflated Image Frame Compression (PS3.5 section 8.2.16,
// Supplement 244): each frame is the native encoding of its pixels (Explicit VR Little Endian
// layout, 1-bit pixels packed with the first pixel in the least significant bit), compressed
// on its own as a raw deflate stream (RFC 1951, no zlib or gzip wrapper). Go's compress/flate
// inflates it; no more than the frame's size is ever inflated.
func decodeDeflate(frame []byte, info FrameInfo, dst []byte) (Decoded, error) {
	if info.Photometric == "YBR_FULL_422" || info.Photometric == "YBR_PARTIAL_422" {
		return Decoded{}, fmt.Errorf("deflated %s frames are not supported", info.Photometric)
	}
	samples := info.Rows * info.Columns * info.SamplesPerPixel
	want := samples * info.bytesPerSample()
	if info.BitsAllocated == 1 {
		want = (samples + 7) / 8
	}
	if int64(want) > int64(len(frame))*deflateMaxRatio {
		return Decoded{}, fmt.Errorf("deflated frame of %d bytes cannot hold %d bytes (truncated)", len(frame), want)
	}
	fr := flate.NewReader(bytes.NewReader(frame))
	defer fr.Close()
	raw := make([]byte, want)
	if info.BitsAllocated != 1 && (info.SamplesPerPixel == 1 || info.PlanarConfiguration == 0) {
		raw = outBuffer(dst, want)
	}
	if n, err := io.ReadFull(fr, raw); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Decoded{}, fmt.Errorf("deflated frame holds %d bytes, want %d (truncated)", n, want)
		}
		return Decoded{}, fmt.Errorf("inflate frame: %w", err)
	}
	if info.BitsAllocated == 1 {
		out := outBuffer(dst, samples)
		for i := range out {
			out[i] = raw[i>>3] >> (i & 7) & 1
		}
		return Decoded{Data: out}, nil
	}
	if info.SamplesPerPixel > 1 && info.PlanarConfiguration == 1 {
		raw = interleavePlanes(raw, info.SamplesPerPixel, info.bytesPerSample())
	}
	return Decoded{Data: raw}, nil
}
