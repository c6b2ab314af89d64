package dicomio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/suyashkumar/dicom"
)

// DefaultMaxBytes is the default limit on a file's size, an inflated data set and a decoded
// pixel buffer: 1 GiB.
const DefaultMaxBytes int64 = 1 << 30

// ReadOptions tune the reader.
type ReadOptions struct {
	// MaxBytes bounds the file size, the inflated size of a deflated data set and the
	// decoded pixel buffer of one instance; 0 means DefaultMaxBytes.
	MaxBytes int64
}

func (o ReadOptions) maxBytes() int64 {
	if o.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return o.MaxBytes
}

// ReadError is the error for one file that could not be read or decoded: the path and a
// short reason that groups errors in summaries ("truncated", "unsupported transfer syntax
// 1.2.840.10008.1.2.4.203", ...), with the underlying error.
type ReadError struct {
	Path   string
	Reason string
	Err    error
}

func (e *ReadError) Error() string { return fmt.Sprintf("read %s: %v", e.Path, e.Err) }
func (e *ReadError) Unwrap() error { return e.Err }

// ErrorReason returns the short reason of a reader error, for grouping errors in summaries.
func ErrorReason(err error) string {
	var re *ReadError
	if errors.As(err, &re) {
		return re.Reason
	}
	if err == nil {
		return ""
	}
	return "error"
}

// readFail wraps err for path with its reason.
func readFail(path string, err error) error {
	var re *ReadError
	if errors.As(err, &re) {
		return err
	}
	return &ReadError{Path: path, Reason: readReasonOf(err), Err: err}
}

func readReasonOf(err error) string {
	var ut *readUnsupportedTS
	switch {
	case errors.As(err, &ut):
		return "unsupported transfer syntax " + ut.uid
	case errors.Is(err, ErrNotDICOM):
		return "not DICOM"
	case errors.Is(err, ErrTooLarge):
		return "too large"
	case errors.Is(err, ErrTruncated):
		return "truncated"
	case errors.Is(err, ErrNoPixelData):
		return "no pixel data"
	case errors.Is(err, ErrUnsupportedPixels):
		return "unsupported pixel format"
	case errors.Is(err, ErrBadPixelLayout):
		return "inconsistent image attributes"
	case errors.Is(err, errReadPanic):
		return "parser crashed"
	case errors.Is(err, errReadInternal):
		return "reader failure"
	case errors.Is(err, errReadAttributes):
		return "malformed attributes"
	case errors.Is(err, errReadCodec):
		return "corrupt compressed pixel data"
	}
	return "unreadable"
}

var (
	errReadPanic      = errors.New("DICOM parser crashed")
	errReadAttributes = errors.New("malformed attributes")
	errReadCodec      = errors.New("pixel decoding failed")
	errReadInternal   = errors.New("reader failure")
)

// readPanicSite returns the function that panicked, from a goroutine stack trace: the first
// frame after the panic call that is not in the runtime.
func readPanicSite(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, "panic(") {
			continue
		}
		for _, fn := range lines[i+1:] {
			if strings.HasPrefix(fn, "\t") || strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "log.") {
				continue
			}
			return fn
		}
	}
	return "unknown"
}

// readUnsupportedTS is the error for a transfer syntax that cannot be decoded.
type readUnsupportedTS struct {
	uid, name string
}

func (e *readUnsupportedTS) Error() string {
	return fmt.Sprintf("%v %s (%s)", ErrUnsupportedTS, e.uid, e.name)
}
func (e *readUnsupportedTS) Is(target error) bool { return target == ErrUnsupportedTS }

// ReadInstance reads the metadata of the DICOM file at path, without decoding pixels. For a
// structured report it also collects the report text.
func ReadInstance(path string, opt ReadOptions) (Instance, error) {
	in, _, err := readPath(path, opt, false)
	return in, err
}

// ReadImage reads the metadata of the DICOM file at path and decodes its pixel data to
// stored values.
func ReadImage(path string, opt ReadOptions) (Instance, *Image, error) {
	return readPath(path, opt, true)
}

// ReadBytes reads a DICOM file held in memory; path only names it in errors and in the
// returned Instance. With pixels it also decodes the pixel data. It never panics: a panic in
// the DICOM library becomes an error naming the file.
func ReadBytes(data []byte, path string, opt ReadOptions, pixels bool) (in Instance, img *Image, err error) {
	return readBytes(data, path, opt, pixels, false)
}

// readBytes is ReadBytes; partial says that data is only the start of the file (metadata
// reads), so running out of bytes is ErrTruncated and pixel data is not walked.
func readBytes(data []byte, path string, opt ReadOptions, pixels, partial bool) (in Instance, img *Image, err error) {
	return readBytesWith(data, path, opt, pixels, partial, false, nil)
}

// readBytesWith is readBytes; allAttributes gives the parsing library every top-level
// attribute instead of those the reader uses (the tests compare both); with scratch, the
// decoded pixels go into its buffer (and the Image aliases it).
func readBytesWith(data []byte, path string, opt ReadOptions, pixels, partial, allAttributes bool, scratch *readScratch) (in Instance, img *Image, err error) {
	in.Path = path
	defer func() {
		if r := recover(); r != nil {
			img = nil
			site := readPanicSite(debug.Stack())
			if strings.Contains(site, "github.com/suyashkumar/dicom") {
				err = readFail(path, fmt.Errorf("%w: %v", errReadPanic, r))
			} else {
				err = readFail(path, fmt.Errorf("%w: %v at %s", errReadInternal, r, site))
			}
		}
	}()
	if int64(len(data)) > opt.maxBytes() {
		return in, nil, readFail(path, fmt.Errorf("file of %d bytes %w of %d bytes", len(data), ErrTooLarge, opt.maxBytes()))
	}
	l, err := readLayoutWith(data, opt.maxBytes(), partial, pixels, allAttributes)
	if err != nil {
		return in, nil, readFail(path, err)
	}
	l.scratch = scratch
	ds, err := l.parseAttributes()
	if err != nil {
		return in, nil, readFail(path, err)
	}
	readFillInstance(&in, l, ds)
	if !pixels {
		return in, nil, nil
	}
	img, err = l.decodePixels(&in, opt.maxBytes())
	if err != nil {
		return in, nil, readFail(path, err)
	}
	return in, img, nil
}

