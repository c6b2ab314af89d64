package wmfile

import (
	"bytes"
	"encoding/binary"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medaugment/augment/watermark"
	"golang.org/x/image/tiff"
)

func TestPNGRecordRoundTrip(t *testing.T) {
	g := texturedGray(3)
	var buf bytes.Buffer
	if err := png.Encode(&buf, ToImage(g)); err != nil {
		t.Fatal(err)
	}
	if r, err := readPNGRecord(buf.Bytes()); r != nil || err != nil {
		t.Fatalf("plain PNG: record %+v, %v", r, err)
	}
	want := MarkRecord{PayloadID: "00000000ab/v1", KeyID: "0123456789abcdef", PSNRFloor: 42, SSIMFloor: 0.98}
	data, err := withPNGRecord(buf.Bytes(), want)
	if err != nil {
		t.Fatal(err)
	}
	// Still a valid PNG (png.Decode checks every chunk's CRC) with the same pixels.
	im, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("PNG with the record does not decode: %v", err)
	}
	samePixels(t, FromImage(im), g)
	got, err := readPNGRecord(data)
	if err != nil || got == nil || *got != want {
		t.Fatalf("record read back %+v (%v), want %+v", got, err, want)
	}
	if _, err := withPNGRecord([]byte("GIF89a"), want); err == nil {
		t.Error("a record was added to data that is not a PNG")
	}
	// A damaged record under the keyword is an error; Read ignores it and keeps the pixels.
	bad := bytes.Replace(data, []byte(`"key_id"`), []byte(`"key_id"}`), 1)
	if _, err := readPNGRecord(bad); err == nil {
		t.Error("a damaged record was read")
	}
}

