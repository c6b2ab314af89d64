package codec

/*
#cgo CXXFLAGS: -O2
#cgo LDFLAGS: -ldcmjpeg -lijg8 -lijg12 -lijg16 -ldcmimgle -ldcmdata -loflog -lofstd -lstdc++
#include <stdlib.h>
#include "ijg.h"
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// jpegFrameHeader is what the SOF segment of a JPEG stream says about the frame.
type jpegFrameHeader struct {
	marker        byte // SOFn marker (0xC0..0xCF)
	precision     int
	height, width int
	components    int
}

func (h jpegFrameHeader) lossless() bool {
	return h.marker == 0xC3 || h.marker == 0xC7 || h.marker == 0xCB || h.marker == 0xCF
}

// parseJPEGHeader walks the markers of a JPEG stream up to its SOF segment.
func parseJPEGHeader(b []byte) (jpegFrameHeader, error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return jpegFrameHeader{}, fmt.Errorf("no JPEG start-of-image marker")
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return jpegFrameHeader{}, fmt.Errorf("invalid JPEG marker at byte %d", i)
		}
		m := b[i+1]
		if m == 0xFF { // fill byte
			i++
			continue
		}
		if m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7) {
			i += 2
			continue
		}
		if m == 0xD9 || m == 0xDA {
			return jpegFrameHeader{}, fmt.Errorf("JPEG stream has no frame header (SOF)")
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return jpegFrameHeader{}, fmt.Errorf("truncated JPEG marker segment 0xFF%02X at byte %d", m, i)
		}
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC {
			if n < 8 {
				return jpegFrameHeader{}, fmt.Errorf("short JPEG frame header")
			}
			s := b[i+4:]
			return jpegFrameHeader{
				marker: m, precision: int(s[0]),
				height: int(binary.BigEndian.Uint16(s[1:])), width: int(binary.BigEndian.Uint16(s[3:])),
				components: int(s[5]),
			}, nil
		}
		i += 2 + n
	}
	return jpegFrameHeader{}, fmt.Errorf("truncated JPEG stream before the frame header")
}

// decodeJPEG decodes JPEG baseline, extended and lossless frames: 8-bit DCT frames with
// libjpeg-turbo, the others with DCMTK's builds of the IJG library (8, 12 and 16 bits, with the
// lossless process), chosen by the sample precision.
func decodeJPEG(frame []byte, info FrameInfo, dst []byte) (Decoded, error) {
	return decodeJPEGWith(frame, info, dst, true)
}

// decodeJPEGWith is decodeJPEG; with turbo false every frame goes to IJG (the tests compare
// the two libraries).
func decodeJPEGWith(frame []byte, info FrameInfo, dst []byte, turbo bool) (Decoded, error) {
	h, err := parseJPEGHeader(frame)
	if err != nil {
		return Decoded{}, err
	}
	if h.width != info.Columns || h.height != info.Rows || h.components != info.SamplesPerPixel {
		return Decoded{}, fmt.Errorf("JPEG frame is %dx%d with %d components, the dataset says %dx%d with %d samples",
			h.width, h.height, h.components, info.Columns, info.Rows, info.SamplesPerPixel)
	}
	var lib int
	switch {
	case h.precision >= 2 && h.precision <= 8:
		lib = 8
	case h.precision <= 12 && h.precision > 8:
		lib = 12
	case h.precision <= 16 && h.precision > 12:
		lib = 16
	default:
		return Decoded{}, fmt.Errorf("unsupported JPEG sample precision %d", h.precision)
	}
	if h.precision > info.BitsAllocated {
		return Decoded{}, fmt.Errorf("JPEG sample precision %d exceeds bits allocated %d", h.precision, info.BitsAllocated)
	}
	if !h.lossless() && lib == 16 {
		return Decoded{}, fmt.Errorf("lossy JPEG with %d-bit samples is not defined", h.precision)
	}
	// Colour frames come back as the samples in the stream, without a YCbCr→RGB conversion, as
	// pydicom with GDCM returns them; chroma subsampled 4:2:2 is upsampled, so YBR_FULL_422
	// becomes YBR_FULL. YBRFullToRGB converts for display.
	color := C.int(C.IJG_COLOR_NEVER)
	photometric := info.Photometric
	if photometric == "YBR_FULL_422" {
		photometric = "YBR_FULL"
	}
	libBytes := 1
	if lib > 8 {
		libBytes = 2
	}
	n := info.Rows * info.Columns * info.SamplesPerPixel
	var raw []byte
	if libBytes == info.bytesPerSample() {
		raw = outBuffer(dst, n*libBytes)
	} else {
		raw = make([]byte, n*libBytes)
	}
	if turbo && h.usesTurbo() {
		handled, err := decodeTurbo(frame, info, raw)
		if err != nil {
			return Decoded{}, err
		}
		if handled {
			return Decoded{Data: widen(raw, libBytes, info.bytesPerSample()), Photometric: photometric}, nil
		}
	}
	var errbuf [256]C.char
	rc := C.augment_ijg_decode((*C.uint8_t)(unsafe.Pointer(&frame[0])), C.uint32_t(len(frame)),
		(*C.uint8_t)(unsafe.Pointer(&raw[0])), C.uint32_t(len(raw)), C.int(lib), color, nil,
		&errbuf[0], C.int(len(errbuf)))
	if rc != 0 {
		return Decoded{}, fmt.Errorf("JPEG (%d-bit IJG): %s", lib, C.GoString(&errbuf[0]))
	}
	return Decoded{Data: widen(raw, libBytes, info.bytesPerSample()), Photometric: photometric}, nil
}

// widen converts little endian samples of one width to another that is at least as wide.
func widen(src []byte, from, to int) []byte {
	if from == to {
		return src
	}
	n := len(src) / from
	out := make([]byte, n*to)
	for i := 0; i < n; i++ {
		copy(out[i*to:i*to+from], src[i*from:(i+1)*from])
	}
	return out
}
