/* C interface to DCMTK's IJG JPEG decoders (IJG 6b with lossless support, 8, 12 and 16 bits). */
#ifndef AUGMENT_CODEC_IJG_H
#define AUGMENT_CODEC_IJG_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Colour handling of 3-component frames. */
enum { IJG_COLOR_NEVER = 0, IJG_COLOR_GUESS = 1, IJG_COLOR_ALWAYS = 2 };

/* augment_ijg_decode decodes one JPEG frame with the IJG library built for `precision` bits
 * (8, 12 or 16). Output is pixel-interleaved, one byte per sample for precision 8, else
 * two bytes (host order). *rgb is set to 1 when YCbCr was converted to RGB or the stream is RGB.
 * Returns 0 on success, else writes a message to errbuf. */
int augment_ijg_decode(const uint8_t *in, uint32_t inlen, uint8_t *out, uint32_t outlen,
                       int precision, int color, int *rgb, char *errbuf, int errlen);

#ifdef __cplusplus
}
#endif
#endif
