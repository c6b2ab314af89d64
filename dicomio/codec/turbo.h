/* C interface to libjpeg-turbo for 8-bit lossy (DCT) JPEG frames. */
#ifndef AUGMENT_CODEC_TURBO_H
#define AUGMENT_CODEC_TURBO_H
#include <stddef.h>
#include <stdint.h>

/* Return values of augment_turbo_decode besides 0 (decoded). */
enum {
	TURBO_ERROR = -1,       /* corrupt, truncated or unexpected data: errbuf says why */
	TURBO_NOT_HANDLED = 1   /* chroma subsampling whose upsampling differs from IJG 6b's */
};

/* augment_turbo_decode decodes one 8-bit DCT JPEG frame of rows x cols x comps samples into
 * out (outlen must be rows*cols*comps), pixel-interleaved, in the colour space of the stream
 * (no YCbCr->RGB conversion). The header must agree with rows, cols and comps. */
int augment_turbo_decode(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen,
                         int rows, int cols, int comps, char *errbuf, int errlen);

#endif
