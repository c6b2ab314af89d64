package codec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// refSHA256 returns the reference sha256 of a file of a corpus folder, or "".
func refSHA256(t *testing.T, corpus, file string) string {
	t.Helper()
	return refOf(corpus, file).SHA256
}

// refOf returns the reference record of a file of a corpus folder (zero when absent).
func refOf(corpus, file string) refRecord {
	b, err := os.ReadFile(filepath.Join(corpusRoot, corpus+".refs.jsonl"))
	if err != nil {
		return refRecord{}
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var r refRecord
		if json.Unmarshal(line, &r) == nil && r.File == file {
			return r
		}
	}
	return refRecord{}
}

// TestCompressedTwinsOfNativeFiles decodes compressed files that the reference decoder could not
// decode (1-bit RLE, JPEG 2000 and Deflated Image Frame Compression, where it crashed or refused) and compares them with the
// reference of the same pixels stored natively.
func TestCompressedTwinsOfNativeFiles(t *testing.T) {
	cases := []struct{ file, twin string }{
		{"data/liver_rle.dcm", "data/liver.dcm"},
		{"data/liver_j2k.dcm", "data/liver.dcm"},
		{"data/liver_nonbyte_aligned_rle.dcm", "data/liver_nonbyte_aligned.dcm"},
		{"data/liver_nonbyte_aligned_j2k.dcm", "data/liver_nonbyte_aligned.dcm"},
		{"data/emri_small_jpeg_2k_lossless_too_short.dcm", "data/emri_small_jpeg_2k_lossless.dcm"},
		{"data/liver_deflate.dcm", "data/liver.dcm"},
		{"data/liver_nonbyte_aligned_deflate.dcm", "data/liver_nonbyte_aligned.dcm"},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			want := refSHA256(t, "pydicom-data", tc.twin)
			if want == "" {
				t.Skipf("reference for %s not found under %s", tc.twin, corpusRoot)
			}
			path := filepath.Join(corpusRoot, "pydicom-data", tc.file)
			inst, err := loadInstance(path)
			if err != nil {
				// The parsing library does not know newer syntaxes (Deflated Image Frame
				// Compression): take the frames and attributes from the reference record.
				ref := refOf("pydicom-data", tc.file)
				if ref.File == "" {
					t.Fatal(err)
				}
				if inst, err = loadInstanceRaw(path, ref); err != nil {
					t.Fatal(err)
				}
			}
			got, err := decodeAll(inst)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(got.Data)
			if hex.EncodeToString(sum[:]) != want {
				t.Fatalf("pixels differ from the reference of %s", tc.twin)
			}
		})
	}
}

// TestHTJ2KDecodes decodes the High-Throughput JPEG 2000 file, which the reference decoder does
// not support: it must give a full RGB frame with real content.
func TestHTJ2KDecodes(t *testing.T) {
	path := filepath.Join(corpusRoot, "pydicom-data", "data", "HTJ2K_08_RGB.dcm")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("HTJ2K file not found: %v", err)
	}
	frags, err := rawFragments(b) // the test parser panics on this file
	if err != nil {
		t.Fatal(err)
	}
	info := FrameInfo{Rows: 480, Columns: 640, SamplesPerPixel: 3, BitsAllocated: 8, BitsStored: 8, Photometric: "RGB"}
	d, err := Decode(HTJ2K, concat(frags), info)
	if err != nil {
		t.Fatal(err)
	}
	hist := map[byte]int{}
	var differ int
	for i := 0; i+2 < len(d.Data); i += 3 {
		hist[d.Data[i]]++
		if d.Data[i] != d.Data[i+1] || d.Data[i+1] != d.Data[i+2] {
			differ++
		}
	}
	if len(hist) < 64 || differ == 0 {
		t.Fatalf("decoded frame looks empty: %d distinct red values, %d non-grey pixels", len(hist), differ)
	}
}
