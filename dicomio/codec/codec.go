// Package codec decodes the compressed (encapsulated) pixel data of DICOM instances into frames of
// stored values. Native (uncompressed) pixel data is the reader's business, not this package's.
//
// SplitFrames groups the fragments of an encapsulated Pixel Data element into frames; Decode turns
// the bytes of one frame into stored values: little endian words BitsAllocated wide (1 byte for
// 8 bits, 2 bytes for 16 bits, 4 bytes for 32 bits; 1-bit data unpacked to one byte, 0 or 1, per
// pixel), samples interleaved per pixel whatever the Planar Configuration of the file.
// Decoded.Photometric says which photometric interpretation the data has after decoding.
//
// Supported transfer syntaxes:
//
//	1.2.840.10008.1.2.5       RLE Lossless                                   pure Go (1, 8, 16, 32 bits)
//	1.2.840.10008.1.2.4.50    JPEG Baseline (Process 1)                      libjpeg-turbo 2.1, 8 bits
//	1.2.840.10008.1.2.4.51    JPEG Extended (Process 2 & 4)                  libjpeg-turbo 2.1 (8 bits), IJG 6b (DCMTK, 12 bits)
//	1.2.840.10008.1.2.4.57    JPEG Lossless (Process 14)                     IJG 6b (DCMTK), 2-16 bits
//	1.2.840.10008.1.2.4.70    JPEG Lossless SV1 (Process 14, predictor 1)    IJG 6b (DCMTK), 2-16 bits
//	1.2.840.10008.1.2.4.80    JPEG-LS Lossless                               CharLS 2.4
//	1.2.840.10008.1.2.4.81    JPEG-LS Near-Lossless                          CharLS 2.4
//	1.2.840.10008.1.2.4.90    JPEG 2000 Lossless                             OpenJPEG 2.5
//	1.2.840.10008.1.2.4.91    JPEG 2000                                      OpenJPEG 2.5
//	1.2.840.10008.1.2.4.201   HTJ2K Lossless                                 OpenJPEG 2.5
//	1.2.840.10008.1.2.4.202   HTJ2K Lossless RPCL                            OpenJPEG 2.5
//	1.2.840.10008.1.2.4.203   HTJ2K                                          OpenJPEG 2.5
//	1.2.840.10008.1.2.8.1     Deflated Image Frame Compression               compress/flate (1-32 bits)
//
// Libraries. RLE is a few lines of PackBits, written here; Deflated Image Frame Compression
// (PS3.5 8.2.16: each frame's native bytes deflated on its own, RFC 1951) is Go's
// compress/flate. 8-bit DCT JPEG (baseline, extended,
// also progressive) goes through libjpeg-turbo (Debian libjpeg62-turbo-dev, jpeg_mem_src, errors
// through setjmp/longjmp so that corrupt data is an error and never ends the process), which
// decodes these frames to the same samples as IJG 6b: the same integer IDCT and the same fancy
// upsampling for 4:2:2 and 4:2:0; 4:4:0 and other rarer subsamplings, which libjpeg-turbo 2
// upsamples differently, go to IJG. The other JPEG processes (12-bit extended, lossless) go
// through DCMTK's builds of the IJG library (Debian libdcmtk-dev: libijg8, libijg12 and libijg16,
// IJG 6b with the lossless process), called through DCMTK's DJDecompressIJG* classes because
// Debian ships no IJG headers; libjpeg-turbo 2.1 and Go's image/jpeg decode 8-bit DCT only.
// GDCM, which made the test references, is also IJG 6b, so the output is bit-identical to
// theirs, which the tests check (and libjpeg-turbo against IJG on every 8-bit frame of the
// corpora). A truncated 8-bit frame is an error, as IJG reports it, where libjpeg-turbo would
// pad it with grey; a progressive frame with more than 500 scans is refused. JPEG-LS uses
// CharLS and JPEG 2000 uses OpenJPEG in strict mode (a truncated codestream is an error, not a
// partly grey image), all through cgo.
//
// Behaviour matched to pydicom 2.3 with GDCM (the references of the tests):
//   - Colour JPEG comes back as the samples in the stream, without a YCbCr→RGB conversion;
//     YBR_FULL_422 is upsampled and so reported as YBR_FULL. YBRFullToRGB converts for display.
//   - JPEG 2000 with YBR_RCT or YBR_ICT comes back as RGB (the codec undoes the component
//     transform).
//   - Signed data comes back as its stored bit pattern, BitsAllocated wide: the caller
//     sign-extends from BitsStored where it wants values. Two exceptions follow the codecs: a
//     signed JPEG 2000 component is already sign-extended to the full word, and an unsigned JPEG
//     2000 component of signed DICOM data is sign-extended from its precision (pydicom's
//     correction for files whose codestream and Pixel Representation disagree).
//
// Errors. A transfer syntax outside the table is an error wrapping ErrUnsupported that names the
// UID and, when known, its name. Corrupt or truncated frames are errors, never panics: the frame
// geometry is checked (at most 65536 rows or columns, 4 samples, 1 GiB per frame) before
// anything is allocated, the codestream header must agree with FrameInfo, RLE output is bounded
// by what its input can expand to, a JPEG-LS stream without its end-of-image marker is refused
// before CharLS (which takes seconds to give up on a cut stream) sees it, and decoders written in
// Go run under a recover. Decoders keep no state between calls and are safe for concurrent use.
package codec

