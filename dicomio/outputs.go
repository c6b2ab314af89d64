package dicomio

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// OutputSet records the files one batch writes, so that two inputs of the batch never write
// the same output: the second would silently replace the first, and the first input's result
// (its payload id, its manifest row) would then name a file that holds another image. Two
// inputs may share an output name in ordinary data: the same SOP Instance UID in two files (one
// instance stored in two transfer syntaxes, or a broken de-identification), or scan.png in two
// folders. The zero value is ready to use; it is safe for concurrent use.
type OutputSet struct {
	mu sync.Mutex
	by map[string]string // cleaned output path → the input that wrote it
}

// Claim records that input writes path. When an input of the batch claimed path before (another
// file, or the same file listed twice, whose two outputs carry different payloads), it records
// nothing and returns that input and false.
func (s *OutputSet) Claim(path, input string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := filepath.Clean(path)
	if prev, ok := s.by[p]; ok {
		return prev, false
	}
	if s.by == nil {
		s.by = make(map[string]string)
	}
	s.by[p] = input
	return "", true
}

// NotInput returns an error when writing out would replace the file input itself (an output
// folder that is the input's own, with the same name): the original would be lost.
func NotInput(out, input string) error {
	so, err := os.Stat(out)
	if err != nil {
		return nil // nothing there yet
	}
	si, err := os.Stat(input)
	if err != nil {
		return nil
	}
	if os.SameFile(so, si) {
		return fmt.Errorf("output %s is the input itself; choose another output folder", out)
	}
	return nil
}