// TestEmbedRecordsMark: embed records the mark in PNG and TIFF outputs, verify reads the
// record, picks the recorded key among several and says when the pixels disagree with it.
func TestEmbedRecordsMark(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "scan.png")
	if err := Write(in, texturedGray(7), PNG); err != nil {
		t.Fatal(err)
	}
	key, err := watermark.NewKey([]byte("png-record-test-key-01234567"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := watermark.NewKey([]byte("png-record-other-key-0123456"))
	if err != nil {
		t.Fatal(err)
	}
	p := watermark.Payload{ID: 0x77, Version: 1}
	e, err := EmbedFile(t.Context(), in, key, EmbedOptions{OutDir: filepath.Join(dir, "out"), Payload: p, Mark: watermark.Options{PSNR: 43}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Read(e.Output)
	if err != nil {
		t.Fatal(err)
	}
	want := MarkRecord{PayloadID: p.String(), KeyID: key.ID(), PSNRFloor: 43, SSIMFloor: watermark.DefaultSSIM}
	if f.Record == nil || *f.Record != want {
		t.Fatalf("record %+v, want %+v", f.Record, want)
	}
	raw, err := os.ReadFile(e.Output)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "png-record-test-key") {
		t.Fatal("the key itself is in the output")
	}
	v := VerifyFile(e.Output, other, key)
	if v.RecordedPayload != p.String() || v.RecordedKeyID != key.ID() || v.Result == nil || v.Result.KeyID != key.ID() || v.Result.Payload == nil || v.RecordMismatch() != "" {
		t.Errorf("verify with two keys: %+v (result %+v, mismatch %q)", v, v.Result, v.RecordMismatch())
	}
	if v := VerifyFile(e.Output, other); !strings.Contains(v.RecordMismatch(), "marked with key "+key.ID()) {
		t.Errorf("verify with another key: mismatch %q", v.RecordMismatch())
	}
	tin := filepath.Join(dir, "scan.tif")
	if err := Write(tin, texturedGray(8), TIFF); err != nil {
		t.Fatal(err)
	}
	te, err := EmbedFile(t.Context(), tin, key, EmbedOptions{OutDir: filepath.Join(dir, "out"), Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	tf, err := Read(te.Output)
	if err != nil {
		t.Fatal(err)
	}
	want.PSNRFloor = watermark.DefaultPSNR
	if tf.Record == nil || *tf.Record != want {
		t.Fatalf("TIFF output: record %+v, want %+v", tf.Record, want)
	}
	if v := VerifyFile(te.Output, other, key); v.RecordedKeyID != key.ID() || v.Result == nil || v.Result.KeyID != key.ID() || v.Result.Payload == nil || v.RecordMismatch() != "" {
		t.Errorf("TIFF, verify with two keys: %+v (result %+v, mismatch %q)", v, v.Result, v.RecordMismatch())
	}
}

// TestTIFFRecordRoundTrip: the record goes into the first image's ImageDescription in either
// byte order, the pixels and the other tags stay readable, and only augment's description is
// read as a record.
func TestTIFFRecordRoundTrip(t *testing.T) {
	g := texturedGray(4)
	var buf bytes.Buffer
	if err := tiff.Encode(&buf, ToImage(g), &tiff.Options{Compression: tiff.Deflate}); err != nil {
		t.Fatal(err)
	}
	want := MarkRecord{PayloadID: "00000000cd/v1", KeyID: "fedcba9876543210", PSNRFloor: 45.05, SSIMFloor: 0.9915}
	for _, c := range []struct {
		name string
		data []byte
		want *watermark.Gray
	}{
		{"little-endian, deflate (the encoder's)", buf.Bytes(), g},
		{"big-endian, uncompressed", bigEndianTIFF(3, 2, []byte{1, 2, 3, 4, 5, 6}), &watermark.Gray{Width: 3, Height: 2, BitDepth: 8, Pix: []uint16{1, 2, 3, 4, 5, 6}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r, err := readTIFFRecord(c.data); r != nil || err != nil {
				t.Fatalf("plain TIFF: record %+v, %v", r, err)
			}
			data, err := withTIFFRecord(c.data, want)
			if err != nil {
				t.Fatal(err)
			}
			im, err := tiff.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("TIFF with the record does not decode: %v", err)
			}
			samePixels(t, FromImage(im), c.want)
			got, err := readTIFFRecord(data)
			if err != nil || got == nil || *got != want {
				t.Fatalf("record read back %+v (%v), want %+v", got, err, want)
			}
			// Recording again replaces the description: one entry, the new record.
			again := want
			again.PayloadID = "00000000ce/v1"
			data2, err := withTIFFRecord(data, again)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := readTIFFRecord(data2); err != nil || got == nil || *got != again {
				t.Fatalf("recorded twice: %+v (%v), want %+v", got, err, again)
			}
			if n := bytes.Count(data2, []byte(RecordKeyword)); n != 2 {
				t.Errorf("%d copies of the keyword, want the old dead one and the new one", n)
			}
			// A damaged record is an error; Read ignores it and keeps the pixels.
			bad := bytes.Replace(data, []byte(`"key_id"`), []byte(`"key_id}`), 1) // same length
			if _, err := readTIFFRecord(bad); err == nil || !strings.Contains(err.Error(), RecordKeyword+" record") {
				t.Errorf("a damaged record: %v, want an error about the record", err)
			}
		})
	}
	// Another program's description is not a record.
	foreign, err := withTIFFRecord(buf.Bytes(), want)
	if err != nil {
		t.Fatal(err)
	}
	foreign = bytes.Replace(foreign, []byte(RecordKeyword), []byte("ImageJ=1.54f    "), 1)
	if r, err := readTIFFRecord(foreign); r != nil || err != nil {
		t.Errorf("foreign description: record %+v, %v", r, err)
	}
	for _, bad := range [][]byte{[]byte("GIF89a"), []byte("II*\x00\xff\xff\xff\x00"), []byte("MM\x00\x2b\x00\x00\x00\x08")} {
		if _, err := withTIFFRecord(bad, want); err == nil {
			t.Errorf("a record was added to %q", bad)
		}
	}
}

// bigEndianTIFF builds an uncompressed 8-bit greyscale TIFF in Motorola byte order (the
// encoder writes Intel order only).
func bigEndianTIFF(w, h int, pix []byte) []byte {
	bo := binary.BigEndian
	type entry struct{ tag, typ, val uint32 }
	entries := []entry{{256, 3, uint32(w)}, {257, 3, uint32(h)}, {258, 3, 8}, {259, 3, 1}, {262, 3, 1},
		{273, 4, 8}, {277, 3, 1}, {278, 3, uint32(h)}, {279, 4, uint32(len(pix))}}
	out := append([]byte("MM\x00\x2a"), 0, 0, 0, 0)
	out = append(out, pix...)
	if len(out)%2 == 1 {
		out = append(out, 0)
	}
	bo.PutUint32(out[4:], uint32(len(out)))
	out = bo.AppendUint16(out, uint16(len(entries)))
	for _, e := range entries {
		out = bo.AppendUint16(out, uint16(e.tag))
		out = bo.AppendUint16(out, uint16(e.typ))
		out = bo.AppendUint32(out, 1)
		if e.typ == 3 {
			out = bo.AppendUint16(out, uint16(e.val))
			out = append(out, 0, 0)
		} else {
			out = bo.AppendUint32(out, e.val)
		}
	}
	return bo.AppendUint32(out, 0)
}

// samePixels fails the test unless got has want's size and pixels.
func samePixels(t *testing.T, got, want *watermark.Gray) {
	t.Helper()
	if got.Width != want.Width || got.Height != want.Height {
		t.Fatalf("size %d×%d, want %d×%d", got.Width, got.Height, want.Width, want.Height)
	}
	for i := range want.Pix {
		if got.Pix[i] != want.Pix[i] {
			t.Fatalf("pixel %d changed: %d, want %d", i, got.Pix[i], want.Pix[i])
		}
	}
}
