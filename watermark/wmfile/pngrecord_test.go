package wmfile

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medaugment/augment/watermark"
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
	want := PNGRecord{PayloadID: "00000000ab/v1", KeyID: "0123456789abcdef", PSNRFloor: 42, SSIMFloor: 0.98}
	data, err := withPNGRecord(buf.Bytes(), want)
	if err != nil {
		t.Fatal(err)
	}
	// Still a valid PNG (png.Decode checks every chunk's CRC) with the same pixels.
	im, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("PNG with the record does not decode: %v", err)
	}
	back := FromImage(im)
	for i := range g.Pix {
		if back.Pix[i] != g.Pix[i] {
			t.Fatalf("pixel %d changed: %d, want %d", i, back.Pix[i], g.Pix[i])
		}
	}
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

// TestEmbedRecordsPNG: embed records the mark in a PNG output, verify reads the record, picks
// the recorded key among several and says when the pixels disagree with it; TIFF outputs
// carry none.
func TestEmbedRecordsPNG(t *testing.T) {
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
	want := PNGRecord{PayloadID: p.String(), KeyID: key.ID(), PSNRFloor: 43, SSIMFloor: watermark.DefaultSSIM}
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
	if tf, err := Read(te.Output); err != nil || tf.Record != nil {
		t.Errorf("TIFF output: record %+v, %v", tf.Record, err)
	}
}
