package dicomio

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// TestTopLevelAttributeCut reads every file of the shared corpora (conformance files and chest
// X-rays) twice, once with only the top-level attributes the reader uses handed to the parsing
// library (as ReadInstance and ReadImage do) and once with all of them: the Instances must be
// equal, and the cut read must never fail where the full one succeeds.
func TestTopLevelAttributeCut(t *testing.T) {
	var paths []string
	for _, root := range []string{sharedDICOM, sharedCXR} {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && filepath.Ext(p) != ".jsonl" && filepath.Ext(p) != ".csv" {
				paths = append(paths, p)
			}
			return nil
		})
	}
	if len(paths) == 0 {
		t.Skipf("shared corpora missing under %s and %s", sharedDICOM, sharedCXR)
	}
	compared, cutFewer := 0, 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil || !sniffDICOM(data[:min(len(data), 132)]) {
			continue
		}
		all, _, errAll := readBytesWith(data, p, ReadOptions{}, false, false, true, nil)
		cut, _, errCut := readBytesWith(data, p, ReadOptions{}, false, false, false, nil)
		if errAll == nil && errCut != nil {
			t.Errorf("%s: read with all attributes, not with the used ones: %v", p, errCut)
			continue
		}
		if errAll != nil {
			if errCut == nil {
				cutFewer++ // an unused attribute the library could not parse
			}
			continue
		}
		if !reflect.DeepEqual(all, cut) {
			t.Errorf("%s: instances differ:\nall attributes %+v\nused ones      %+v", p, all, cut)
		}
		compared++
	}
	if compared < 100 {
		t.Fatalf("compared %d files, want at least 100", compared)
	}
	t.Logf("%d files compared; %d read only because an unused attribute is no longer parsed", compared, cutFewer)
}

// TestSimpleElementsAsLibrary decodes single attributes with readSimpleElement and with the
// parsing library: the values must be identical (padding, all-space values, multiple values,
// empty values, signed and unsigned integers), and values left to the library must be refused.
func TestSimpleElementsAsLibrary(t *testing.T) {
	cases := []struct {
		name    string
		tag     tag.Tag
		vr      string
		val     []byte
		refused bool
	}{
		{"UI padded with NUL", readTagSOPClass, "UI", []byte("1.2.840.10008.5.1.4.1.1.1\x00"), false},
		{"CS multi-valued", readTagPhotometric, "CS", []byte(`DERIVED\PRIMARY `), false},
		{"LO all spaces", readTagInstitution, "LO", []byte("    "), false},
		{"LO empty", readTagManufacturer, "LO", nil, false},
		{"LO leading and trailing spaces", readTagModelName, "LO", []byte(" X ray  "), false},
		{"DA", readTagStudyDate, "DA", []byte("20240131"), false},
		{"DA all spaces", readTagStudyDate, "DA", []byte("        "), false},
		{"AS", readTagAge, "AS", []byte("074Y"), false},
		{"DS two values", readTagWindowCenter, "DS", []byte(`40\400`), false},
		{"IS", readTagNumberOfFrames, "IS", []byte("12"), false},
		{"US", readTagRows, "US", []byte{0x00, 0x02}, false},
		{"US two values", readTagRows, "US", []byte{1, 0, 2, 0}, false},
		{"SS negative", readTagPaddingValue, "SS", []byte{0x00, 0x80}, false},
		{"US empty", readTagColumns, "US", nil, false},
		{"UL", tag.Tag{Group: 0x0028, Element: 0x0010}, "UL", []byte{1, 2, 3, 4}, false},
		{"non-ASCII text", readTagInstitution, "LO", []byte("Z\xc3\xbcrich"), true},
		{"escape sequence", readTagInstitution, "LO", []byte("\x1b$B"), true},
		{"odd US", readTagRows, "US", []byte{1, 2, 3}, true},
		{"FD", readTagRows, "FD", make([]byte, 8), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			el := readSimpleElement(tc.tag, tc.vr, tc.val)
			if tc.refused {
				if el != nil {
					t.Fatalf("decoded %v, want it left to the library", el.Value.GetValue())
				}
				return
			}
			if el == nil {
				t.Fatal("refused")
			}
			val := tc.val
			if len(val)%2 == 1 {
				t.Fatalf("test value of odd length %d", len(val))
			}
			var b []byte
			b = binary.LittleEndian.AppendUint16(b, tc.tag.Group)
			b = binary.LittleEndian.AppendUint16(b, tc.tag.Element)
			b = append(b, tc.vr...)
			b = binary.LittleEndian.AppendUint16(b, uint16(len(val)))
			b = append(b, val...)
			l := &readLayout{data: b, bo: binary.LittleEndian, attrEnd: int64(len(b)), charsetUN: -1, allAttributes: true}
			ds, err := l.parseAttributes()
			if err != nil || len(ds.Elements) != 1 {
				t.Fatalf("library: %d elements, %v", len(ds.Elements), err)
			}
			want := ds.Elements[0]
			if !reflect.DeepEqual(el.Value.GetValue(), want.Value.GetValue()) || el.ValueRepresentation != want.ValueRepresentation || el.Tag != want.Tag {
				t.Fatalf("decoded %#v (%v), library %#v (%v)", el.Value.GetValue(), el.ValueRepresentation, want.Value.GetValue(), want.ValueRepresentation)
			}
		})
	}
}
