package dicomio

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Transfer syntax UIDs the reader handles itself (native and deflated encodings).
const (
	TSImplicitLittle = "1.2.840.10008.1.2"
	TSExplicitLittle = "1.2.840.10008.1.2.1"
	TSDeflated       = "1.2.840.10008.1.2.1.99"
	TSExplicitBig    = "1.2.840.10008.1.2.2"
)

const (
	readUndefinedLength = 0xFFFFFFFF
	readMaxDepth        = 64 // sequences nested deeper than this are refused
)

// Errors that name what is wrong with a file's structure; the reader wraps them with the
// path and the place in the file.
var (
	ErrNotDICOM       = errors.New("not a DICOM file")
	ErrTruncated      = errors.New("truncated")
	ErrTooLarge       = errors.New("exceeds the memory limit")
	ErrNoPixelData    = errors.New("no pixel data")
	ErrUnsupportedTS  = errors.New("unsupported transfer syntax")
	ErrBadPixelLayout = errors.New("inconsistent image attributes")
	// ErrUnsupportedPixels is a pixel format the reader does not decode (float pixel data in
	// a compressed syntax).
	ErrUnsupportedPixels = errors.New("unsupported pixel format")
)

// readLayout is where the parts of a DICOM file are, found by walking the element headers
// (not the values) before anything is allocated from a length field.
type readLayout struct {
	data        []byte // the data set (inflated when the file is deflated), from dataStart
	meta        map[uint16]string
	hasPreamble bool
	ts          string // from the file meta information, or inferred
	bo          binary.ByteOrder
	implicit    bool

	// attrEnd is where the attributes before Pixel Data end, relative to data.
	attrEnd int64
	// pixelTag is 0x7FE00010 (Pixel Data), 0x7FE00008 (Float) or 0x7FE00009 (Double Float);
	// 0 when the data set has none.
	pixelTag    uint32
	pixelVR     string
	pixelStart  int64 // value offset in data
	pixelLen    int64 // value length; -1 for encapsulated (undefined length)
	pixelAvail  int64 // bytes of the value actually present (native)
	fragments   [][2]int64
	offsetTable []uint32
	// extOffsets is the Extended Offset Table (7FE0,0001), when the file has one.
	extOffsets []uint64
	// charsetUN is the offset of a top-level Specific Character Set encoded with VR UN
	// (explicit VR), which the parsing library cannot take; -1 when there is none.
	charsetUN int64
	// unCuts are top-level elements the library would misread, cut from what it parses:
	// VR UN of undefined length (a sequence of unknown type, encoded implicit VR little
	// endian as the standard says; the library reads its items in the data set's encoding)
	// and VRs OV, SV and UV (4-byte lengths, which the library reads as 2-byte).
	unCuts [][2]int64
	// decoded are top-level attributes of simple value (text in ASCII, integers) decoded here
	// as the library would decode them (readSimpleElement), and decodedCuts their bytes, cut
	// from what the library parses when the character set allows (readCharsetASCII).
	decoded     []*dicom.Element
	decodedCuts [][2]int64
	// charset is the value of a top-level Specific Character Set of VR CS.
	charset string
	// scratch, when not nil, lends the buffer for decoded pixels.
	scratch *readScratch
	// allAttributes gives the library every top-level attribute; without it the walk cuts
	// those the reader does not use (readTopLevelTags), which the library would otherwise
	// parse one by one.
	allAttributes bool
	// prefix says data holds only the start of the file: running out of bytes is
	// ErrTruncated (the caller reads more).
	prefix bool
	// skipPixels stops the walk at Pixel Data without walking its fragments (metadata reads).
	skipPixels bool
}

// readExplicitLong lists the VRs whose explicit encoding has a 4-byte length, exactly as the
// parsing library reads them (it treats NA as long and OV, SV, UV as short): the walk must
// see the same element boundaries as the library, so that every length the library
// allocates from has been checked here.
func readExplicitLong(vr string) bool {
	switch vr {
	case "NA", "OB", "OD", "OF", "OL", "OW", "SQ", "UC", "UN", "UR", "UT":
		return true
	}
	return false
}

// readVR64 lists the 64-bit VRs (added to the standard in 2019), which have 4-byte lengths
// but which the library reads with 2-byte lengths.
func readVR64(vr string) bool {
	return vr == "OV" || vr == "SV" || vr == "UV"
}

func readVRValid(b0, b1 byte) bool {
	return b0 >= 'A' && b0 <= 'Z' && b1 >= 'A' && b1 <= 'Z'
}