import (
	"errors"
	"fmt"
	"strings"
)

// Transfer syntax UIDs of the compressed syntaxes this package knows about.
const (
	RLELossless            = "1.2.840.10008.1.2.5"
	JPEGBaseline           = "1.2.840.10008.1.2.4.50"
	JPEGExtended           = "1.2.840.10008.1.2.4.51"
	JPEGLossless           = "1.2.840.10008.1.2.4.57"
	JPEGLosslessSV1        = "1.2.840.10008.1.2.4.70"
	JPEGLSLossless         = "1.2.840.10008.1.2.4.80"
	JPEGLSNearLossless     = "1.2.840.10008.1.2.4.81"
	JPEG2000Lossless       = "1.2.840.10008.1.2.4.90"
	JPEG2000               = "1.2.840.10008.1.2.4.91"
	HTJ2KLossless          = "1.2.840.10008.1.2.4.201"
	HTJ2KLosslessRPCL      = "1.2.840.10008.1.2.4.202"
	HTJ2K                  = "1.2.840.10008.1.2.4.203"
	DeflatedImageFrame     = "1.2.840.10008.1.2.8.1"
	maxFrameBytes          = 1 << 30 // largest decoded frame accepted (1 GiB)
	maxSamplesPerPixel     = 4
	maxRowsOrColumns       = 1 << 16
	defaultUnsupportedName = "unknown transfer syntax"
)

