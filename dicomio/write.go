package dicomio

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Writing Part 10 files. The byte encoding is left to github.com/suyashkumar/dicom (v1.1.0);
// this file adds what its writer does not do, which is why these parts are hand-written: it does
// not sort elements (every level is sorted here), it looks VRs up in a dictionary that lacks
// recent attributes such as (0008,001C) and knows no private ones (every element is built with
// an explicit VR and written with SkipVRVerification), it does not add an Implementation Class
// UID, it keeps stale group lengths (none is ever built here), it converts native pixels one
// value at a time (raw little-endian bytes are handed over instead), and it writes in place
// (files go through a temporary name and a rename).

// Transfer syntax and file meta constants of files the writer makes.
const (
	ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
	// ImplementationVersionPrefix starts the Implementation Version Name (0002,0013).
	ImplementationVersionPrefix = "AUGMENT"
)

// writeElems collects the elements of one data set (or sequence item) and the first error met
// while building them. Every element carries its VR explicitly, so no dictionary look-up is
// needed when writing (the library's dictionary lacks some recent attributes).
type writeElems struct {
	list []*dicom.Element
	err  error
}

func (b *writeElems) add(t tag.Tag, vr string, data any) {
	v, err := dicom.NewValue(data)
	if err != nil {
		if b.err == nil {
			b.err = fmt.Errorf("build %s: %w", wrTagString(t), err)
		}
		return
	}
	b.list = append(b.list, &dicom.Element{
		Tag:                    t,
		ValueRepresentation:    tag.GetVRKind(t, vr),
		RawValueRepresentation: vr,
		Value:                  v,
	})
}

// str adds a string-valued element; no values writes an empty (zero-length) element, which is how
// a Type 2 attribute says "unknown".
func (b *writeElems) str(t tag.Tag, vr string, values ...string) {
	if values == nil {
		values = []string{}
	}
	b.add(t, vr, values)
}

// ints adds US, SS, UL, SL or AT values.
func (b *writeElems) ints(t tag.Tag, vr string, values ...int) { b.add(t, vr, values) }

// seq adds a sequence of items; each item's elements are put in tag order.
func (b *writeElems) seq(t tag.Tag, items ...*writeElems) {
	data := make([][]*dicom.Element, 0, len(items))
	for _, it := range items {
		if it.err != nil && b.err == nil {
			b.err = it.err
		}
		data = append(data, wrSortedElements(it.list))
	}
	b.add(t, "SQ", data)
}

// has reports whether t was added.
func (b *writeElems) has(t tag.Tag) bool {
	return slices.ContainsFunc(b.list, func(e *dicom.Element) bool { return e.Tag == t })
}

// code returns a Code Sequence macro item.
func wrCodeItem(c Code) *writeElems {
	it := &writeElems{}
	it.str(tag.CodeValue, "SH", c.Value)
	it.str(tag.CodingSchemeDesignator, "SH", c.Scheme)
	it.str(tag.CodeMeaning, "LO", c.Meaning)
	return it
}

func wrSortedElements(list []*dicom.Element) []*dicom.Element {
	out := slices.Clone(list)
	slices.SortStableFunc(out, func(a, b *dicom.Element) int {
		if c := cmp.Compare(a.Tag.Group, b.Tag.Group); c != 0 {
			return c
		}
		return cmp.Compare(a.Tag.Element, b.Tag.Element)
	})
	return out
}

func wrTagString(t tag.Tag) string { return fmt.Sprintf("(%04X,%04X)", t.Group, t.Element) }

// encodePart10 encodes a DICOM Part 10 file: the file meta group (with its group length and
// nothing else of group 0002 beyond meta) followed by the data set in explicit VR little endian,
// every level in ascending tag order, without any other group length element.
func encodePart10(meta, data []*dicom.Element) (out []byte, err error) {
	var all []*dicom.Element
	for _, e := range wrSortedElements(meta) {
		if e.Tag.Group != 0x0002 || e.Tag.Element == 0x0000 {
			return nil, fmt.Errorf("encode: %s is not a file meta element", wrTagString(e.Tag))
		}
		all = append(all, e)
	}
	for _, e := range wrSortedElements(data) {
		if e.Tag.Group == 0x0002 || e.Tag.Element == 0x0000 {
			return nil, fmt.Errorf("encode: %s does not belong in the data set", wrTagString(e.Tag))
		}
		all = append(all, e)
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("encode: DICOM writer panicked: %v", r)
		}
	}()
	var buf bytes.Buffer
	if err := dicom.Write(&buf, dicom.Dataset{Elements: all}, dicom.SkipVRVerification()); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteFileAtomic writes data to path through a temporary file in the same folder that is
// synced, made readable by all (0644, as a file written in place would be; a temporary
// file is created 0600) and then renamed, so a reader never sees a half-written file.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return nil
}

// formatDS formats f as a Decimal String value of at most 16 characters.
func wrFormatDS(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	for p := 15; len(s) > 16 && p > 0; p-- {
		s = strconv.FormatFloat(f, 'g', p, 64)
	}
	return s
}

// cleanText makes s safe for the default character repertoire of a text VR: printable ASCII
// only (other runes become '?'), no backslash (the value delimiter) unless allowBackslash, and at
// most max characters (0: no limit).
func synthCleanText(s string, max int, allowBackslash bool) string {
	var sb strings.Builder
	for _, r := range s {
		switch {
		case r == '\\' && !allowBackslash:
			sb.WriteByte('/')
		case r >= 0x20 && r < 0x7f:
			sb.WriteRune(r)
		case r == '\n' || r == '\r' || r == '\t':
			sb.WriteByte(' ')
		default:
			sb.WriteByte('?')
		}
	}
	out := strings.TrimSpace(sb.String())
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}