// parseAttributes parses the attributes before Pixel Data with the DICOM library. The
// library is given a file meta header built here that names the canonical syntax of the
// data set's encoding: it then never infers a syntax by trial reads (which allocate from
// unchecked lengths) and never reads the file's own meta information.
func (l *readLayout) parseAttributes() (ds dicom.Dataset, err error) {
	attrs := l.data[:l.attrEnd]
	cuts := l.unCuts
	if len(l.decoded) > 0 && readCharsetASCII(l.charset) {
		// The attributes decoded by the walk are taken as they are, and cut from what the
		// library parses; under another character set the library decodes them all.
		ds.Elements = append(ds.Elements, l.decoded...)
		cuts = readMergeCuts(l.unCuts, l.decodedCuts)
	}
	if len(cuts) > 0 {
		kept := make([]byte, 0, len(attrs))
		prev := int64(0)
		for _, c := range cuts {
			kept = append(kept, attrs[prev:c[0]]...)
			prev = c[1]
		}
		attrs = append(kept, attrs[prev:]...)
		if l.charsetUN >= 0 {
			// The cuts come after the character set or not at all before it; recompute
			// its offset in the kept bytes.
			shift := int64(0)
			for _, c := range cuts {
				if c[1] <= l.charsetUN {
					shift += c[1] - c[0]
				}
			}
			l.charsetUN -= shift
		}
	}
	if l.charsetUN >= 0 {
		attrs = readRewriteCharsetUN(attrs, l.charsetUN, l.bo)
	}
	if readOnlyCharset(attrs, l.bo, l.implicit) {
		// Nothing left for the library but the character set, which the reader does not use.
		return ds, nil
	}
	ts := TSExplicitLittle
	switch {
	case l.implicit:
		ts = TSImplicitLittle
	case l.bo == binary.BigEndian:
		ts = TSExplicitBig
	}
	prefix := readMetaPrefix(ts)
	in := io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(attrs))
	p, perr := dicom.NewParser(in, int64(len(prefix)+len(attrs)), nil,
		dicom.AllowUnknownSpecificCharacterSet(), dicom.SkipPixelData())
	if perr != nil || p == nil {
		return ds, fmt.Errorf("%w: %v", errReadAttributes, perr)
	}
	p.SetTransferSyntax(l.bo, l.implicit)
	for {
		el, err := p.Next()
		if err != nil {
			if errors.Is(err, dicom.ErrorEndOfDICOM) || errors.Is(err, io.EOF) {
				break
			}
			return ds, fmt.Errorf("%w: %v", errReadAttributes, err)
		}
		if el.Tag.Group == 0x0002 {
			continue
		}
		ds.Elements = append(ds.Elements, el)
	}
	return ds, nil
}

// readMergeCuts merges two lists of cuts, each in file order, into one in file order.
func readMergeCuts(a, b [][2]int64) [][2]int64 {
	out := make([][2]int64, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || len(a) > 0 && a[0][0] < b[0][0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

// readOnlyCharset reports whether attrs is empty or holds only a Specific Character Set.
func readOnlyCharset(attrs []byte, bo binary.ByteOrder, implicit bool) bool {
	if len(attrs) == 0 {
		return true
	}
	group, elem, _, vl, hdr, err := readHeaderAt(attrs, 0, bo, implicit)
	return err == nil && group == 0x0008 && elem == 0x0005 && vl != readUndefinedLength && hdr+int64(vl) == int64(len(attrs))
}

// readMetaPrefix returns a preamble, "DICM" and a minimal file meta information group that
// names the transfer syntax ts.
func readMetaPrefix(ts string) []byte {
	uid := []byte(ts)
	if len(uid)%2 == 1 {
		uid = append(uid, 0)
	}
	out := make([]byte, 128, 128+4+12+8+len(uid))
	out = append(out, "DICM"...)
	out = append(out, 0x02, 0x00, 0x00, 0x00, 'U', 'L', 4, 0)
	out = binary.LittleEndian.AppendUint32(out, uint32(8+len(uid)))
	out = append(out, 0x02, 0x00, 0x10, 0x00, 'U', 'I')
	out = binary.LittleEndian.AppendUint16(out, uint16(len(uid)))
	return append(out, uid...)
}

// readRewriteCharsetUN re-encodes a Specific Character Set stored with VR UN (12-byte
// header) as CS (8-byte header), so that the library reads it as text.
func readRewriteCharsetUN(attrs []byte, off int64, bo binary.ByteOrder) []byte {
	if off+12 > int64(len(attrs)) {
		return attrs
	}
	vl := int64(bo.Uint32(attrs[off+8:]))
	if vl > 0xFFFF || off+12+vl > int64(len(attrs)) {
		return attrs
	}
	out := make([]byte, 0, len(attrs))
	out = append(out, attrs[:off+4]...)
	out = append(out, 'C', 'S', 0, 0)
	bo.PutUint16(out[len(out)-2:], uint16(vl))
	out = append(out, attrs[off+12:]...)
	return out
}
