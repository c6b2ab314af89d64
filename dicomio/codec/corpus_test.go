package codec

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// corpusRoot is the shared DICOM conformance corpus, relative to this package.
const corpusRoot = "../../../shared/data/dicom"

// refRecord is one line of a NAME.refs.jsonl file (pydicom 2.3.1 with GDCM 3.0.21).
type refRecord struct {
	File           string      `json:"file"`
	TransferSyntax string      `json:"transfer_syntax"`
	Photometric    string      `json:"PhotometricInterpretation"`
	Rows           int         `json:"Rows"`
	Columns        int         `json:"Columns"`
	Samples        int         `json:"SamplesPerPixel"`
	BitsAllocated  int         `json:"BitsAllocated"`
	BitsStored     int         `json:"BitsStored"`
	PixelRep       int         `json:"PixelRepresentation"`
	Frames         flexInt     `json:"NumberOfFrames"`
	Shape          []int       `json:"shape"`
	Dtype          string      `json:"dtype"`
	SHA256         string      `json:"sha256"`
	Thumb16        [][]float64 `json:"thumb16"`
	Max            float64     `json:"max"`
	Min            float64     `json:"min"`
	dir            string      // corpus folder the file is in
}

// lossySyntaxes are the transfer syntaxes whose decoded pixels are compared by thumbnail.
var lossySyntaxes = map[string]bool{JPEGBaseline: true, JPEGExtended: true, JPEGLSNearLossless: true, JPEG2000: true, HTJ2K: true}

// flexInt reads an integer written either as a JSON number or as a string.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(bytes.Trim(b, `"`), &n); err != nil {
		return nil // not a number: leave zero (unknown)
	}
	*f = flexInt(n)
	return nil
}

// corruptInReference lists files whose codestream is damaged although the reference decoder
// returned pixels for them: Decode must report an error instead.
var corruptInReference = map[string]string{
	// The SIZ marker's first bytes are overwritten with FFFE,E0DD: the reference decoded noise
	// (min -32668, max 32753) where the intact twin JPEG2000.dcm has -30..245.
	"test_files/JPEG2000-embedded-sequence-delimiter.dcm": "JPEG 2000 SIZ marker overwritten by a sequence delimiter",
}

// compressedRefs returns the reference records of compressed files that the reference decoder
// decoded, or skips the test when the corpus is absent.
func compressedRefs(t *testing.T) []refRecord {
	t.Helper()
	lists, _ := filepath.Glob(filepath.Join(corpusRoot, "*.refs.jsonl"))
	if len(lists) == 0 {
		t.Skipf("DICOM corpus not found at %s (../shared/data/dicom from the repository root)", corpusRoot)
	}
	var out []refRecord
	for _, list := range lists {
		f, err := os.Open(list)
		if err != nil {
			t.Fatalf("open %s: %v", list, err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var r refRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", list, err)
			}
			if r.SHA256 == "" || !isCompressed(r.TransferSyntax) {
				continue
			}
			r.dir = strings.TrimSuffix(list, ".refs.jsonl")
			out = append(out, r)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatalf("read %s: %v", list, err)
		}
	}
	return out
}

func isCompressed(ts string) bool {
	return ts == RLELossless || strings.HasPrefix(ts, "1.2.840.10008.1.2.4.")
}

// testInstance is what the tests need of a DICOM file: its frames and the image attributes.
type testInstance struct {
	ts     string
	info   FrameInfo
	frames [][]byte
}

