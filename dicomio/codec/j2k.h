/* C interface to OpenJPEG for decoding one JPEG 2000 frame from memory. */
#ifndef AUGMENT_CODEC_J2K_H
#define AUGMENT_CODEC_J2K_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
	int32_t width, height, comps, prec, sgnd, mct;
} augment_j2k_info;

/* augment_j2k_decode decodes a J2K codestream or JP2 file. When out is NULL it reads only the
 * header into *info. Otherwise the frame must match expect (width, height, comps), and the samples
 * are written pixel-interleaved as little endian words of `width` bytes (1, 2 or 4), two's
 * complement for signed components; with dicom_signed, unsigned components are sign-extended
 * from their precision. Returns 0, or -1 with a message in errbuf. */
int augment_j2k_decode(const uint8_t *in, size_t len, augment_j2k_info *info, uint8_t *out,
                       size_t outlen, int width, int dicom_signed, char *errbuf, int errlen);
#endif
