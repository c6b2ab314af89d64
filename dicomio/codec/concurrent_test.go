package codec

import (
	"bytes"
	"path/filepath"
	"sync"
	"testing"
)

// TestDecodeConcurrent decodes frames of every compressed syntax of dcm_qa_ts from several
// goroutines at once: every result must equal the one decoded alone (the C libraries keep no
// shared state between calls).
func TestDecodeConcurrent(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(corpusRoot, "dcm_qa_ts", "In", "*.dcm"))
	var insts []testInstance
	var want [][]byte
	for _, p := range paths {
		inst, err := loadInstance(p)
		if err != nil {
			continue // native syntaxes
		}
		d, err := Decode(inst.ts, inst.frames[0], inst.info)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		insts = append(insts, inst)
		want = append(want, d.Data)
	}
	if len(insts) == 0 {
		t.Skipf("dcm_qa_ts corpus not found under %s", corpusRoot)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 3; round++ {
				for i, inst := range insts {
					d, err := Decode(inst.ts, inst.frames[0], inst.info)
					if err != nil || !bytes.Equal(d.Data, want[i]) {
						errs <- Name(inst.ts)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for name := range errs {
		t.Errorf("%s: concurrent decode differs from a single decode", name)
	}
}
