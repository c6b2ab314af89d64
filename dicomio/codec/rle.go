package codec

import (
	"encoding/binary"
	"fmt"
)

// rleMaxRatio bounds how much one PackBits byte pair can expand (a run of 128 from 2 bytes).
const rleMaxRatio = 64

// decodeRLE decodes a DICOM RLE Lossless frame (PS3.5 Annex G): a 64-byte header with up to 15
// segment offsets, one PackBits segment per byte plane, most significant byte first, sample by
// sample. The planes are put back together as little endian, pixel-interleaved samples.
func decodeRLE(frame []byte, info FrameInfo, dst []byte) (Decoded, error) {
	if len(frame) < 64 {
		return Decoded{}, fmt.Errorf("RLE frame of %d bytes is shorter than its 64-byte header", len(frame))
	}
	nseg := int(binary.LittleEndian.Uint32(frame[0:4]))
	if info.BitsAllocated == 1 {
		return decodeRLEBits(frame, nseg, info, dst)
	}
	bps := info.bytesPerSample()
	want := info.SamplesPerPixel * bps
	if nseg != want {
		return Decoded{}, fmt.Errorf("RLE header has %d segments, want %d for %d samples of %d bits",
			nseg, want, info.SamplesPerPixel, info.BitsAllocated)
	}
	if nseg > 15 {
		return Decoded{}, fmt.Errorf("RLE header has %d segments, at most 15 allowed", nseg)
	}
	npix := info.Rows * info.Columns
	if int64(npix)*int64(nseg) > int64(len(frame))*rleMaxRatio+64 {
		return Decoded{}, fmt.Errorf("RLE frame of %d bytes cannot hold %d segments of %d bytes (truncated)", len(frame), nseg, npix)
	}
	offsets := make([]int, nseg+1)
	for i := 0; i < nseg; i++ {
		offsets[i] = int(binary.LittleEndian.Uint32(frame[4+4*i:]))
	}
	offsets[nseg] = len(frame)
	out := outBuffer(dst, npix*want)
	seg := make([]byte, npix)
	for s := 0; s < nseg; s++ {
		start, end := offsets[s], offsets[s+1]
		if start < 64 || start > len(frame) || end < start || end > len(frame) {
			return Decoded{}, fmt.Errorf("RLE segment %d has invalid offsets %d..%d in a frame of %d bytes", s, start, end, len(frame))
		}
		if err := unpackBits(frame[start:end], seg); err != nil {
			return Decoded{}, fmt.Errorf("RLE segment %d: %w", s, err)
		}
		sample, byteIndex := s/bps, s%bps
		pos := sample*bps + (bps - 1 - byteIndex) // MSB segment first → little endian position
		for p, v := range seg {
			out[p*want+pos] = v
		}
	}
	return Decoded{Data: out}, nil
}

// decodeRLEBits decodes a 1-bit RLE frame: one segment holding the packed bits of the frame
// (first pixel in the least significant bit), unpacked here to one byte (0 or 1) per pixel.
func decodeRLEBits(frame []byte, nseg int, info FrameInfo, dst []byte) (Decoded, error) {
	if nseg != 1 || info.SamplesPerPixel != 1 {
		return Decoded{}, fmt.Errorf("RLE header has %d segments for %d samples of 1 bit, want 1 segment of 1 sample", nseg, info.SamplesPerPixel)
	}
	npix := info.Rows * info.Columns
	packed := make([]byte, (npix+7)/8)
	if int64(len(packed)) > int64(len(frame))*rleMaxRatio+64 {
		return Decoded{}, fmt.Errorf("RLE frame of %d bytes cannot hold %d packed bytes (truncated)", len(frame), len(packed))
	}
	start := int(binary.LittleEndian.Uint32(frame[4:8]))
	if start < 64 || start > len(frame) {
		return Decoded{}, fmt.Errorf("RLE segment 0 has invalid offset %d in a frame of %d bytes", start, len(frame))
	}
	if err := unpackBits(frame[start:], packed); err != nil {
		return Decoded{}, fmt.Errorf("RLE segment 0: %w", err)
	}
	out := outBuffer(dst, npix)
	for i := range out {
		out[i] = packed[i>>3] >> (i & 7) & 1
	}
	return Decoded{Data: out}, nil
}

// unpackBits decodes one PackBits segment into dst, which it must fill exactly. Bytes left over
// after dst is full are padding and ignored, as other decoders do.
func unpackBits(src, dst []byte) error {
	n, i := 0, 0
	for n < len(dst) {
		if i >= len(src) {
			return fmt.Errorf("truncated: decoded %d of %d bytes", n, len(dst))
		}
		h := int(int8(src[i]))
		i++
		switch {
		case h >= 0:
			cnt := h + 1
			if i+cnt > len(src) {
				return fmt.Errorf("truncated literal run at byte %d", i-1)
			}
			copy(dst[n:], src[i:i+cnt]) // a run past the end is clipped, as a padding byte may be
			i += cnt
			n = min(n+cnt, len(dst))
		case h == -128:
			// no operation
		default:
			cnt := 1 - h
			if i >= len(src) {
				return fmt.Errorf("truncated replicate run at byte %d", i-1)
			}
			cnt = min(cnt, len(dst)-n)
			v := src[i]
			i++
			for k := 0; k < cnt; k++ {
				dst[n+k] = v
			}
			n += cnt
		}
	}
	return nil
}
