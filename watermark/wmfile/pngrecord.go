package wmfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
)

// PNGRecord is what embed records in a marked PNG, in a tEXt chunk with the keyword
// PNGRecordKeyword, as the DICOM writer records it in the provenance block: the payload and
// key ids (never the key) and the floors the mark was held at. A viewer's re-export drops
// it, like stripped DICOM tags; the mark in the pixels stays. TIFF outputs carry no record
// (the TIFF encoder writes no custom tags).
type PNGRecord struct {
	PayloadID string  `json:"payload_id"`
	KeyID     string  `json:"key_id"`
	PSNRFloor float64 `json:"psnr_floor"`
	SSIMFloor float64 `json:"ssim_floor"`
}

// PNGRecordKeyword is the keyword of the tEXt chunk that holds a PNGRecord.
const PNGRecordKeyword = "augment:watermark"

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// withPNGRecord returns the PNG file data with the record's tEXt chunk inserted after the
// header chunk (IHDR).
func withPNGRecord(data []byte, r PNGRecord) ([]byte, error) {
	if !bytes.HasPrefix(data, pngSignature) || len(data) < 8+8+13+4 || string(data[12:16]) != "IHDR" {
		return nil, errors.New("not a PNG stream starting with IHDR")
	}
	text, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	body := append(append([]byte(PNGRecordKeyword), 0), text...)
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
func readPNGRecord(data []byte) (*PNGRecord, error) {
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
			if k, text, ok := bytes.Cut(body, []byte{0}); ok && string(k) == PNGRecordKeyword {
				var r PNGRecord
				if err := json.Unmarshal(text, &r); err != nil {
					return nil, fmt.Errorf("%s record: %w", PNGRecordKeyword, err)
				}
				return &r, nil
			}
		}
		p += 12 + n
	}
	return nil, nil
}
