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
//
// When the batch's items run on several workers, set Ordered: an item's claims then wait until
// every earlier item has settled, so that which of two inputs keeps a contested name does not
// depend on which worker got there first, and a rerun names every file as before.
type OutputSet struct {
	// Ordered makes Claim wait for the earlier items (numbered 0, 1, 2, …). Each item must
	// then be settled (Settle) once it has claimed its outputs or will claim none, or the
	// items after it wait for ever.
	Ordered bool

	mu      sync.Mutex
	changed *sync.Cond
	by      map[string]string // cleaned output path → the input that wrote it
	settled map[int]bool
	next    int // with Ordered: every item before next has settled
}

// Claim records that input, item number item of the batch, writes path. When an input of the
// batch claimed path before (another file, or the same file listed twice, whose two outputs
// carry different payloads), it records nothing and returns that input and false.
func (s *OutputSet) Claim(item int, path, input string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Ordered {
		s.init()
		for s.next < item {
			s.changed.Wait()
		}
	}
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

// Settle says that item has claimed every output it will claim. Settling an item twice is
// harmless.
func (s *OutputSet) Settle(item int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.Ordered {
		return
	}
	s.init()
	s.settled[item] = true
	for s.settled[s.next] {
		delete(s.settled, s.next)
		s.next++
	}
	s.changed.Broadcast()
}

func (s *OutputSet) init() {
	if s.changed == nil {
		s.changed = sync.NewCond(&s.mu)
		s.settled = make(map[int]bool)
	}
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
