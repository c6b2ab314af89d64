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
// Berlekamp–Welch error correction). It keeps the soft-decision searches it has run, so one
// codec serves one detection and is not shared between goroutines.
type codec struct {
	fec      *infectious.FEC
	gen      [dataBytes * 8]word // the code's binary generator matrix (osd.go)
	searched []osdSearched       // the soft-decision searches run so far (osd.go)
}

// sharePart is one symbol of an encoded word.
type sharePart = infectious.Share

func newCodec() (*codec, error) {
	f, err := infectious.NewFEC(dataBytes, codeBytes)
	if err != nil {
		return nil, fmt.Errorf("reed-solomon code: %w", err)
	}
	c := &codec{fec: f}
	if c.gen, err = c.binaryGenerator(); err != nil {
		return nil, fmt.Errorf("reed-solomon generator: %w", err)
	}
	return c, nil
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
	// falseProb bounds the chance that random bits pass the decoder by the attempt that
	// succeeded (the sum over the attempts made).
	falseProb float64
}

var errUndecodable = errors.New("payload not decodable")

// chaseBits is the number of least reliable bits whose flips are tried (Chase-II) when
// erasures do not help.
const chaseBits = 6

// decode turns soft bit values (positive means bit 0) into a payload. It tries plain error
// correction, then the ordered-statistics search over the binary image of the code (osd.go),
// then erasing the 1–5 least reliable bytes, then (Chase-II) every pattern of flips of the
// chaseBits least reliable bits. Only a word whose CRC matches is accepted.
func (c *codec) decode(soft []float64) (decodeResult, error) {
	hard := make([]byte, codedBits)
	for i, v := range soft {
		if v < 0 {
			hard[i] = 1
		}
	}
	recv := bitsToBytes(hard)
	byteRel := make([]int, codeBytes)
	rel := make([]float64, codeBytes)
	for i := range byteRel {
		byteRel[i] = i
		rel[i] = math.Inf(1)
		for j := 0; j < 8; j++ {
			rel[i] = math.Min(rel[i], math.Abs(soft[i*8+j]))
		}
	}
	sort.SliceStable(byteRel, func(a, b int) bool { return rel[byteRel[a]] < rel[byteRel[b]] })
	bitRel := make([]int, codedBits)
	for i := range bitRel {
		bitRel[i] = i
	}
	sort.SliceStable(bitRel, func(a, b int) bool { return math.Abs(soft[bitRel[a]]) < math.Abs(soft[bitRel[b]]) })

	prob := 0.0
	finish := func(p Payload, e int) (decodeResult, error) {
		bits, err := c.encode(p)
		if err != nil {
			return decodeResult{}, err
		}
		res := decodeResult{payload: p, erased: e, falseProb: prob}
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
	for i, e := range erasureTries {
		if i == 1 {
			// After plain decoding: the soft-decision search.
			if w, d, ok := c.osd(soft); ok && d <= osdMaxDistance {
				b := w.bytes()
				if p, ok := c.try(b[:], nil); ok {
					prob += osdFalseProb(d)
					return finish(p, 0)
				}
			}
			prob += osdFalseProb(osdMaxDistance)
		}
		prob += attemptFalseProb(e)
		erased := make(map[int]bool, e)
		for _, i := range byteRel[:e] {
			erased[i] = true
		}
		if p, ok := c.try(recv, erased); ok {
			return finish(p, e)
		}
	}
	word := make([]byte, codeBytes)
	for mask := 1; mask < 1<<chaseBits; mask++ {
		prob += attemptFalseProb(0)
		copy(word, recv)
		for j := 0; j < chaseBits; j++ {
			if mask>>j&1 == 1 {
				b := bitRel[j]
				word[b/8] ^= 1 << (7 - b%8)
			}
		}
		if p, ok := c.try(word, nil); ok {
			return finish(p, 0)
		}
	}
	return decodeResult{}, errUndecodable
}

// try decodes a received word with the given bytes erased and checks the CRC.
func (c *codec) try(recv []byte, erased map[int]bool) (Payload, bool) {
	shares := make([]infectious.Share, 0, codeBytes)
	for i := 0; i < codeBytes; i++ {
		if !erased[i] {
			shares = append(shares, infectious.Share{Number: i, Data: []byte{recv[i]}})
		}
	}
	data, err := c.fec.Decode(nil, shares)
	if err != nil || len(data) != dataBytes {
		return Payload{}, false
	}
	if uint32(data[6])<<8|uint32(data[7]) != payloadCRC(data[:6]) {
		return Payload{}, false
	}
	var id [8]byte
	copy(id[3:], data[1:6])
	return Payload{ID: binary.BigEndian.Uint64(id[:]), Version: data[0]}, true
}

// attemptFalseProb bounds the chance that a word of random bytes passes one decode attempt
// with e erased bytes: the share of words within the decoding radius of some codeword, times
// the chance that a wrong word matches the CRC.
func attemptFalseProb(e int) float64 {
	n := codeBytes - e
	t := (n - dataBytes) / 2
	vol := 0.0
	for i := 0; i <= t; i++ {
		vol += binom(n, i) * math.Pow(255, float64(i))
	}
	return vol / math.Pow(256, float64(n-dataBytes)) * math.Pow(2, -crcBits)
}

// maxFalseDecodeProbability bounds the chance that random bits pass a whole decode call.
func maxFalseDecodeProbability() float64 {
	p := osdFalseProb(osdMaxDistance)
	for _, e := range erasureTries {
		p += attemptFalseProb(e)
	}
	return p + float64(1<<chaseBits-1)*attemptFalseProb(0)
}

func binom(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}