// sniffDICOM reports whether prefix (the first bytes of a file, at least 132 when the file
// is that long) looks like DICOM: "DICM" after a 128-byte preamble, or a data set that starts
// with a plausible element (a group 0002 or 0008 tag, in explicit or implicit VR).
func sniffDICOM(prefix []byte) bool {
	if len(prefix) >= 132 && string(prefix[128:132]) == "DICM" || len(prefix) >= 4 && string(prefix[:4]) == "DICM" {
		return true
	}
	_, _, ok := readGuessSyntax(prefix)
	return ok
}

// readGuessSyntax infers the encoding of a data set without file meta information from its
// first element.
func readGuessSyntax(b []byte) (binary.ByteOrder, bool, bool) {
	if len(b) < 8 {
		return nil, false, false
	}
	plausible := func(group uint16) bool { return group == 0x0002 || group == 0x0008 }
	if g := binary.LittleEndian.Uint16(b); plausible(g) {
		if readVRValid(b[4], b[5]) {
			return binary.LittleEndian, false, true
		}
		if l := binary.LittleEndian.Uint32(b[4:]); l < 1<<16 {
			return binary.LittleEndian, true, true
		}
	}
	if g := binary.BigEndian.Uint16(b); plausible(g) && readVRValid(b[4], b[5]) {
		return binary.BigEndian, false, true
	}
	return nil, false, false
}

// readTSEncoding maps a transfer syntax UID to its byte order and VR encoding. Every
// syntax other than implicit little endian and explicit big endian is explicit little
// endian (the encapsulated ones included).
func readTSEncoding(ts string) (binary.ByteOrder, bool) {
	switch ts {
	case TSImplicitLittle:
		return binary.LittleEndian, true
	case TSExplicitBig:
		return binary.BigEndian, false
	}
	return binary.LittleEndian, false
}

// readLayoutOf walks the file in src (size bytes) and returns its layout. maxBytes bounds
// the inflated size of a deflated data set.
func readLayoutOf(src []byte, maxBytes int64, partial, pixels bool) (*readLayout, error) {
	return readLayoutWith(src, maxBytes, partial, pixels, false)
}

// readLayoutWith is readLayoutOf; allAttributes keeps every top-level attribute for the
// library (the tests compare both).
func readLayoutWith(src []byte, maxBytes int64, partial, pixels, allAttributes bool) (*readLayout, error) {
	l := &readLayout{meta: map[uint16]string{}, charsetUN: -1, prefix: partial, skipPixels: partial || !pixels, allAttributes: allAttributes}
	off := 0
	switch {
	case len(src) >= 132 && string(src[128:132]) == "DICM":
		l.hasPreamble = true
		off = 132
	case len(src) >= 4 && string(src[:4]) == "DICM":
		off = 4
	}
	if off > 0 || (len(src) >= 8 && binary.LittleEndian.Uint16(src) == 0x0002 && readVRValid(src[4], src[5])) {
		var err error
		off, err = l.readMeta(src, off)
		if err != nil {
			return nil, err
		}
	}
	body := src[off:]
	if ts, ok := l.meta[0x0010]; ok && ts != "" {
		l.ts = ts
		l.bo, l.implicit = readTSEncoding(ts)
	} else {
		bo, implicit, ok := readGuessSyntax(body)
		if !ok {
			if off == 0 {
				return nil, ErrNotDICOM
			}
			// Meta information without a transfer syntax: the default is implicit VR little endian.
			bo, implicit = binary.LittleEndian, true
		}
		l.bo, l.implicit = bo, implicit
		switch {
		case implicit:
			l.ts = TSImplicitLittle
		case bo == binary.BigEndian:
			l.ts = TSExplicitBig
		default:
			l.ts = TSExplicitLittle
		}
	}
	if l.ts == TSDeflated {
		inflated, err := readInflate(body, maxBytes)
		if err != nil {
			if partial && !errors.Is(err, ErrTooLarge) {
				// A cut deflate stream: read more of the file.
				return nil, fmt.Errorf("%v: %w", err, ErrTruncated)
			}
			return nil, err
		}
		body = inflated
	}
	if !l.implicit && len(body) >= 8 && !readVRValid(body[4], body[5]) {
		// The meta information says explicit VR but the data set is implicit (a known
		// writer bug, which other readers also tolerate).
		l.implicit = true
	}
	l.data = body
	if err := l.walkTop(); err != nil {
		return nil, err
	}
	return l, nil
}

