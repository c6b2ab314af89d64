package watermark

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sort"

	"github.com/vivint/infectious"
)

// Payload is what the mark carries: a 40-bit payload id (the link from pixels to a manifest
// row) and an 8-bit version that says how the id is to be read.
type Payload struct {
	ID      uint64 `json:"id"`
	Version uint8  `json:"version"`
}

// MaxPayloadID is the largest payload id (40 bits).
const MaxPayloadID = 1<<40 - 1

// PayloadVersion is the version written by this package unless the caller sets another.
const PayloadVersion = 1

// String is the id as 12 hex digits and the version, e.g. "00075bcd15/v1".
func (p Payload) String() string { return fmt.Sprintf("%010x/v%d", p.ID, p.Version) }

// Validate checks that the id fits in 48 bits.
func (p Payload) Validate() error {
	if p.ID > MaxPayloadID {
		return fmt.Errorf("payload id %d does not fit in 40 bits", p.ID)
	}
	return nil
}

// Codeword layout: version (1 byte), id (5 bytes), CRC-16 (2 bytes) = 8 data bytes under a
// Reed–Solomon code over GF(256) with 8 parity bytes: 16 bytes = 128 coded bits, which
// corrects 4 byte errors, or fewer errors plus erasures (2·errors + erasures ≤ 8).
const (
	dataBytes = 8
	codeBytes = 16
	codedBits = codeBytes * 8
	crcBits   = 16
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func payloadCRC(b []byte) uint32 {
	c := crc32.Update(0, crcTable, []byte("augment/watermark/payload/v1"))
	return crc32.Update(c, crcTable, b) & 0xffff
}

// codec wraps the Reed–Solomon code (github.com/vivint/infectious: systematic encoding and
// Berlekamp–Welch error correction).
type codec struct{ fec *infectious.FEC }

func newCodec() (*codec, error) {
	f, err := infectious.NewFEC(dataBytes, codeBytes)
	if err != nil {
		return nil, fmt.Errorf("reed-solomon code: %w", err)
	}
	return &codec{fec: f}, nil
}

// encode returns the codedBits bits (one per byte, MSB first) of the payload.
func (c *codec) encode(p Payload) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	data := make([]byte, dataBytes)
	data[0] = p.Version
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], p.ID)
	copy(data[1:6], id[3:])
	crc := payloadCRC(data[:6])
	data[6], data[7] = byte(crc>>8), byte(crc)
	code := make([]byte, codeBytes)
	if err := c.fec.Encode(data, func(s infectious.Share) { copy(code[s.Number:], s.Data) }); err != nil {
		return nil, fmt.Errorf("reed-solomon encode: %w", err)
	}
	return bytesToBits(code), nil
}

func bytesToBits(b []byte) []byte {
	bits := make([]byte, len(b)*8)
	for i, v := range b {
		for j := 0; j < 8; j++ {
			bits[i*8+j] = (v >> (7 - j)) & 1
		}
	}
	return bits
}

func bitsToBytes(bits []byte) []byte {
	b := make([]byte, len(bits)/8)
	for i := range b {
		for j := 0; j < 8; j++ {
			b[i] = b[i]<<1 | bits[i*8+j]&1
		}
	}
	return b
}

// erasureTries are the numbers of least reliable bytes erased in successive decoding tries
// (a simple Chase-style soft decoder).
var erasureTries = []int{0, 1, 2, 3, 4, 5}

// decodeResult is a successful decode.
type decodeResult struct {
	payload      Payload
	symbolErrors int // bytes of the received word that were wrong (erased ones included)
	bitErrors    int // bits of the received word that were wrong
	erased       int
}

var errUndecodable = errors.New("payload not decodable")

// decode turns soft bit values (positive means bit 0) into a payload, trying erasures of the
// least reliable bytes when plain error correction fails. Only a word whose CRC matches is
// accepted.
func (c *codec) decode(soft []float64) (decodeResult, error) {
	hard := make([]byte, codedBits)
	for i, v := range soft {
		if v < 0 {
			hard[i] = 1
		}
	}
	recv := bitsToBytes(hard)
	type rel struct {
		idx int
		r   float64
	}
	rels := make([]rel, codeBytes)
	for i := range rels {
		m := math.Inf(1)
		for j := 0; j < 8; j++ {
			m = math.Min(m, math.Abs(soft[i*8+j]))
		}
		rels[i] = rel{i, m}
	}
	sort.SliceStable(rels, func(a, b int) bool { return rels[a].r < rels[b].r })
	for _, e := range erasureTries {
		erased := make(map[int]bool, e)
		for _, r := range rels[:e] {
			erased[r.idx] = true
		}
		shares := make([]infectious.Share, 0, codeBytes-e)
		for i := 0; i < codeBytes; i++ {
			if !erased[i] {
				shares = append(shares, infectious.Share{Number: i, Data: []byte{recv[i]}})
			}
		}
		data, err := c.fec.Decode(nil, shares)
		if err != nil || len(data) != dataBytes {
			continue
		}
		crc := payloadCRC(data[:6])
		if uint32(data[6])<<8|uint32(data[7]) != crc {
			continue
		}
		var id [8]byte
		copy(id[3:], data[1:6])
		p := Payload{ID: binary.BigEndian.Uint64(id[:]), Version: data[0]}
		bits, err := c.encode(p)
		if err != nil {
			continue
		}
		res := decodeResult{payload: p, erased: e}
		code := bitsToBytes(bits)
		for i := range code {
			if code[i] != recv[i] {
				res.symbolErrors++
			}
		}
		for i := range bits {
			if bits[i] != hard[i] {
				res.bitErrors++
			}
		}
		return res, nil
	}
	return decodeResult{}, errUndecodable
}

// falseDecodeProbability bounds the chance that a word of random bytes passes the decoder in
// one decode call using erasure tries up to maxErased: for each such try, the share of words
// within the decoding radius of some codeword, times the chance that a wrong word also
// matches the CRC. It is increasing in maxErased, so the value at the number of erasures a
// decode needed is a valid p-value.
func falseDecodeProbability(maxErased int) float64 {
	total := 0.0
	for _, e := range erasureTries {
		if e > maxErased {
			break
		}
		n := codeBytes - e
		t := (n - dataBytes) / 2
		vol := 0.0
		for i := 0; i <= t; i++ {
			vol += binom(n, i) * math.Pow(255, float64(i))
		}
		total += vol / math.Pow(256, float64(n-dataBytes))
	}
	return total * math.Pow(2, -crcBits)
}

func binom(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}