// loadInstance parses a file with github.com/suyashkumar/dicom (recovering its panics) and
// splits its encapsulated Pixel Data into frames.
func loadInstance(path string) (inst testInstance, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parse %s: parser panicked: %v", path, r)
		}
	}()
	ds, err := dicom.ParseFile(path, nil, dicom.AllowMismatchPixelDataLength())
	if err != nil {
		return inst, fmt.Errorf("parse %s: %w", path, err)
	}
	str := func(tg tag.Tag) string {
		e, err := ds.FindElementByTag(tg)
		if err != nil {
			return ""
		}
		if s, ok := e.Value.GetValue().([]string); ok && len(s) > 0 {
			return strings.TrimSpace(strings.TrimRight(s[0], "\x00"))
		}
		return ""
	}
	num := func(tg tag.Tag, def int) int {
		e, err := ds.FindElementByTag(tg)
		if err != nil {
			return def
		}
		switch v := e.Value.GetValue().(type) {
		case []int:
			if len(v) > 0 {
				return v[0]
			}
		case []string:
			var n int
			if len(v) > 0 {
				if _, err := fmt.Sscan(strings.TrimSpace(v[0]), &n); err == nil {
					return n
				}
			}
		}
		return def
	}
	inst.ts = str(tag.TransferSyntaxUID)
	inst.info = FrameInfo{
		Rows: num(tag.Rows, 0), Columns: num(tag.Columns, 0), SamplesPerPixel: num(tag.SamplesPerPixel, 1),
		BitsAllocated: num(tag.BitsAllocated, 0), BitsStored: num(tag.BitsStored, 0),
		Signed: num(tag.PixelRepresentation, 0) == 1, Photometric: str(tag.PhotometricInterpretation),
		PlanarConfiguration: num(tag.PlanarConfiguration, 0),
	}
	pd, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		return inst, fmt.Errorf("%s: no Pixel Data: %w", path, err)
	}
	info, ok := pd.Value.GetValue().(dicom.PixelDataInfo)
	if !ok || !info.IsEncapsulated {
		return inst, fmt.Errorf("%s: Pixel Data is not encapsulated", path)
	}
	var frags [][]byte
	for _, f := range info.Frames {
		frags = append(frags, f.EncapsulatedData.Data)
	}
	inst.frames, err = SplitFrames(inst.ts, frags, nil, num(tag.NumberOfFrames, 1))
	if err != nil {
		return inst, fmt.Errorf("%s: %w", path, err)
	}
	return inst, nil
}

// loadInstanceRaw is the fallback for files the test parser cannot read: it takes the image
// attributes from the reference record and the fragments of the last top-level encapsulated
// Pixel Data element from the raw bytes.
func loadInstanceRaw(path string, ref refRecord) (testInstance, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return testInstance{}, err
	}
	frags, err := rawFragments(b)
	if err != nil {
		return testInstance{}, fmt.Errorf("%s: %w", path, err)
	}
	frames, err := SplitFrames(ref.TransferSyntax, frags, nil, max(int(ref.Frames), 1))
	if err != nil {
		return testInstance{}, fmt.Errorf("%s: %w", path, err)
	}
	return testInstance{ts: ref.TransferSyntax, frames: frames, info: FrameInfo{
		Rows: ref.Rows, Columns: ref.Columns, SamplesPerPixel: ref.Samples, BitsAllocated: ref.BitsAllocated,
		BitsStored: ref.BitsStored, Signed: ref.PixelRep == 1, Photometric: ref.Photometric,
	}}, nil
}

// rawFragments finds the last Pixel Data element of undefined length (explicit or implicit VR,
// little endian) and returns its fragments, the Basic Offset Table left out.
func rawFragments(b []byte) ([][]byte, error) {
	tagBytes := []byte{0xE0, 0x7F, 0x10, 0x00}
	for end := len(b); end > 0; {
		i := bytes.LastIndex(b[:end], tagBytes)
		if i < 0 {
			break
		}
		end = i
		p := i + 4
		switch {
		case p+8 <= len(b) && (string(b[p:p+2]) == "OB" || string(b[p:p+2]) == "OW") && binary.LittleEndian.Uint32(b[p+4:]) == 0xFFFFFFFF:
			p += 8
		case p+4 <= len(b) && binary.LittleEndian.Uint32(b[p:]) == 0xFFFFFFFF:
			p += 4
		default:
			continue
		}
		var frags [][]byte
		for first := true; p+8 <= len(b); first = false {
			tg := binary.LittleEndian.Uint32(b[p:])
			n := int(binary.LittleEndian.Uint32(b[p+4:]))
			p += 8
			if tg == 0xE0DDFFFE {
				return frags, nil
			}
			if tg != 0xE000FFFE || n < 0 || p+n > len(b) {
				return nil, fmt.Errorf("bad item in encapsulated Pixel Data at byte %d", p-8)
			}
			if !first {
				frags = append(frags, b[p:p+n])
			}
			p += n
		}
		return nil, fmt.Errorf("encapsulated Pixel Data has no sequence delimiter")
	}
	return nil, fmt.Errorf("no encapsulated Pixel Data element")
}

// decodeAll decodes every frame of an instance and returns them concatenated.
func decodeAll(inst testInstance) (Decoded, error) {
	var all Decoded
	for i, fr := range inst.frames {
		d, err := Decode(inst.ts, fr, inst.info)
		if err != nil {
			return Decoded{}, fmt.Errorf("frame %d: %w", i, err)
		}
		all.Data = append(all.Data, d.Data...)
		all.Photometric = d.Photometric
	}
	return all, nil
}