// readInflate inflates a deflated data set, refusing to produce more than maxBytes.
func readInflate(body []byte, maxBytes int64) ([]byte, error) {
	fr := flate.NewReader(bytes.NewReader(body))
	defer fr.Close()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(fr, maxBytes+1))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("inflate deflated data set: %w", err)
	}
	if n > maxBytes {
		return nil, fmt.Errorf("inflated data set %w of %d bytes", ErrTooLarge, maxBytes)
	}
	return buf.Bytes(), nil
}

// readMeta reads the group 0002 elements (always explicit VR little endian) starting at off
// and returns the offset of the data set.
func (l *readLayout) readMeta(src []byte, off int) (int, error) {
	for off+8 <= len(src) {
		if binary.LittleEndian.Uint16(src[off:]) != 0x0002 {
			break
		}
		el := binary.LittleEndian.Uint16(src[off+2:])
		vr := string(src[off+4 : off+6])
		var vl, hdr int
		if readExplicitLong(vr) {
			if off+12 > len(src) {
				return 0, fmt.Errorf("file meta information: %w", ErrTruncated)
			}
			vl, hdr = int(binary.LittleEndian.Uint32(src[off+8:])), 12
		} else {
			vl, hdr = int(binary.LittleEndian.Uint16(src[off+6:])), 8
		}
		if vl < 0 || uint32(vl) == readUndefinedLength || off+hdr+vl > len(src) {
			return 0, fmt.Errorf("file meta element (0002,%04X) length %d: %w", el, vl, ErrTruncated)
		}
		if vr == "UI" || vr == "SH" || vr == "AE" || vr == "CS" || vr == "LO" {
			l.meta[el] = strings.TrimRight(string(src[off+hdr:off+hdr+vl]), " \x00")
		}
		off += hdr + vl
	}
	return off, nil
}

// walkTop walks the top-level data set, recording where Pixel Data is, and checks every
// length field against the bytes that remain.
func (l *readLayout) walkTop() error {
	end, pix, err := l.walk(0, int64(len(l.data)), l.bo, l.implicit, false, 0)
	if err != nil {
		return err
	}
	if l.prefix && pix < 0 {
		return fmt.Errorf("attributes continue past the bytes read: %w", ErrTruncated)
	}
	l.attrEnd = end
	if pix >= 0 {
		l.attrEnd = pix
	}
	return nil
}

// readHeader decodes one element header at off.
func readHeaderAt(b []byte, off int64, bo binary.ByteOrder, implicit bool) (group, elem uint16, vr string, vl uint32, hdr int64, err error) {
	if off+8 > int64(len(b)) {
		return 0, 0, "", 0, 0, ErrTruncated
	}
	group = bo.Uint16(b[off:])
	elem = bo.Uint16(b[off+2:])
	if group == 0xFFFE || implicit {
		// Item and delimitation tags have no VR in any syntax.
		return group, elem, "", bo.Uint32(b[off+4:]), 8, nil
	}
	vr = string(b[off+4 : off+6])
	if readExplicitLong(vr) || readVR64(vr) {
		if off+12 > int64(len(b)) {
			return 0, 0, "", 0, 0, ErrTruncated
		}
		return group, elem, vr, bo.Uint32(b[off+8:]), 12, nil
	}
	vl = uint32(bo.Uint16(b[off+6:]))
	if vl == 0xFFFF {
		vl = readUndefinedLength // as the library reads it
	}
	return group, elem, vr, vl, 8, nil
}

// readIsSequence reports whether an implicit-VR element with this tag is a sequence.
func readIsSequence(group, elem uint16) bool {
	info, err := tag.Find(tag.Tag{Group: group, Element: elem})
	return err == nil && len(info.VRs) > 0 && info.VRs[0] == "SQ"
}

