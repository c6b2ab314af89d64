package codec

/*
#cgo CFLAGS: -O2
#cgo pkg-config: libjpeg
#include <stdlib.h>
#include "turbo.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// usesTurbo reports whether a frame goes to libjpeg-turbo: 8-bit Huffman-coded DCT frames
// (baseline, extended and progressive SOF markers), the frames of JPEG Baseline and of 8-bit
// JPEG Extended. 12-bit and lossless frames stay with IJG 6b.
func (h jpegFrameHeader) usesTurbo() bool {
	return h.precision == 8 && (h.marker == 0xC0 || h.marker == 0xC1 || h.marker == 0xC2)
}

// decodeTurbo decodes an 8-bit DCT frame with libjpeg-turbo into out (Rows×Columns×Samples
// bytes). It returns false, with no error, for chroma subsampling whose upsampling would
// differ from IJG 6b's; the caller then decodes with IJG.
func decodeTurbo(frame []byte, info FrameInfo, out []byte) (bool, error) {
	var errbuf [256]C.char
	rc := C.augment_turbo_decode((*C.uint8_t)(unsafe.Pointer(&frame[0])), C.size_t(len(frame)),
		(*C.uint8_t)(unsafe.Pointer(&out[0])), C.size_t(len(out)),
		C.int(info.Rows), C.int(info.Columns), C.int(info.SamplesPerPixel), &errbuf[0], C.int(len(errbuf)))
	switch rc {
	case 0:
		return true, nil
	case C.TURBO_NOT_HANDLED:
		return false, nil
	}
	return true, fmt.Errorf("JPEG (8-bit libjpeg-turbo): %s", C.GoString(&errbuf[0]))
}
