package dicomio

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Tags the reader extracts, by number (the library's dictionary lacks some, such as
// Synthetic Data).
var (
	readTagSOPClass          = tag.Tag{Group: 0x0008, Element: 0x0016}
	readTagSOPInstance       = tag.Tag{Group: 0x0008, Element: 0x0018}
	readTagSyntheticData     = tag.Tag{Group: 0x0008, Element: 0x001C}
	readTagStudyDate         = tag.Tag{Group: 0x0008, Element: 0x0020}
	readTagModality          = tag.Tag{Group: 0x0008, Element: 0x0060}
	readTagManufacturer      = tag.Tag{Group: 0x0008, Element: 0x0070}
	readTagInstitution       = tag.Tag{Group: 0x0008, Element: 0x0080}
	readTagModelName         = tag.Tag{Group: 0x0008, Element: 0x1090}
	readTagCodeValue         = tag.Tag{Group: 0x0008, Element: 0x0100}
	readTagCodingScheme      = tag.Tag{Group: 0x0008, Element: 0x0102}
	readTagCodeMeaning       = tag.Tag{Group: 0x0008, Element: 0x0104}
	readTagPatientID         = tag.Tag{Group: 0x0010, Element: 0x0020}
	readTagBirthDate         = tag.Tag{Group: 0x0010, Element: 0x0030}
	readTagSex               = tag.Tag{Group: 0x0010, Element: 0x0040}
	readTagAge               = tag.Tag{Group: 0x0010, Element: 0x1010}
	readTagEthnicGroup       = tag.Tag{Group: 0x0010, Element: 0x2160}
	readTagEthnicCodeSeq     = tag.Tag{Group: 0x0010, Element: 0x2161}
	readTagEthnicGroups      = tag.Tag{Group: 0x0010, Element: 0x2162}
	readTagBodyPart          = tag.Tag{Group: 0x0018, Element: 0x0015}
	readTagViewPosition      = tag.Tag{Group: 0x0018, Element: 0x5101}
	readTagStudyUID          = tag.Tag{Group: 0x0020, Element: 0x000D}
	readTagSeriesUID         = tag.Tag{Group: 0x0020, Element: 0x000E}
	readTagSamples           = tag.Tag{Group: 0x0028, Element: 0x0002}
	readTagPhotometric       = tag.Tag{Group: 0x0028, Element: 0x0004}
	readTagPlanarConfig      = tag.Tag{Group: 0x0028, Element: 0x0006}
	readTagNumberOfFrames    = tag.Tag{Group: 0x0028, Element: 0x0008}
	readTagRows              = tag.Tag{Group: 0x0028, Element: 0x0010}
	readTagColumns           = tag.Tag{Group: 0x0028, Element: 0x0011}
	readTagBitsAllocated     = tag.Tag{Group: 0x0028, Element: 0x0100}
	readTagBitsStored        = tag.Tag{Group: 0x0028, Element: 0x0101}
	readTagPixelRep          = tag.Tag{Group: 0x0028, Element: 0x0103}
	readTagPaddingValue      = tag.Tag{Group: 0x0028, Element: 0x0120}
	readTagPaddingRangeLimit = tag.Tag{Group: 0x0028, Element: 0x0121}
	readTagWindowCenter      = tag.Tag{Group: 0x0028, Element: 0x1050}
	readTagWindowWidth       = tag.Tag{Group: 0x0028, Element: 0x1051}
	readTagRescaleIntercept  = tag.Tag{Group: 0x0028, Element: 0x1052}
	readTagRescaleSlope      = tag.Tag{Group: 0x0028, Element: 0x1053}
	readTagValueType         = tag.Tag{Group: 0x0040, Element: 0xA040}
	readTagConceptName       = tag.Tag{Group: 0x0040, Element: 0xA043}
	readTagTextValue         = tag.Tag{Group: 0x0040, Element: 0xA160}
	readTagContentSequence   = tag.Tag{Group: 0x0040, Element: 0xA730}
)

// readTopLevelTags are the top-level attributes the reader uses (readFillInstance and what it
// calls), with Specific Character Set, which the library needs to decode text. The walk cuts
// every other top-level attribute from what the library parses: most of a file's attributes
// are not needed, and the library's per-element cost dominated metadata reads.
var readTopLevelTags = [...]tag.Tag{
	{Group: 0x0008, Element: 0x0005}, // Specific Character Set
	readTagSOPClass, readTagSOPInstance, readTagSyntheticData, readTagStudyDate, readTagModality,
	readTagManufacturer, readTagInstitution, readTagModelName,
	readTagPatientID, readTagBirthDate, readTagSex, readTagAge, readTagEthnicGroup, readTagEthnicCodeSeq,
	readTagEthnicGroups, readTagBodyPart, readTagViewPosition, readTagStudyUID, readTagSeriesUID,
	readTagSamples, readTagPhotometric, readTagPlanarConfig, readTagNumberOfFrames, readTagRows,
	readTagColumns, readTagBitsAllocated, readTagBitsStored, readTagPixelRep, readTagPaddingValue,
	readTagPaddingRangeLimit, readTagWindowCenter, readTagWindowWidth, readTagRescaleIntercept,
	readTagRescaleSlope, readTagValueType, readTagConceptName, readTagTextValue, readTagContentSequence,
}

// readTopLevelTag reports whether the top-level attribute with tag tg (group<<16|element) is
// one the reader uses.
func readTopLevelTag(tg uint32) bool {
	group, elem := uint16(tg>>16), uint16(tg)
	for _, t := range readTopLevelTags {
		if t.Group == group && t.Element == elem {
			return true
		}
	}
	return false
}

// readCharsetASCII reports whether a Specific Character Set decodes ASCII bytes as ASCII in
// the library (no conversion, Latin-1 or UTF-8), so that text of ASCII bytes needs no
// library to be decoded.
func readCharsetASCII(cs string) bool {
	switch cs {
	case "", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192":
		return true
	}
	return false
}

// readSimpleElement decodes the value of an explicit VR little endian attribute exactly as
// the parsing library does (its readString, readDate and readInt), for text VRs whose value
// is ASCII without escape sequences and for integer VRs; it returns nil for anything else,
// which is left to the library.
func readSimpleElement(t tag.Tag, vr string, val []byte) *dicom.Element {
	var v any
	switch vr {
	case "AE", "AS", "CS", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT", "DA":
		for _, c := range val {
			if c >= 0x80 || c == 0x1B {
				return nil
			}
		}
		str := string(val)
		if vr == "DA" {
			v = []string{strings.Trim(str, " \x00")}
			break
		}
		if strings.TrimFunc(str, unicode.IsSpace) != "" {
			str = strings.Trim(str, " \x00") // the library trims unless the value is all spaces
		}
		v = strings.Split(str, `\`)
	case "US", "SS":
		if len(val)%2 != 0 {
			return nil
		}
		ints := make([]int, 0, len(val)/2)
		for i := 0; i+2 <= len(val); i += 2 {
			u := binary.LittleEndian.Uint16(val[i:])
			if vr == "SS" {
				ints = append(ints, int(int16(u)))
			} else {
				ints = append(ints, int(u))
			}
		}
		v = ints
	case "UL", "SL":
		if len(val)%4 != 0 {
			return nil
		}
		ints := make([]int, 0, len(val)/4)
		for i := 0; i+4 <= len(val); i += 4 {
			u := binary.LittleEndian.Uint32(val[i:])
			if vr == "SL" {
				ints = append(ints, int(int32(u)))
			} else {
				ints = append(ints, int(u))
			}
		}
		v = ints
	default:
		return nil
	}
	value, err := dicom.NewValue(v)
	if err != nil {
		return nil
	}
	return &dicom.Element{Tag: t, ValueRepresentation: tag.GetVRKind(t, vr), RawValueRepresentation: vr,
		ValueLength: uint32(len(val)), Value: value}
}

// SOP classes the reader recognises.
const (
	SOPClassMediaStorageDirectory = "1.2.840.10008.1.3.10"
	sopClassSRPrefix              = "1.2.840.10008.5.1.4.1.1.88."
)

// readAttrs finds attributes in a list of elements (a data set or a sequence item).
type readAttrs []*dicom.Element

func (a readAttrs) find(t tag.Tag) *dicom.Element {
	for _, e := range a {
		if e.Tag == t {
			return e
		}
	}
	return nil
}

// strings returns the values of an attribute as strings, whatever its value type.
func (a readAttrs) strings(t tag.Tag) []string {
	e := a.find(t)
	if e == nil || e.Value == nil {
		return nil
	}
	switch v := e.Value.GetValue().(type) {
	case []string:
		out := make([]string, 0, len(v))
		for _, s := range v {
			out = append(out, strings.TrimRight(strings.TrimSpace(s), "\x00"))
		}
		return out
	case []int:
		out := make([]string, len(v))
		for i, n := range v {
			out[i] = strconv.Itoa(n)
		}
		return out
	case []float64:
		out := make([]string, len(v))
		for i, f := range v {
			out[i] = strconv.FormatFloat(f, 'g', -1, 64)
		}
		return out
	case []byte:
		// A value the library did not recognise (implicit VR, tag missing from its
		// dictionary) comes back as bytes; text attributes are read as text.
		s := strings.TrimRight(string(v), " \x00")
		if s == "" {
			return nil
		}
		return strings.Split(s, `\`)
	}
	return nil
}

func (a readAttrs) str(t tag.Tag) string {
	v := a.strings(t)
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// int returns the first value of a numeric attribute (US, SS, IS) and whether it is present.
func (a readAttrs) int(t tag.Tag) (int, bool) {
	e := a.find(t)
	if e == nil || e.Value == nil {
		return 0, false
	}
	switch v := e.Value.GetValue().(type) {
	case []int:
		if len(v) > 0 {
			return v[0], true
		}
	case []string:
		if len(v) > 0 {
			n, err := strconv.Atoi(strings.TrimSpace(v[0]))
			if err == nil {
				return n, true
			}
			if f, err := strconv.ParseFloat(strings.TrimSpace(v[0]), 64); err == nil {
				return int(f), true
			}
		}
	case []byte:
		// US/SS read as bytes (implicit VR of an unknown tag): little endian.
		switch len(v) {
		case 2:
			return int(uint16(v[0]) | uint16(v[1])<<8), true
		case 4:
			return int(uint32(v[0]) | uint32(v[1])<<8 | uint32(v[2])<<16 | uint32(v[3])<<24), true
		}
	}
	return 0, false
}

// floats returns the values of a decimal attribute (DS, FL, FD).
func (a readAttrs) floats(t tag.Tag) []float64 {
	var out []float64
	for _, s := range a.strings(t) {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			out = append(out, f)
		}
	}
	return out
}

// items returns the items of a sequence attribute. A sequence the library read as bytes (a
// tag missing from its dictionary in implicit VR, or VR UN) is parsed here as implicit VR
// little endian, which is what such values hold.
func (a readAttrs) items(t tag.Tag) []readAttrs {
	e := a.find(t)
	if e == nil || e.Value == nil {
		return nil
	}
	var out []readAttrs
	switch v := e.Value.GetValue().(type) {
	case []*dicom.SequenceItemValue:
		for _, it := range v {
			if els, ok := it.GetValue().([]*dicom.Element); ok {
				out = append(out, readAttrs(els))
			}
		}
	case []byte:
		for _, raw := range readSplitItems(v) {
			l := &readLayout{data: raw, bo: binary.LittleEndian, implicit: true, attrEnd: int64(len(raw)), charsetUN: -1}
			if _, _, err := l.walk(0, int64(len(raw)), l.bo, true, false, 1); err != nil {
				continue
			}
			if ds, err := l.parseAttributes(); err == nil {
				out = append(out, readAttrs(ds.Elements))
			}
		}
	}
	return out
}

// readSplitItems splits the value of a sequence of defined-length items (implicit VR
// little endian) into the items' contents.
func readSplitItems(b []byte) [][]byte {
	var out [][]byte
	for off := 0; off+8 <= len(b); {
		if binary.LittleEndian.Uint16(b[off:]) != 0xFFFE || binary.LittleEndian.Uint16(b[off+2:]) != 0xE000 {
			break
		}
		n := int(binary.LittleEndian.Uint32(b[off+4:]))
		if n < 0 || off+8+n > len(b) {
			break
		}
		out = append(out, b[off+8:off+8+n])
		off += 8 + n
	}
	return out
}

// readFillInstance fills the metadata of in from the layout and the parsed attributes.
func readFillInstance(in *Instance, l *readLayout, ds dicom.Dataset) {
	a := readAttrs(ds.Elements)
	in.TransferSyntaxUID = l.ts
	in.SOPClassUID = a.str(readTagSOPClass)
	if in.SOPClassUID == "" {
		in.SOPClassUID = l.meta[0x0002]
	}
	in.SOPInstanceUID = a.str(readTagSOPInstance)
	if in.SOPInstanceUID == "" {
		in.SOPInstanceUID = l.meta[0x0003]
	}
	in.IsDirectory = in.SOPClassUID == SOPClassMediaStorageDirectory || l.meta[0x0002] == SOPClassMediaStorageDirectory
	in.StudyInstanceUID = a.str(readTagStudyUID)
	in.SeriesInstanceUID = a.str(readTagSeriesUID)
	in.PatientID = a.str(readTagPatientID)
	in.Modality = a.str(readTagModality)
	in.BodyPartExamined = a.str(readTagBodyPart)
	in.ViewPosition = a.str(readTagViewPosition)
	in.Manufacturer = a.str(readTagManufacturer)
	in.ManufacturerModelName = a.str(readTagModelName)
	in.InstitutionName = a.str(readTagInstitution)
	in.StudyDate = a.str(readTagStudyDate)
	in.SyntheticData = strings.ToUpper(a.str(readTagSyntheticData))

	in.HasPixels = l.pixelTag != 0
	in.FloatPixels = l.pixelTag == 0x7FE00008 || l.pixelTag == 0x7FE00009
	in.Rows, _ = a.int(readTagRows)
	in.Columns, _ = a.int(readTagColumns)
	in.SamplesPerPixel, _ = a.int(readTagSamples)
	in.BitsAllocated, _ = a.int(readTagBitsAllocated)
	in.BitsStored, _ = a.int(readTagBitsStored)
	in.PixelRepresentation, _ = a.int(readTagPixelRep)
	in.PlanarConfiguration, _ = a.int(readTagPlanarConfig)
	in.Photometric = strings.ToUpper(a.str(readTagPhotometric))
	if n, ok := a.int(readTagNumberOfFrames); ok && n > 0 {
		in.Frames = n
	} else if in.HasPixels {
		in.Frames = 1
	}
	if in.HasPixels {
		if in.SamplesPerPixel == 0 {
			in.SamplesPerPixel = 1
		}
		if in.BitsStored == 0 {
			in.BitsStored = in.BitsAllocated
		}
		if in.FloatPixels && in.BitsAllocated == 0 {
			in.BitsAllocated = 32
			if l.pixelTag == 0x7FE00009 {
				in.BitsAllocated = 64
			}
			in.BitsStored = in.BitsAllocated
		}
	}

	in.RescaleSlope, in.RescaleIntercept = 1, 0
	if v := a.floats(readTagRescaleSlope); len(v) > 0 && v[0] != 0 {
		in.RescaleSlope = v[0]
	}
	if v := a.floats(readTagRescaleIntercept); len(v) > 0 {
		in.RescaleIntercept = v[0]
	}
	if v, ok := readPaddingValue(a, readTagPaddingValue, in.PixelRepresentation == 1); ok {
		in.PaddingValue = &v
	}
	if v, ok := readPaddingValue(a, readTagPaddingRangeLimit, in.PixelRepresentation == 1); ok {
		in.PaddingRangeEnd = &v
	}
	in.WindowCenter = a.floats(readTagWindowCenter)
	in.WindowWidth = a.floats(readTagWindowWidth)

	in.Demographics = readDemographics(a, in.StudyDate)
	if strings.HasPrefix(in.SOPClassUID, sopClassSRPrefix) || in.Modality == "SR" {
		in.ReportText = readReportText(a)
	}
}

// readPaddingValue reads Pixel Padding Value or its range limit (US or SS by Pixel
// Representation; the library reads both as unsigned).
func readPaddingValue(a readAttrs, t tag.Tag, signed bool) (int, bool) {
	v, ok := a.int(t)
	if !ok {
		return 0, false
	}
	if signed && v >= 0x8000 && v <= 0xFFFF {
		v -= 0x10000
	}
	return v, true
}

// readDemographics extracts sex, age and ethnic group. Nothing is guessed: a missing or
// malformed attribute leaves the field unknown.
func readDemographics(a readAttrs, studyDate string) Demographics {
	var d Demographics
	switch s := strings.ToUpper(a.str(readTagSex)); s {
	case "M", "F", "O":
		d.Sex = s
	}
	if age, ok := ParseAge(a.str(readTagAge)); ok {
		d.AgeYears, d.AgeKnown = age, true
	} else if age, ok := AgeFromDates(a.str(readTagBirthDate), studyDate); ok {
		d.AgeYears, d.AgeKnown = age, true
	}
	var meanings []string
	for _, it := range a.items(readTagEthnicCodeSeq) {
		c := Code{Value: it.str(readTagCodeValue), Scheme: it.str(readTagCodingScheme), Meaning: it.str(readTagCodeMeaning)}
		if c.Value == "" && c.Meaning == "" {
			continue
		}
		d.EthnicCodes = append(d.EthnicCodes, c)
		if c.Meaning != "" {
			meanings = append(meanings, c.Meaning)
		} else {
			meanings = append(meanings, c.Value)
		}
	}
	switch {
	case a.str(readTagEthnicGroup) != "":
		d.EthnicGroup = a.str(readTagEthnicGroup)
	case len(meanings) > 0:
		d.EthnicGroup = strings.Join(meanings, "; ")
	default:
		var groups []string
		for _, g := range a.strings(readTagEthnicGroups) {
			if g != "" {
				groups = append(groups, g)
			}
		}
		d.EthnicGroup = strings.Join(groups, "; ")
	}
	return d
}

// ParseAge parses a Patient's Age (AS: nnnD, nnnW, nnnM or nnnY) to years.
func ParseAge(as string) (float64, bool) {
	as = strings.TrimSpace(as)
	if len(as) < 2 {
		return 0, false
	}
	n, err := strconv.Atoi(as[:len(as)-1])
	if err != nil || n < 0 {
		return 0, false
	}
	switch as[len(as)-1] {
	case 'Y', 'y':
		return float64(n), true
	case 'M', 'm':
		return float64(n) / 12, true
	case 'W', 'w':
		return float64(n) * 7 / 365.25, true
	case 'D', 'd':
		return float64(n) / 365.25, true
	}
	return 0, false
}

// AgeFromDates returns the age in completed years on the study date of a patient born on
// the birth date (both DA, YYYYMMDD).
func AgeFromDates(birth, study string) (float64, bool) {
	b, err1 := time.Parse("20060102", strings.TrimSpace(birth))
	s, err2 := time.Parse("20060102", strings.TrimSpace(study))
	if err1 != nil || err2 != nil || s.Before(b) {
		return 0, false
	}
	years := s.Year() - b.Year()
	if s.Month() < b.Month() || (s.Month() == b.Month() && s.Day() < b.Day()) {
		years--
	}
	return float64(years), true
}

// readReportText collects the TEXT content items of a structured report under its root
// CONTAINER (at any depth), one per line as "Concept: text".
func readReportText(a readAttrs) string {
	var lines []string
	var walk func(items []readAttrs, depth int)
	walk = func(items []readAttrs, depth int) {
		if depth > readMaxDepth {
			return
		}
		for _, it := range items {
			if strings.ToUpper(it.str(readTagValueType)) == "TEXT" {
				if text := strings.TrimSpace(strings.Join(it.strings(readTagTextValue), `\`)); text != "" {
					concept := ""
					if names := it.items(readTagConceptName); len(names) > 0 {
						concept = names[0].str(readTagCodeMeaning)
					}
					if concept != "" {
						text = concept + ": " + text
					}
					lines = append(lines, text)
				}
			}
			walk(it.items(readTagContentSequence), depth+1)
		}
	}
	if vt := strings.ToUpper(a.str(readTagValueType)); vt == "CONTAINER" || vt == "" {
		walk(a.items(readTagContentSequence), 0)
	}
	return strings.Join(lines, "\n")
}
