package dicomio

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzRead feeds arbitrary bytes to the reader: it must return an instance or an error,
// never panic in its own code, never allocate past its limit, and decoded images must hold
// exactly Rows×Columns×Frames×Samples values. Panics inside the DICOM library are
// recovered and reported as "parser crashed", which is allowed.
func FuzzRead(f *testing.F) {
	le := binary.LittleEndian
	seeds := []readSynth{
		{rows: 3, cols: 4, bits: 8},
		{rows: 3, cols: 4, bits: 16, bitsStored: 12, signed: true, ts: TSImplicitLittle},
		{rows: 2, cols: 2, bits: 16, frames: 3, ts: TSExplicitBig},
		{rows: 2, cols: 3, samples: 3, planar: 1, bits: 8, ts: TSDeflated},
		{rows: 5, cols: 5, bits: 1, frames: 2},
		{rows: 2, cols: 2, bits: 8, noPreamble: true, ts: TSImplicitLittle},
		{noPixels: true, modality: "SR", sopClass: "1.2.840.10008.5.1.4.1.1.88.11", attrs: []readSynthElem{
			rsStr(0x0040, 0xA040, "CS", "CONTAINER"),
			rsSeq(0x0040, 0xA730, []readSynthElem{rsStr(0x0040, 0xA040, "CS", "TEXT"), rsStr(0x0040, 0xA160, "UT", "text")}),
		}},
		{rows: 2, cols: 2, bits: 8, attrs: []readSynthElem{
			rsSeq(0x0010, 0x2161, []readSynthElem{rsStr(0x0008, 0x0100, "SH", "X"), rsStr(0x0008, 0x0104, "LO", "Y")}),
			rsStr(0x0010, 0x1010, "AS", "042Y"), rsUS(0x0028, 0x0120, 0, le),
		}},
	}
	for _, s := range seeds {
		f.Add(readTestFile(f, s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A metadata read of the first half, as a partial read of a large file does.
		if _, _, err := readBytes(data[:len(data)/2], "fuzz.dcm", ReadOptions{MaxBytes: 1 << 20}, false, true); errors.Is(err, errReadInternal) {
			t.Fatalf("partial read panicked in the reader's own code: %v", err)
		}
		in, im, err := ReadBytes(data, "fuzz.dcm", ReadOptions{MaxBytes: 1 << 20}, true)
		if err != nil {
			if errors.Is(err, errReadInternal) {
				t.Fatalf("reader panicked in its own code: %v", err)
			}
			if ErrorReason(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if im == nil {
			t.Fatal("no image and no error")
		}
		if want := in.Rows * in.Columns * in.Frames * in.SamplesPerPixel; im.Len() != want {
			t.Fatalf("image holds %d values, attributes say %d", im.Len(), want)
		}
		_ = im.PixelSHA256()
		if IsMonochrome(im.Photometric) && im.Samples == 1 {
			if _, err := DisplayFrame(&in, im, 0, DisplayOptions{}); err != nil {
				t.Fatalf("display: %v", err)
			}
		}
	})
}
