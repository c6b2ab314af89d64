package codec

/*
#cgo pkg-config: charls
#include <stdlib.h>
#include <string.h>
#include <charls/charls.h>

// augment_jls_info reads the JPEG-LS header: width, height, bits per sample, components,
// interleave mode and the NEAR value of component 0.
static int augment_jls_info(const void *in, size_t len, int32_t *w, int32_t *h, int32_t *bits,
                            int32_t *comps, int32_t *ilv, int32_t *near, const char **msg) {
	charls_jpegls_decoder *d = charls_jpegls_decoder_create();
	if (!d) { *msg = "out of memory"; return -1; }
	charls_frame_info fi;
	charls_interleave_mode mode = CHARLS_INTERLEAVE_MODE_NONE;
	charls_jpegls_errc rc = charls_jpegls_decoder_set_source_buffer(d, in, len);
	if (rc == CHARLS_JPEGLS_ERRC_SUCCESS) rc = charls_jpegls_decoder_read_header(d);
	if (rc == CHARLS_JPEGLS_ERRC_SUCCESS) rc = charls_jpegls_decoder_get_frame_info(d, &fi);
	if (rc == CHARLS_JPEGLS_ERRC_SUCCESS) rc = charls_jpegls_decoder_get_interleave_mode(d, &mode);
	if (rc == CHARLS_JPEGLS_ERRC_SUCCESS) rc = charls_jpegls_decoder_get_near_lossless(d, 0, near);
	if (rc != CHARLS_JPEGLS_ERRC_SUCCESS) {
		*msg = charls_get_error_message(rc);
		charls_jpegls_decoder_destroy(d);
		return -1;
	}
	*w = (int32_t)fi.width; *h = (int32_t)fi.height; *bits = fi.bits_per_sample;
	*comps = fi.component_count; *ilv = (int32_t)mode;
	charls_jpegls_decoder_destroy(d);
	return 0;
}

// augment_jls_decode decodes a JPEG-LS stream into out (size outlen, rows packed).
static int augment_jls_decode(const void *in, size_t len, void *out, size_t outlen, const char **msg) {
	charls_jpegls_decoder *d = charls_jpegls_decoder_create();
	if (!d) { *msg = "out of memory"; return -1; }
	size_t need = 0;
	charls_jpegls_errc rc = charls_jpegls_decoder_set_source_buffer(d, in, len);
	if (rc == CHARLS_JPEGLS_ERRC_SUCCESS) rc = charls_jpegls_decoder_read_header(d);
	if (rc == CHARLS_JPEGLS_ERRC_SUCCESS) rc = charls_jpegls_decoder_get_destination_size(d, 0, &need);
	if (rc == CHARLS_JPEGLS_ERRC_SUCCESS && need != outlen) {
		*msg = "decoded size differs from the frame size";
		charls_jpegls_decoder_destroy(d);
		return -1;
	}
	if (rc == CHARLS_JPEGLS_ERRC_SUCCESS) rc = charls_jpegls_decoder_decode_to_buffer(d, out, outlen, 0);
	if (rc != CHARLS_JPEGLS_ERRC_SUCCESS) {
		*msg = charls_get_error_message(rc);
		charls_jpegls_decoder_destroy(d);
		return -1;
	}
	charls_jpegls_decoder_destroy(d);
	return 0;
}
*/
import "C"

import (
	"bytes"
	"fmt"
	"unsafe"
)

// decodeJPEGLS decodes JPEG-LS lossless and near-lossless frames with CharLS.
func decodeJPEGLS(frame []byte, info FrameInfo, _ []byte) (Decoded, error) {
	// CharLS 2.4 takes seconds to give up on a stream cut short, so a frame without its
	// end-of-image marker (trailing padding allowed) is rejected before decoding.
	if end := bytes.TrimRight(frame, "\x00"); !bytes.HasSuffix(end, []byte{0xFF, 0xD9}) {
		return Decoded{}, fmt.Errorf("truncated JPEG-LS stream: no end-of-image marker")
	}
	in := unsafe.Pointer(&frame[0])
	var w, h, bits, comps, ilv, near C.int32_t
	var msg *C.char
	if C.augment_jls_info(in, C.size_t(len(frame)), &w, &h, &bits, &comps, &ilv, &near, &msg) != 0 {
		return Decoded{}, fmt.Errorf("JPEG-LS header: %s", C.GoString(msg))
	}
	if int(w) != info.Columns || int(h) != info.Rows || int(comps) != info.SamplesPerPixel {
		return Decoded{}, fmt.Errorf("JPEG-LS frame is %dx%d with %d components, the dataset says %dx%d with %d samples",
			w, h, comps, info.Columns, info.Rows, info.SamplesPerPixel)
	}
	if int(bits) < 2 || int(bits) > 16 || int(bits) > info.BitsAllocated {
		return Decoded{}, fmt.Errorf("JPEG-LS sample precision %d does not fit bits allocated %d", bits, info.BitsAllocated)
	}
	libBytes := 1
	if bits > 8 {
		libBytes = 2
	}
	raw := make([]byte, info.Rows*info.Columns*info.SamplesPerPixel*libBytes)
	if C.augment_jls_decode(in, C.size_t(len(frame)), unsafe.Pointer(&raw[0]), C.size_t(len(raw)), &msg) != 0 {
		return Decoded{}, fmt.Errorf("JPEG-LS: %s", C.GoString(msg))
	}
	if ilv == C.CHARLS_INTERLEAVE_MODE_NONE && info.SamplesPerPixel > 1 {
		raw = interleavePlanes(raw, info.SamplesPerPixel, libBytes)
	}
	return Decoded{Data: widen(raw, libBytes, info.bytesPerSample())}, nil
}

// interleavePlanes turns colour-by-plane samples into colour-by-pixel samples.
func interleavePlanes(src []byte, planes, width int) []byte {
	out := make([]byte, len(src))
	n := len(src) / (planes * width)
	for p := 0; p < planes; p++ {
		for i := 0; i < n; i++ {
			copy(out[(i*planes+p)*width:(i*planes+p+1)*width], src[(p*n+i)*width:(p*n+i+1)*width])
		}
	}
	return out
}