// transferSyntaxNames gives the DICOM name of transfer syntaxes, for error messages.
var transferSyntaxNames = map[string]string{
	"1.2.840.10008.1.2":        "Implicit VR Little Endian",
	"1.2.840.10008.1.2.1":      "Explicit VR Little Endian",
	"1.2.840.10008.1.2.1.99":   "Deflated Explicit VR Little Endian",
	"1.2.840.10008.1.2.2":      "Explicit VR Big Endian",
	RLELossless:                "RLE Lossless",
	JPEGBaseline:               "JPEG Baseline (Process 1)",
	JPEGExtended:               "JPEG Extended (Process 2 & 4)",
	"1.2.840.10008.1.2.4.52":   "JPEG Extended (Process 3 & 5) (retired)",
	"1.2.840.10008.1.2.4.53":   "JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8) (retired)",
	"1.2.840.10008.1.2.4.55":   "JPEG Full Progression, Non-Hierarchical (Process 10 & 12) (retired)",
	JPEGLossless:               "JPEG Lossless, Non-Hierarchical (Process 14)",
	JPEGLosslessSV1:            "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
	JPEGLSLossless:             "JPEG-LS Lossless Image Compression",
	JPEGLSNearLossless:         "JPEG-LS Lossy (Near-Lossless) Image Compression",
	JPEG2000Lossless:           "JPEG 2000 Image Compression (Lossless Only)",
	JPEG2000:                   "JPEG 2000 Image Compression",
	"1.2.840.10008.1.2.4.92":   "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)",
	"1.2.840.10008.1.2.4.93":   "JPEG 2000 Part 2 Multi-component Image Compression",
	"1.2.840.10008.1.2.4.94":   "JPIP Referenced",
	"1.2.840.10008.1.2.4.95":   "JPIP Referenced Deflate",
	"1.2.840.10008.1.2.4.100":  "MPEG2 Main Profile / Main Level",
	"1.2.840.10008.1.2.4.101":  "MPEG2 Main Profile / High Level",
	"1.2.840.10008.1.2.4.102":  "MPEG-4 AVC/H.264 High Profile / Level 4.1",
	"1.2.840.10008.1.2.4.103":  "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
	"1.2.840.10008.1.2.4.104":  "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
	"1.2.840.10008.1.2.4.105":  "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
	"1.2.840.10008.1.2.4.106":  "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
	"1.2.840.10008.1.2.4.107":  "HEVC/H.265 Main Profile / Level 5.1",
	"1.2.840.10008.1.2.4.108":  "HEVC/H.265 Main 10 Profile / Level 5.1",
	HTJ2KLossless:              "High-Throughput JPEG 2000 Image Compression (Lossless Only)",
	HTJ2KLosslessRPCL:          "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
	HTJ2K:                      "High-Throughput JPEG 2000 Image Compression",
	"1.2.840.10008.1.2.4.204":  "JPEG XL Lossless",
	"1.2.840.10008.1.2.4.205":  "JPEG XL JPEG Recompression",
	"1.2.840.10008.1.2.4.206":  "JPEG XL",
	DeflatedImageFrame:         "Deflated Image Frame Compression",
	"1.2.840.10008.1.2.1.98":   "Encapsulated Uncompressed Explicit VR Little Endian",
	"1.2.840.10008.1.2.4.80.1": "JPEG-LS (non-standard)",
}

// FrameInfo describes the frame to decode, from the Image Pixel module of the instance.
type FrameInfo struct {
	Rows, Columns, SamplesPerPixel, BitsAllocated, BitsStored int
	Signed                                                    bool
	Photometric                                               string
	PlanarConfiguration                                       int
}

// Decoded is one decoded frame.
type Decoded struct {
	Data        []byte // stored values, little endian, BitsAllocated-wide words (8→1 byte, 16→2 bytes), pixel-interleaved samples
	Photometric string // photometric of Data (e.g. YBR JPEG decoded to "RGB")
}

// ErrUnsupported is wrapped by the error Decode returns for a transfer syntax it cannot decode.
var ErrUnsupported = errors.New("unsupported transfer syntax")

// decoder decodes one frame of one transfer syntax; dst, when it has the capacity, may hold
// the output (see DecodeInto), which the decoder must then write in full.
type decoder func(frame []byte, info FrameInfo, dst []byte) (Decoded, error)

// outBuffer returns dst[:n] when dst can hold n bytes (not zeroed), else a new buffer.
func outBuffer(dst []byte, n int) []byte {
	if cap(dst) >= n {
		return dst[:n]
	}
	return make([]byte, n)
}

// decoderFor returns the decoder of a transfer syntax, or nil.
func decoderFor(ts string) decoder {
	switch ts {
	case RLELossless:
		return decodeRLE
	case JPEGBaseline, JPEGExtended, JPEGLossless, JPEGLosslessSV1:
		return decodeJPEG
	case JPEGLSLossless, JPEGLSNearLossless:
		return decodeJPEGLS
	case JPEG2000Lossless, JPEG2000, HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K:
		return decodeJ2K
	case DeflatedImageFrame:
		return decodeDeflate
	}
	return nil
}

// Supported reports whether Decode can decode frames of the transfer syntax.
func Supported(transferSyntaxUID string) bool {
	return decoderFor(cleanUID(transferSyntaxUID)) != nil
}

// Name returns the DICOM name of a transfer syntax UID, or "unknown transfer syntax".
func Name(transferSyntaxUID string) string {
	if n, ok := transferSyntaxNames[cleanUID(transferSyntaxUID)]; ok {
		return n
	}
	return defaultUnsupportedName
}

// cleanUID drops the trailing NUL or space padding that UIDs carry in DICOM files.
func cleanUID(uid string) string {
	return strings.TrimRight(uid, "\x00 ")
}

