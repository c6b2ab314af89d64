package wmfile

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
)

// MarkRecord is what embed records in a marked PNG or TIFF file, as the DICOM writer
// records it in the provenance block: the payload and key ids (never the key) and the
// floors the mark was held at, as JSON. A PNG holds it in a tEXt chunk with the keyword
// RecordKeyword; a TIFF in its ImageDescription tag, as the keyword, a space and the JSON.
// A viewer's re-export drops it, like stripped DICOM tags; the mark in the pixels stays.
//
// The TIFF record is added to the encoder's output by hand (withTIFFRecord):
// golang.org/x/image/tiff writes a fixed set of tags and has no way to add one.
type MarkRecord struct {
	PayloadID string  `json:"payload_id"`
	KeyID     string  `json:"key_id"`
	PSNRFloor float64 `json:"psnr_floor"`
	SSIMFloor float64 `json:"ssim_floor"`
}

// RecordKeyword is the keyword of the PNG tEXt chunk that holds a MarkRecord, and the
// first word of a TIFF's ImageDescription that holds one.
const RecordKeyword = "augment:watermark"

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// withPNGRecord returns the PNG file data with the record's tEXt chunk inserted after the
// header chunk (IHDR).
func withPNGRecord(data []byte, r MarkRecord) ([]byte, error) {
	if !bytes.HasPrefix(data, pngSignature) || len(data) < 8+8+13+4 || string(data[12:16]) != "IHDR" {
		return nil, errors.New("not a PNG stream starting with IHDR")
	}
	text, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	body := append(append([]byte(RecordKeyword), 0), text...)
	chunk := make([]byte, 0, 12+len(body))
	chunk = binary.BigEndian.AppendUint32(chunk, uint32(len(body)))
	chunk = append(chunk, "tEXt"...)
	chunk = append(chunk, body...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	end := 8 + 12 + int(binary.BigEndian.Uint32(data[8:12])) // after IHDR
	out := make([]byte, 0, len(data)+len(chunk))
	out = append(out, data[:end]...)
	out = append(out, chunk...)
	return append(out, data[end:]...), nil
}

// readPNGRecord finds the record in PNG file data: nil when there is none, an error when the
// chunk is there but cannot be read (a damaged or foreign chunk under the keyword).
func readPNGRecord(data []byte) (*MarkRecord, error) {
	if !bytes.HasPrefix(data, pngSignature) {
		return nil, nil
	}
	for p := 8; p+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[p : p+4]))
		typ := string(data[p+4 : p+8])
		if n < 0 || p+12+n > len(data) {
			return nil, errors.New("PNG chunk runs past the end of the file")
		}
		body := data[p+8 : p+8+n]
		switch typ {
		case "IDAT", "IEND":
			return nil, nil // text chunks the writer adds come before the image data
		case "tEXt":
			if k, text, ok := bytes.Cut(body, []byte{0}); ok && string(k) == RecordKeyword {
				var r MarkRecord
				if err := json.Unmarshal(text, &r); err != nil {
					return nil, fmt.Errorf("%s record: %w", RecordKeyword, err)
				}
				return &r, nil
			}
		}
		p += 12 + n
	}
	return nil, nil
}

// TIFF structure (TIFF 6.0, section 2): an 8-byte header naming the byte order and the
// first image file directory (IFD); an IFD is a count, 12-byte entries sorted by tag (tag,
// field type, value count, value or offset to it) and the next IFD's offset.
const (
	tiffImageDescription = 270
	tiffASCII            = 2
)

