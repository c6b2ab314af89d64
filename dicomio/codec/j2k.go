package codec

/*
#cgo pkg-config: libopenjp2
#include "j2k.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// decodeJ2K decodes JPEG 2000 (and High-Throughput JPEG 2000) frames with OpenJPEG. The
// multi-component transform (YBR_RCT, YBR_ICT) is undone by the codec, so such frames come
// back as RGB.
func decodeJ2K(frame []byte, info FrameInfo, _ []byte) (Decoded, error) {
	in := (*C.uint8_t)(unsafe.Pointer(&frame[0]))
	var hdr C.augment_j2k_info
	var errbuf [256]C.char
	if C.augment_j2k_decode(in, C.size_t(len(frame)), &hdr, nil, 0, 0, 0, &errbuf[0], C.int(len(errbuf))) != 0 {
		return Decoded{}, fmt.Errorf("JPEG 2000: %s", C.GoString(&errbuf[0]))
	}
	if int(hdr.width) != info.Columns || int(hdr.height) != info.Rows || int(hdr.comps) != info.SamplesPerPixel {
		return Decoded{}, fmt.Errorf("JPEG 2000 frame is %dx%d with %d components, the dataset says %dx%d with %d samples",
			hdr.width, hdr.height, hdr.comps, info.Columns, info.Rows, info.SamplesPerPixel)
	}
	out := make([]byte, info.frameBytes())
	signed := 0
	if info.Signed {
		signed = 1
	}
	if C.augment_j2k_decode(in, C.size_t(len(frame)), &hdr, (*C.uint8_t)(unsafe.Pointer(&out[0])), C.size_t(len(out)),
		C.int(info.bytesPerSample()), C.int(signed), &errbuf[0], C.int(len(errbuf))) != 0 {
		return Decoded{}, fmt.Errorf("JPEG 2000: %s", C.GoString(&errbuf[0]))
	}
	photometric := info.Photometric
	if photometric == "YBR_RCT" || photometric == "YBR_ICT" {
		photometric = "RGB"
	}
	return Decoded{Data: out, Photometric: photometric}, nil
}
