/* Decoding of 8-bit lossy JPEG frames with libjpeg-turbo: memory source, errors through
 * setjmp/longjmp (the library's default error handler would exit the process), warnings kept
 * quiet. A premature end of the data is an error, as IJG 6b through DCMTK reports it, where
 * libjpeg-turbo would pad the image with grey: the end of the data before the scans are read
 * (progressive and multi-scan frames are read whole by jpeg_start_decompress), or while
 * entropy-coded data is still missing (the Huffman decoder hits the fake end-of-image marker).
 * A frame that only lacks its end-of-image marker decodes. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include "turbo.h"

/* maxScans bounds the scans of a progressive frame: a crafted stream with thousands of tiny
 * scans would otherwise take minutes (the limit libjpeg-turbo's TurboJPEG API uses). */
#define maxScans 500

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	int eof;       /* the memory source ran out of data */
	int eofEarly;  /* ... before the scans were read */
	int hitMarker; /* entropy-coded data was missing */
	int started;   /* jpeg_start_decompress returned */
	char msg[JMSG_LENGTH_MAX];
} turboError;

typedef struct {
	struct jpeg_progress_mgr pub;
	turboError *err;
} turboProgress;

static void onError(j_common_ptr c) {
	turboError *e = (turboError *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jb, 1);
}

static void onMessage(j_common_ptr c, int level) {
	if (level < 0) {
		turboError *e = (turboError *)c->err;
		if (c->err->msg_code == JWRN_JPEG_EOF) {
			e->eof = 1;
			if (!e->started) e->eofEarly = 1;
		}
		if (c->err->msg_code == JWRN_HIT_MARKER) e->hitMarker = 1;
		c->err->num_warnings++;
	}
}

static void onOutput(j_common_ptr c) { (void)c; }

static void onProgress(j_common_ptr c) {
	j_decompress_ptr d = (j_decompress_ptr)c;
	if (d->is_decompressor && d->progressive_mode && d->input_scan_number > maxScans) {
		turboError *e = (turboError *)c->err;
		snprintf(e->msg, sizeof e->msg, "progressive JPEG with more than %d scans", maxScans);
		longjmp(e->jb, 1);
	}
}

static void setError(char *errbuf, int errlen, const char *msg) {
	if (errbuf && errlen > 0) snprintf(errbuf, (size_t)errlen, "%s", msg);
}

/* sameAsIJG6b reports whether every component is upsampled the way IJG 6b does it: full
 * resolution, or 2:1 horizontally with or without 2:1 vertically (fancy triangular filter in
 * both libraries). libjpeg-turbo 2 also filters 1x2 (4:4:0) upsampling, which IJG 6b
 * replicates, and other ratios are rare enough to leave to IJG. */
static int sameAsIJG6b(j_decompress_ptr d) {
	for (int ci = 0; ci < d->num_components; ci++) {
		jpeg_component_info *c = &d->comp_info[ci];
		if (c->h_samp_factor <= 0 || c->v_samp_factor <= 0) return 0;
		if (d->max_h_samp_factor % c->h_samp_factor || d->max_v_samp_factor % c->v_samp_factor) return 0;
		int h = d->max_h_samp_factor / c->h_samp_factor, v = d->max_v_samp_factor / c->v_samp_factor;
		if (!((h == 1 && v == 1) || (h == 2 && v == 1) || (h == 2 && v == 2))) return 0;
	}
	return 1;
}

int augment_turbo_decode(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen,
                         int rows, int cols, int comps, char *errbuf, int errlen) {
	struct jpeg_decompress_struct d;
	turboError e;
	turboProgress p;
	memset(&d, 0, sizeof d);
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = onError;
	e.pub.emit_message = onMessage;
	e.pub.output_message = onOutput;
	e.eof = e.eofEarly = e.hitMarker = e.started = 0;
	e.msg[0] = 0;
	if (setjmp(e.jb)) {
		setError(errbuf, errlen, e.msg[0] ? e.msg : "corrupt JPEG data");
		jpeg_destroy_decompress(&d);
		return TURBO_ERROR;
	}
	jpeg_create_decompress(&d);
	p.pub.progress_monitor = onProgress;
	p.err = &e;
	d.progress = &p.pub;
	jpeg_mem_src(&d, in, (unsigned long)inlen);
	if (jpeg_read_header(&d, TRUE) != JPEG_HEADER_OK) {
		setError(errbuf, errlen, "JPEG stream has no image");
		jpeg_destroy_decompress(&d);
		return TURBO_ERROR;
	}
	if ((int)d.image_width != cols || (int)d.image_height != rows || d.num_components != comps ||
	    d.data_precision != 8 || (size_t)rows * (size_t)cols * (size_t)comps != outlen) {
		snprintf(e.msg, sizeof e.msg, "JPEG header says %ux%u with %d components at %d bits, want %dx%d with %d",
		         d.image_width, d.image_height, d.num_components, d.data_precision, cols, rows, comps);
		setError(errbuf, errlen, e.msg);
		jpeg_destroy_decompress(&d);
		return TURBO_ERROR;
	}
	if (!sameAsIJG6b(&d)) {
		jpeg_destroy_decompress(&d);
		return TURBO_NOT_HANDLED;
	}
	/* The samples as stored: YCbCr stays YCbCr, as pydicom with GDCM returns them. */
	d.out_color_space = d.jpeg_color_space;
	d.dct_method = JDCT_ISLOW;
	d.do_fancy_upsampling = TRUE;
	jpeg_start_decompress(&d);
	e.started = 1;
	if ((int)d.output_width != cols || (int)d.output_height != rows || d.output_components != comps) {
		setError(errbuf, errlen, "JPEG output geometry differs from the header");
		jpeg_destroy_decompress(&d);
		return TURBO_ERROR;
	}
	size_t stride = (size_t)cols * (size_t)comps;
	while (d.output_scanline < d.output_height && !e.eofEarly && !(e.eof && e.hitMarker)) {
		JSAMPROW row[4];
		int n = 0;
		for (; n < 4 && d.output_scanline + (JDIMENSION)n < d.output_height; n++) {
			row[n] = out + (size_t)(d.output_scanline + (JDIMENSION)n) * stride;
		}
		if (jpeg_read_scanlines(&d, row, (JDIMENSION)n) == 0) break;
	}
	int truncated = e.eofEarly || (e.eof && e.hitMarker) || d.output_scanline < d.output_height;
	if (!truncated) jpeg_finish_decompress(&d);
	if (truncated) {
		setError(errbuf, errlen, "truncated JPEG data (premature end of the stream)");
		jpeg_destroy_decompress(&d);
		return TURBO_ERROR;
	}
	jpeg_destroy_decompress(&d);
	return 0;
}