// tiffByteOrder is the byte order of a TIFF stream, for reading and appending.
type tiffByteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// tiffOrder reads a TIFF header: the byte order and the first IFD's offset.
func tiffOrder(data []byte) (tiffByteOrder, uint32, error) {
	if len(data) < 8 {
		return nil, 0, errors.New("TIFF header is cut short")
	}
	var bo tiffByteOrder
	switch string(data[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return nil, 0, errors.New("not a TIFF stream")
	}
	if bo.Uint16(data[2:4]) != 42 {
		return nil, 0, errors.New("not a classic TIFF stream (magic number is not 42)")
	}
	return bo, bo.Uint32(data[4:8]), nil
}

// tiffIFD returns the first IFD's entries (12 bytes each) and the next IFD's offset.
func tiffIFD(data []byte) (tiffByteOrder, [][]byte, uint32, error) {
	bo, off, err := tiffOrder(data)
	if err != nil {
		return nil, nil, 0, err
	}
	if uint64(off)+2 > uint64(len(data)) {
		return nil, nil, 0, errors.New("TIFF directory offset is past the end of the file")
	}
	n := int(bo.Uint16(data[off:]))
	end := uint64(off) + 2 + 12*uint64(n) + 4
	if end > uint64(len(data)) {
		return nil, nil, 0, errors.New("TIFF directory runs past the end of the file")
	}
	entries := make([][]byte, n)
	for i := range entries {
		p := int(off) + 2 + 12*i
		entries[i] = data[p : p+12]
	}
	return bo, entries, bo.Uint32(data[end-4:]), nil
}

// withTIFFRecord returns the TIFF file data with the record in the first image's
// ImageDescription: the text is appended, then a copy of the first IFD with the new entry
// (replacing any description it had), and the header is pointed at the copy. The image
// data and every other value stay where they were.
func withTIFFRecord(data []byte, r MarkRecord) ([]byte, error) {
	bo, entries, next, err := tiffIFD(data)
	if err != nil {
		return nil, err
	}
	text, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	desc := append(append([]byte(RecordKeyword+" "), text...), 0)
	out := append(make([]byte, 0, len(data)+len(desc)+12*(len(entries)+1)+8), data...)
	if len(out)%2 == 1 {
		out = append(out, 0) // values and directories start on a word boundary
	}
	descOff := len(out)
	out = append(out, desc...)
	if len(out)%2 == 1 {
		out = append(out, 0)
	}
	entry := make([]byte, 12)
	bo.PutUint16(entry[0:], tiffImageDescription)
	bo.PutUint16(entry[2:], tiffASCII)
	bo.PutUint32(entry[4:], uint32(len(desc)))
	bo.PutUint32(entry[8:], uint32(descOff))
	var kept [][]byte
	for _, e := range entries {
		if bo.Uint16(e) != tiffImageDescription {
			kept = append(kept, e)
		}
	}
	at, _ := slices.BinarySearchFunc(kept, uint16(tiffImageDescription), func(e []byte, t uint16) int {
		return cmp.Compare(bo.Uint16(e), t)
	})
	kept = slices.Insert(kept, at, entry)
	ifdOff := len(out)
	if uint64(ifdOff)+2+12*uint64(len(kept))+4 > math.MaxUint32 {
		return nil, errors.New("TIFF file too large for 32-bit offsets")
	}
	out = bo.AppendUint16(out, uint16(len(kept)))
	for _, e := range kept {
		out = append(out, e...)
	}
	out = bo.AppendUint32(out, next)
	bo.PutUint32(out[4:8], uint32(ifdOff))
	return out, nil
}

// readTIFFRecord finds the record in the first image's ImageDescription: nil when the file
// has no description or another one, an error when the description is augment's but cannot
// be read.
func readTIFFRecord(data []byte) (*MarkRecord, error) {
	bo, entries, _, err := tiffIFD(data)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if bo.Uint16(e) != tiffImageDescription || bo.Uint16(e[2:]) != tiffASCII {
			continue
		}
		n := uint64(bo.Uint32(e[4:]))
		var v []byte
		if n <= 4 {
			v = e[8 : 8+n]
		} else {
			off := uint64(bo.Uint32(e[8:]))
			if off+n > uint64(len(data)) {
				return nil, errors.New("TIFF ImageDescription runs past the end of the file")
			}
			v = data[off : off+n]
		}
		v = bytes.TrimRight(v, "\x00")
		text, ok := bytes.CutPrefix(v, []byte(RecordKeyword+" "))
		if !ok {
			return nil, nil
		}
		var r MarkRecord
		if err := json.Unmarshal(text, &r); err != nil {
			return nil, fmt.Errorf("%s record: %w", RecordKeyword, err)
		}
		return &r, nil
	}
	return nil, nil
}