// walk walks elements in [off, end). When inItem is true it stops after an Item
// Delimitation Item. It returns where it stopped and, at depth 0, the offset of the Pixel
// Data element (-1 when there is none); at depth 0 the walk stops at Pixel Data.
func (l *readLayout) walk(off, end int64, bo binary.ByteOrder, implicit, inItem bool, depth int) (int64, int64, error) {
	if depth > readMaxDepth {
		return 0, -1, fmt.Errorf("sequences nested deeper than %d levels", readMaxDepth)
	}
	b := l.data
	for off < end {
		if depth == 0 && end-off < 8 && !l.prefix {
			// Trailing bytes too short for an element header: ignored, as other readers do.
			return off, -1, nil
		}
		group, elem, vr, vl, hdr, err := readHeaderAt(b, off, bo, implicit)
		if err != nil {
			return 0, -1, fmt.Errorf("element header at byte %d: %w", off, err)
		}
		if group == 0xFFFE {
			switch elem {
			case 0xE00D:
				if inItem {
					return off + 8, -1, nil
				}
			case 0xE0DD:
				if depth > 0 {
					return off, -1, nil // the caller handles a sequence's delimiter
				}
			}
			off += 8
			continue
		}
		tg := uint32(group)<<16 | uint32(elem)
		valStart := off + hdr
		if depth == 0 && (tg == 0x7FE00010 || tg == 0x7FE00008 || tg == 0x7FE00009) {
			return off, off, l.pixelElement(tg, vr, vl, valStart)
		}
		if vl == readUndefinedLength && group == 0x7FE0 {
			// Encapsulated pixel data nested in a sequence (an icon image): skip its fragments.
			next, err := readSkipFragments(b, valStart, end)
			if err != nil {
				return 0, -1, fmt.Errorf("nested pixel data: %w", err)
			}
			off = next
			continue
		}
		if vl == readUndefinedLength && depth == 0 && vr == "UN" && !implicit {
			next, err := l.walkItems(valStart, end, binary.LittleEndian, true, depth+1, true)
			if err != nil {
				return 0, -1, fmt.Errorf("sequence (%04X,%04X) of VR UN: %w", group, elem, err)
			}
			l.cut(off, next)
			off = next
			continue
		}
		if vl == readUndefinedLength {
			// A sequence (or, nested, UN of undefined length, whose items the library reads
			// in the data set's encoding).
			next, err := l.walkItems(valStart, end, bo, implicit, depth+1, true)
			if err != nil {
				return 0, -1, fmt.Errorf("sequence (%04X,%04X): %w", group, elem, err)
			}
			if depth == 0 && !l.allAttributes && !readTopLevelTag(tg) {
				l.cut(off, next)
			}
			off = next
			continue
		}
		if depth == 0 && tg == 0x00080005 && vr == "UN" {
			l.charsetUN = off
		}
		if int64(vl) > end-valStart {
			return 0, -1, fmt.Errorf("element (%04X,%04X) length %d exceeds the %d bytes left: %w", group, elem, vl, end-valStart, ErrTruncated)
		}
		if !implicit && readVR64(vr) {
			if depth > 0 {
				return 0, -1, fmt.Errorf("element (%04X,%04X) of VR %s inside a sequence: %w", group, elem, vr, errReadAttributes)
			}
			if tg == 0x7FE00001 && vr == "OV" {
				for i := valStart; i+8 <= valStart+int64(vl); i += 8 {
					l.extOffsets = append(l.extOffsets, bo.Uint64(b[i:]))
				}
			}
			l.cut(off, valStart+int64(vl))
			off = valStart + int64(vl)
			continue
		}
		if depth == 0 && tg == 0x00080005 && vr == "CS" {
			l.charset = strings.Trim(string(b[valStart:valStart+int64(vl)]), " \x00")
		}
		if depth == 0 && !l.allAttributes && !implicit && bo == binary.LittleEndian && tg != 0x00080005 && readTopLevelTag(tg) {
			if el := readSimpleElement(tag.Tag{Group: group, Element: elem}, vr, b[valStart:valStart+int64(vl)]); el != nil {
				l.decoded = append(l.decoded, el)
				l.decodedCuts = append(l.decodedCuts, [2]int64{off, valStart + int64(vl)})
				off = valStart + int64(vl)
				continue
			}
		}
		if vr == "SQ" || (implicit && readIsSequence(group, elem)) {
			if _, err := l.walkItems(valStart, valStart+int64(vl), bo, implicit, depth+1, false); err != nil {
				return 0, -1, fmt.Errorf("sequence (%04X,%04X): %w", group, elem, err)
			}
		}
		if depth == 0 && !l.allAttributes && !readTopLevelTag(tg) {
			l.cut(off, valStart+int64(vl))
		}
		off = valStart + int64(vl)
	}
	return off, -1, nil
}

// cut removes the top-level bytes [from, to) from what the library parses, joining it to the
// previous cut when they touch.
func (l *readLayout) cut(from, to int64) {
	if n := len(l.unCuts); n > 0 && l.unCuts[n-1][1] == from {
		l.unCuts[n-1][1] = to
		return
	}
	l.unCuts = append(l.unCuts, [2]int64{from, to})
}

