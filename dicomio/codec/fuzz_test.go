package codec

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
)

// FuzzDecode feeds arbitrary frames to every decoder: Decode may fail but must never panic or
// crash, and a success must have exactly the frame's size. `go test -fuzz FuzzDecode` runs it;
// plain `go test` runs the seeds.
func FuzzDecode(f *testing.F) {
	info := FrameInfo{Rows: 8, Columns: 8, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8, Photometric: "MONOCHROME2"}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		f.Fatal(err)
	}
	syntaxes := []string{RLELossless, JPEGBaseline, JPEGLossless, JPEGLSLossless, JPEG2000Lossless, HTJ2K, DeflatedImageFrame}
	f.Add(uint8(0), encodeRLE(testPattern(info, 3), info))
	f.Add(uint8(1), jpg.Bytes())
	f.Add(uint8(3), []byte{0xFF, 0xD8, 0xFF, 0xF7, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9})
	f.Add(uint8(4), []byte{0xFF, 0x4F, 0xFF, 0x51, 0x00, 0x29, 0, 0, 0, 0, 0, 8, 0, 0, 0, 8})
	f.Add(uint8(6), deflateRaw(f, testPattern(info, 4)))
	f.Fuzz(func(t *testing.T, which uint8, frame []byte) {
		ts := syntaxes[int(which)%len(syntaxes)]
		d, err := Decode(ts, frame, info)
		if err == nil && len(d.Data) != info.frameBytes() {
			t.Fatalf("%s: decoded %d bytes, want %d", Name(ts), len(d.Data), info.frameBytes())
		}
	})
}
