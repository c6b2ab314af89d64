package dicomio_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medaugment/augment/dicomio"
)

// A generated 4×4 frame in [0,1], written as a 12-bit Secondary Capture instance (no source).
func ExampleWriteSynthetic() {
	dir, err := os.MkdirTemp("", "synthetic-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	frame := make([]float32, 16)
	for i := range frame {
		frame[i] = float32(i) / 15
	}
	res, err := dicomio.WriteSynthetic(context.Background(), filepath.Join(dir, "0001.dcm"), dicomio.SyntheticImage{
		Pixels:       &dicomio.Image{Rows: 4, Columns: 4, Frames: 1, Samples: 1, F32: frame},
		Record:       dicomio.GenerationRecord{Bundle: "example", Mode: dicomio.ModeText, Prompt: "frontal chest radiograph", Seed: 1},
		Demographics: dicomio.Demographics{Sex: "F", AgeYears: 40, AgeKnown: true},
	}, dicomio.SyntheticOptions{RunID: "example-run", Item: 0, BitDepth: 12})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := dicomio.InspectProvenance(res.Path)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.IOD, "|", res.IODReason)
	fmt.Println("marked:", p.Marked, "| patient:", res.PatientID)
	fmt.Println("stored:", res.Stored.U16[:4], "…", res.Stored.U16[15])
	fmt.Println("record:", p.Record.Generation.Mode, p.Record.Generation.Bundle, p.Record.Age)
	// Output:
	// Secondary Capture Image | no source instance
	// marked: true | patient: SYN-DFD245ED5291C395
	// stored: [0 273 546 819] … 4095
	// record: text example 040Y
}