// walkItems walks the items of a sequence value in [off, end); undefined marks a sequence of
// undefined length, which ends with a Sequence Delimitation Item.
func (l *readLayout) walkItems(off, end int64, bo binary.ByteOrder, implicit bool, depth int, undefined bool) (int64, error) {
	b := l.data
	for off < end {
		if off+8 > end {
			return 0, fmt.Errorf("item header at byte %d: %w", off, ErrTruncated)
		}
		group, elem := bo.Uint16(b[off:]), bo.Uint16(b[off+2:])
		vl := bo.Uint32(b[off+4:])
		if group != 0xFFFE {
			return 0, fmt.Errorf("expected an item at byte %d, found (%04X,%04X)", off, group, elem)
		}
		switch elem {
		case 0xE0DD:
			return off + 8, nil
		case 0xE000:
		default:
			off += 8
			continue
		}
		itemStart := off + 8
		if vl == readUndefinedLength {
			next, _, err := l.walk(itemStart, end, bo, implicit, true, depth)
			if err != nil {
				return 0, err
			}
			off = next
			continue
		}
		if int64(vl) > end-itemStart {
			return 0, fmt.Errorf("item length %d exceeds the %d bytes left: %w", vl, end-itemStart, ErrTruncated)
		}
		if _, _, err := l.walk(itemStart, itemStart+int64(vl), bo, implicit, false, depth); err != nil {
			return 0, err
		}
		off = itemStart + int64(vl)
	}
	if undefined {
		return 0, fmt.Errorf("sequence without a delimiter: %w", ErrTruncated)
	}
	return off, nil
}

// pixelElement records the pixel data element whose value starts at valStart.
func (l *readLayout) pixelElement(tg uint32, vr string, vl uint32, valStart int64) error {
	l.pixelTag, l.pixelVR, l.pixelStart = tg, vr, valStart
	b := l.data
	end := int64(len(b))
	if l.skipPixels {
		// Metadata only: where the pixels are is enough.
		l.pixelLen = int64(vl)
		if vl == readUndefinedLength {
			l.pixelLen = -1
		}
		return nil
	}
	if vl != readUndefinedLength {
		l.pixelLen = int64(vl)
		l.pixelAvail = min(int64(vl), end-valStart)
		return nil
	}
	// Encapsulated: Basic Offset Table item, then one item per fragment. Items are always
	// little endian in the encapsulated syntaxes.
	l.pixelLen = -1
	off := valStart
	first := true
	for {
		if off+8 > end {
			if first || len(l.fragments) == 0 {
				return fmt.Errorf("encapsulated pixel data: %w", ErrTruncated)
			}
			return nil // missing sequence delimiter after complete fragments: tolerated
		}
		group, elem := binary.LittleEndian.Uint16(b[off:]), binary.LittleEndian.Uint16(b[off+2:])
		vl := binary.LittleEndian.Uint32(b[off+4:])
		if group != 0xFFFE {
			return fmt.Errorf("encapsulated pixel data: expected an item at byte %d, found (%04X,%04X)", off, group, elem)
		}
		if elem == 0xE0DD {
			return nil
		}
		if elem != 0xE000 || vl == readUndefinedLength {
			return fmt.Errorf("encapsulated pixel data: bad item (FFFE,%04X) length %d at byte %d", elem, vl, off)
		}
		start := off + 8
		if int64(vl) > end-start {
			if !first && len(l.fragments) > 0 {
				// The last fragment is cut short; keep what is there and let the codec judge.
				l.fragments = append(l.fragments, [2]int64{start, end})
				return nil
			}
			return fmt.Errorf("encapsulated pixel data: item length %d exceeds the %d bytes left: %w", vl, end-start, ErrTruncated)
		}
		if first {
			for i := int64(0); i+4 <= int64(vl); i += 4 {
				l.offsetTable = append(l.offsetTable, binary.LittleEndian.Uint32(b[start+i:]))
			}
			first = false
		} else {
			l.fragments = append(l.fragments, [2]int64{start, start + int64(vl)})
		}
		off = start + int64(vl)
	}
}

// readSkipFragments skips the items of an encapsulated value starting at off and returns the
// offset after its Sequence Delimitation Item.
func readSkipFragments(b []byte, off, end int64) (int64, error) {
	for off+8 <= end {
		group, elem := binary.LittleEndian.Uint16(b[off:]), binary.LittleEndian.Uint16(b[off+2:])
		vl := binary.LittleEndian.Uint32(b[off+4:])
		if group != 0xFFFE || vl == readUndefinedLength {
			return 0, fmt.Errorf("bad fragment item at byte %d", off)
		}
		off += 8
		if elem == 0xE0DD {
			return off, nil
		}
		if int64(vl) > end-off {
			return 0, fmt.Errorf("fragment length %d exceeds the %d bytes left: %w", vl, end-off, ErrTruncated)
		}
		off += int64(vl)
	}
	return 0, fmt.Errorf("fragments without a delimiter: %w", ErrTruncated)
}
