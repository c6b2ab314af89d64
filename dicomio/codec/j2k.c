#include <stdio.h>
#include <string.h>
#include <openjpeg.h>
#include "j2k.h"

typedef struct {
	const uint8_t *data;
	size_t len, pos;
} membuf;

typedef struct {
	char *buf;
	int len;
} errsink;

static OPJ_SIZE_T mem_read(void *dst, OPJ_SIZE_T n, void *user) {
	membuf *m = (membuf *)user;
	if (m->pos >= m->len) return (OPJ_SIZE_T)-1;
	if (n > m->len - m->pos) n = m->len - m->pos;
	memcpy(dst, m->data + m->pos, n);
	m->pos += n;
	return n;
}

static OPJ_OFF_T mem_skip(OPJ_OFF_T n, void *user) {
	membuf *m = (membuf *)user;
	if (n < 0) {
		if ((size_t)(-n) > m->pos) return -1;
	} else if ((size_t)n > m->len - m->pos) {
		n = (OPJ_OFF_T)(m->len - m->pos);
	}
	m->pos += n;
	return n;
}

static OPJ_BOOL mem_seek(OPJ_OFF_T n, void *user) {
	membuf *m = (membuf *)user;
	if (n < 0 || (size_t)n > m->len) return OPJ_FALSE;
	m->pos = (size_t)n;
	return OPJ_TRUE;
}

static void on_error(const char *msg, void *user) {
	errsink *e = (errsink *)user;
	if (e->buf && e->len > 0 && e->buf[0] == 0) {
		snprintf(e->buf, (size_t)e->len, "%s", msg);
		size_t l = strlen(e->buf);
		while (l > 0 && (e->buf[l - 1] == '\n' || e->buf[l - 1] == ' ')) e->buf[--l] = 0;
	}
}

static void on_quiet(const char *msg, void *user) {
	(void)msg;
	(void)user;
}

static int fail(errsink *e, const char *msg) {
	if (e->buf && e->len > 0 && e->buf[0] == 0) snprintf(e->buf, (size_t)e->len, "%s", msg);
	return -1;
}

int augment_j2k_decode(const uint8_t *in, size_t len, augment_j2k_info *info, uint8_t *out,
                       size_t outlen, int width, int dicom_signed, char *errbuf, int errlen) {
	errsink sink = {errbuf, errlen};
	if (errbuf && errlen > 0) errbuf[0] = 0;
	static const uint8_t jp2sig[12] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
	OPJ_CODEC_FORMAT fmt = OPJ_CODEC_J2K;
	if (len >= 12 && memcmp(in, jp2sig, 12) == 0) fmt = OPJ_CODEC_JP2;
	else if (len < 4 || in[0] != 0xFF || in[1] != 0x4F || in[2] != 0xFF || in[3] != 0x51)
		return fail(&sink, "no JPEG 2000 codestream (SOC/SIZ) or JP2 signature");

	membuf m = {in, len, 0};
	opj_stream_t *st = opj_stream_create(len < 65536 ? len : 65536, OPJ_TRUE);
	if (!st) return fail(&sink, "out of memory");
	opj_stream_set_user_data(st, &m, NULL);
	opj_stream_set_user_data_length(st, len);
	opj_stream_set_read_function(st, mem_read);
	opj_stream_set_skip_function(st, mem_skip);
	opj_stream_set_seek_function(st, mem_seek);

	opj_codec_t *codec = opj_create_decompress(fmt);
	opj_image_t *img = NULL;
	int rc = -1;
	if (!codec) {
		opj_stream_destroy(st);
		return fail(&sink, "out of memory");
	}
	opj_set_error_handler(codec, on_error, &sink);
	opj_set_warning_handler(codec, on_quiet, NULL);
	opj_set_info_handler(codec, on_quiet, NULL);
	opj_dparameters_t params;
	opj_set_default_decoder_parameters(&params);
	if (!opj_setup_decoder(codec, &params)) {
		fail(&sink, "cannot set up the decoder");
		goto done;
	}
	opj_decoder_set_strict_mode(codec, OPJ_TRUE);
	if (!opj_read_header(st, codec, &img) || !img) {
		fail(&sink, "cannot read the JPEG 2000 header");
		goto done;
	}
	if (img->numcomps == 0) {
		fail(&sink, "JPEG 2000 image has no components");
		goto done;
	}
	info->width = (int32_t)(img->x1 - img->x0);
	info->height = (int32_t)(img->y1 - img->y0);
	info->comps = (int32_t)img->numcomps;
	info->prec = (int32_t)img->comps[0].prec;
	info->sgnd = (int32_t)img->comps[0].sgnd;
	info->mct = 0;
	if (!out) {
		rc = 0;
		goto done;
	}
	if (!opj_decode(codec, st, img) || !opj_end_decompress(codec, st)) {
		fail(&sink, "cannot decode the JPEG 2000 codestream");
		goto done;
	}
	{
		size_t w = (size_t)info->width, h = (size_t)info->height, nc = img->numcomps;
		if (w * h * nc * (size_t)width != outlen) {
			fail(&sink, "decoded size differs from the frame size");
			goto done;
		}
		for (size_t c = 0; c < nc; c++) {
			opj_image_comp_t *comp = &img->comps[c];
			if (comp->w != w || comp->h != h || comp->dx != 1 || comp->dy != 1 || !comp->data) {
				fail(&sink, "subsampled or incomplete JPEG 2000 components are not supported");
				goto done;
			}
			if (comp->prec > (OPJ_UINT32)(8 * width)) {
				fail(&sink, "JPEG 2000 component precision exceeds bits allocated");
				goto done;
			}
		}
		for (size_t c = 0; c < nc; c++) {
			const OPJ_INT32 *src = img->comps[c].data;
			OPJ_UINT32 prec = img->comps[c].prec;
			/* Unsigned codestream samples of signed DICOM data: sign-extend from the codestream
			 * precision, as pydicom's JPEG 2000 correction does. */
			int extend = dicom_signed && !img->comps[c].sgnd && prec > 0 && prec < 32;
			for (size_t i = 0; i < w * h; i++) {
				uint32_t v = (uint32_t)src[i];
				if (extend && (v & (1u << (prec - 1)))) v |= ~0u << prec;
				uint8_t *d = out + (i * nc + c) * (size_t)width;
				for (int b = 0; b < width; b++) d[b] = (uint8_t)(v >> (8 * b));
			}
		}
	}
	rc = 0;
done:
	if (img) opj_image_destroy(img);
	opj_destroy_codec(codec);
	opj_stream_destroy(st);
	return rc;
}