// Decode decodes one frame of encapsulated pixel data (all fragments of the frame, concatenated)
// of the given transfer syntax. It never panics: corrupt or truncated data is an error.
func Decode(transferSyntaxUID string, frame []byte, info FrameInfo) (Decoded, error) {
	return DecodeInto(transferSyntaxUID, frame, info, nil)
}

// DecodeInto is Decode with a buffer for the output: when dst has the capacity for the
// frame, the decoders of the 8-bit lossy JPEG, RLE and Deflated Image Frame Compression
// syntaxes write the samples there and Data is a slice of dst (valid until dst is reused);
// otherwise, and for the other syntaxes, Data is newly allocated. A loop that decodes frame
// after frame, each consumed before the next, allocates no pixel buffer per frame.
func DecodeInto(transferSyntaxUID string, frame []byte, info FrameInfo, dst []byte) (out Decoded, err error) {
	ts := cleanUID(transferSyntaxUID)
	dec := decoderFor(ts)
	if dec == nil {
		return Decoded{}, fmt.Errorf("%w %s (%s)", ErrUnsupported, ts, Name(ts))
	}
	if err := info.validate(); err != nil {
		return Decoded{}, fmt.Errorf("decode %s: %w", Name(ts), err)
	}
	if len(frame) == 0 {
		return Decoded{}, fmt.Errorf("decode %s: empty frame", Name(ts))
	}
	defer func() {
		if r := recover(); r != nil {
			out = Decoded{}
			err = fmt.Errorf("decode %s: corrupt data (decoder panicked: %v)", Name(ts), r)
		}
	}()
	out, err = dec(frame, info, dst)
	if err != nil {
		return Decoded{}, fmt.Errorf("decode %s: %w", Name(ts), err)
	}
	if want := info.frameBytes(); len(out.Data) != want {
		return Decoded{}, fmt.Errorf("decode %s: decoded %d bytes, want %d for %dx%dx%d at %d bits",
			Name(ts), len(out.Data), want, info.Rows, info.Columns, info.SamplesPerPixel, info.BitsAllocated)
	}
	if out.Photometric == "" {
		out.Photometric = info.Photometric
	}
	return out, nil
}

// bytesPerSample is the width of one stored sample in Data (1-bit samples are unpacked to a
// byte each).
func (fi FrameInfo) bytesPerSample() int {
	return (fi.BitsAllocated + 7) / 8
}

// frameBytes is the length of one decoded frame.
func (fi FrameInfo) frameBytes() int {
	return fi.Rows * fi.Columns * fi.SamplesPerPixel * fi.bytesPerSample()
}

// validate checks the frame geometry before anything is allocated.
func (fi FrameInfo) validate() error {
	switch {
	case fi.Rows <= 0 || fi.Columns <= 0 || fi.Rows > maxRowsOrColumns || fi.Columns > maxRowsOrColumns:
		return fmt.Errorf("invalid frame size %dx%d", fi.Rows, fi.Columns)
	case fi.SamplesPerPixel <= 0 || fi.SamplesPerPixel > maxSamplesPerPixel:
		return fmt.Errorf("invalid samples per pixel %d", fi.SamplesPerPixel)
	case fi.BitsAllocated != 1 && fi.BitsAllocated != 8 && fi.BitsAllocated != 16 && fi.BitsAllocated != 32:
		return fmt.Errorf("unsupported bits allocated %d", fi.BitsAllocated)
	case fi.BitsStored < 0 || fi.BitsStored > fi.BitsAllocated:
		return fmt.Errorf("invalid bits stored %d for bits allocated %d", fi.BitsStored, fi.BitsAllocated)
	}
	if n := int64(fi.Rows) * int64(fi.Columns) * int64(fi.SamplesPerPixel) * int64(fi.bytesPerSample()); n > maxFrameBytes {
		return fmt.Errorf("frame of %d bytes exceeds the limit of %d", n, maxFrameBytes)
	}
	return nil
}

// bitsStored is BitsStored, or BitsAllocated when the file leaves it out.
func (fi FrameInfo) bitsStored() int {
	if fi.BitsStored == 0 {
		return fi.BitsAllocated
	}
	return fi.BitsStored
}
