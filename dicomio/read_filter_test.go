package dicomio

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
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