// referenceBytes converts decoded stored values to the reference's layout: the numpy dtype
// pydicom returns, little endian. pydicom 2.3 with GDCM does not sign-extend from BitsStored
// (a 15-bit signed JPEG-LS frame comes back as the 16-bit words), so neither does this.
func referenceBytes(data []byte, info FrameInfo, dtype string) []byte {
	bps := info.bytesPerSample()
	size := map[string]int{"uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "uint32": 4, "int32": 4}[dtype]
	if size == 0 || size == bps {
		return data
	}
	n := len(data) / bps
	out := make([]byte, n*size)
	for i := 0; i < n; i++ {
		v := storedValue(data, i, bps)
		for b := 0; b < size; b++ {
			out[i*size+b] = byte(v >> (8 * b))
		}
	}
	return out
}

func storedValue(data []byte, i, bps int) uint32 {
	switch bps {
	case 1:
		return uint32(data[i])
	case 2:
		return uint32(binary.LittleEndian.Uint16(data[2*i:]))
	default:
		return binary.LittleEndian.Uint32(data[4*i:])
	}
}

// thumb16 returns the 16×16 block means of the first sample of the first frame, as the
// reference computes them, signed values read as BitsAllocated-wide two's complement.
func thumb16(data []byte, info FrameInfo) [16][16]float64 {
	var out [16][16]float64
	bps := info.bytesPerSample()
	h, w, spp := info.Rows, info.Columns, info.SamplesPerPixel
	span := func(i, n int) (int, int) {
		a, b := i*n/16, (i+1)*n/16
		if b <= a {
			b = a + 1
		}
		return a, b
	}
	for by := 0; by < 16; by++ {
		y0, y1 := span(by, h)
		for bx := 0; bx < 16; bx++ {
			x0, x1 := span(bx, w)
			var sum float64
			for y := y0; y < y1; y++ {
				for x := x0; x < x1; x++ {
					v := int64(storedValue(data, (y*w+x)*spp, bps))
					if info.Signed && v&(1<<(8*bps-1)) != 0 {
						v -= 1 << (8 * bps)
					}
					sum += float64(v)
				}
			}
			out[by][bx] = sum / float64((y1-y0)*(x1-x0))
		}
	}
	return out
}

// TestDecodeCorpus decodes every compressed file of the shared corpus that the reference decoder
// decoded: lossless syntaxes must reproduce the reference SHA-256 exactly, lossy ones its 16×16
// block means within a tolerance of 2 % of the value range.
func TestDecodeCorpus(t *testing.T) {
	for _, ref := range compressedRefs(t) {
		path := filepath.Join(ref.dir, ref.File)
		t.Run(filepath.Base(ref.dir)+"/"+ref.File, func(t *testing.T) {
			if !Supported(ref.TransferSyntax) {
				t.Fatalf("transfer syntax %s (%s) not supported", ref.TransferSyntax, Name(ref.TransferSyntax))
			}
			inst, err := loadInstance(path)
			if err != nil {
				if inst, err = loadInstanceRaw(path, ref); err != nil {
					t.Fatalf("cannot extract frames: %v", err)
				}
			}
			got, err := decodeAll(inst)
			if reason, ok := corruptInReference[ref.File]; ok {
				if err == nil {
					t.Fatalf("decoded a corrupt frame (%s) without an error", reason)
				}
				t.Logf("corrupt (%s): %v", reason, err)
				return
			}
			if err != nil {
				t.Fatalf("decode %s: %v", path, err)
			}
			sum := sha256.Sum256(referenceBytes(got.Data, inst.info, ref.Dtype))
			exact := hex.EncodeToString(sum[:]) == ref.SHA256
			if !lossySyntaxes[ref.TransferSyntax] {
				if !exact {
					t.Fatalf("SHA-256 of stored values differs from the reference (photometric %s → %s)", inst.info.Photometric, got.Photometric)
				}
				return
			}
			if exact {
				return
			}
			th := thumb16(got.Data, inst.info)
			tol := 0.02 * math.Max(ref.Max-ref.Min, 1)
			var worst float64
			for y := range 16 {
				for x := range 16 {
					worst = math.Max(worst, math.Abs(th[y][x]-ref.Thumb16[y][x]))
				}
			}
			if worst > tol {
				t.Fatalf("thumbnail differs from the reference by up to %.2f (tolerance %.2f, photometric %s → %s)", worst, tol, inst.info.Photometric, got.Photometric)
			}
			t.Logf("lossy: thumbnail within %.2f of the reference (tolerance %.2f)", worst, tol)
		})
	}
}
