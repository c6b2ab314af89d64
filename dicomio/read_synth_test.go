package dicomio

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"sort"
	"testing"
)

// readSynth describes a small DICOM file that the tests encode themselves (the reader's
// tests do not depend on the writer).
type readSynth struct {
	rows, cols, frames, samples, bits, bitsStored int
	signed                                        bool
	ts                                            string
	noPreamble                                    bool // no preamble and no meta information
	sop, study, series                            string
	photometric                                   string
	modality, sopClass                            string
	planar                                        int
	seed                                          int
	attrs                                         []readSynthElem // extra top-level elements
	noPixels                                      bool
	pixels                                        []byte // raw pixel value bytes (else generated)
}

// readSynthElem is one element; items holds sequence items (each a list of elements).
type readSynthElem struct {
	group, elem uint16
	vr          string
	value       []byte
	items       [][]readSynthElem
}

func rsStr(group, elem uint16, vr, s string) readSynthElem {
	b := []byte(s)
	if len(b)%2 == 1 {
		pad := byte(' ')
		if vr == "UI" {
			pad = 0
		}
		b = append(b, pad)
	}
	return readSynthElem{group: group, elem: elem, vr: vr, value: b}
}

func rsUS(group, elem uint16, v uint16, bo binary.ByteOrder) readSynthElem {
	b := make([]byte, 2)
	bo.PutUint16(b, v)
	return readSynthElem{group: group, elem: elem, vr: "US", value: b}
}

func rsSeq(group, elem uint16, items ...[]readSynthElem) readSynthElem {
	return readSynthElem{group: group, elem: elem, vr: "SQ", items: items}
}

// encode writes elements sorted by tag in the given encoding.
func rsEncode(els []readSynthElem, bo binary.ByteOrder, implicit bool) []byte {
	sort.SliceStable(els, func(i, j int) bool {
		return uint32(els[i].group)<<16|uint32(els[i].elem) < uint32(els[j].group)<<16|uint32(els[j].elem)
	})
	var buf bytes.Buffer
	u16 := func(v uint16) { b := make([]byte, 2); bo.PutUint16(b, v); buf.Write(b) }
	u32 := func(v uint32) { b := make([]byte, 4); bo.PutUint32(b, v); buf.Write(b) }
	for _, e := range els {
		value := e.value
		if e.vr == "SQ" {
			var sq bytes.Buffer
			for _, it := range e.items {
				body := rsEncode(it, bo, implicit)
				b := make([]byte, 8)
				bo.PutUint16(b, 0xFFFE)
				bo.PutUint16(b[2:], 0xE000)
				bo.PutUint32(b[4:], uint32(len(body)))
				sq.Write(b)
				sq.Write(body)
			}
			value = sq.Bytes()
		}
		u16(e.group)
		u16(e.elem)
		switch {
		case implicit:
			u32(uint32(len(value)))
		case readExplicitLong(e.vr) || readVR64(e.vr):
			buf.WriteString(e.vr)
			u16(0)
			u32(uint32(len(value)))
		default:
			buf.WriteString(e.vr)
			u16(uint16(len(value)))
		}
		buf.Write(value)
	}
	return buf.Bytes()
}

// readTestFile encodes s as a DICOM file.
func readTestFile(t testing.TB, s readSynth) []byte {
	t.Helper()
	if s.ts == "" {
		s.ts = TSExplicitLittle
	}
	if s.frames == 0 {
		s.frames = 1
	}
	if s.samples == 0 {
		s.samples = 1
	}
	if s.bits == 0 {
		s.bits = 8
	}
	if s.bitsStored == 0 {
		s.bitsStored = s.bits
	}
	if s.photometric == "" {
		s.photometric = "MONOCHROME2"
		if s.samples == 3 {
			s.photometric = "RGB"
		}
	}
	if s.sop == "" {
		s.sop = "1.2.826.0.1.3680043.10.1.1"
	}
	if s.study == "" {
		s.study = "1.2.826.0.1.3680043.10.1.2"
	}
	if s.series == "" {
		s.series = s.study + ".1"
	}
	if s.modality == "" {
		s.modality = "OT"
	}
	if s.sopClass == "" {
		s.sopClass = "1.2.840.10008.5.1.4.1.1.7"
	}
	bo, implicit := readTSEncoding(s.ts)
	els := []readSynthElem{
		rsStr(0x0008, 0x0016, "UI", s.sopClass),
		rsStr(0x0008, 0x0018, "UI", s.sop),
		rsStr(0x0008, 0x0060, "CS", s.modality),
		rsStr(0x0020, 0x000D, "UI", s.study),
		rsStr(0x0020, 0x000E, "UI", s.series),
	}
	if !s.noPixels {
		els = append(els,
			rsUS(0x0028, 0x0002, uint16(s.samples), bo),
			rsStr(0x0028, 0x0004, "CS", s.photometric),
			rsStr(0x0028, 0x0008, "IS", itoa(s.frames)),
			rsUS(0x0028, 0x0010, uint16(s.rows), bo),
			rsUS(0x0028, 0x0011, uint16(s.cols), bo),
			rsUS(0x0028, 0x0100, uint16(s.bits), bo),
			rsUS(0x0028, 0x0101, uint16(s.bitsStored), bo),
			rsUS(0x0028, 0x0102, uint16(s.bitsStored-1), bo),
			rsUS(0x0028, 0x0103, map[bool]uint16{true: 1}[s.signed], bo),
		)
		if s.samples > 1 {
			els = append(els, rsUS(0x0028, 0x0006, uint16(s.planar), bo))
		}
		pix := s.pixels
		if pix == nil {
			n := s.rows * s.cols * s.frames * s.samples
			switch s.bits {
			case 1:
				pix = make([]byte, (n+7)/8)
				for i := range pix {
					pix[i] = byte(i*37 + s.seed)
				}
			case 8:
				pix = make([]byte, n)
				for i := range pix {
					pix[i] = byte(i*7 + s.seed)
				}
			case 16:
				pix = make([]byte, 2*n)
				for i := 0; i < n; i++ {
					bo.PutUint16(pix[2*i:], uint16(i*13-n/2+s.seed)&(1<<s.bitsStored-1))
				}
			}
		}
		if len(pix)%2 == 1 {
			pix = append(pix, 0)
		}
		vr := "OW"
		if s.bits <= 8 {
			vr = "OB"
		}
		els = append(els, readSynthElem{group: 0x7FE0, elem: 0x0010, vr: vr, value: pix})
	}
	els = append(els, s.attrs...)
	body := rsEncode(els, bo, implicit)
	if s.ts == TSDeflated {
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, flate.BestSpeed)
		w.Write(body)
		w.Close()
		body = z.Bytes()
	}
	if s.noPreamble {
		return body
	}
	meta := rsEncode([]readSynthElem{
		{group: 0x0002, elem: 0x0001, vr: "OB", value: []byte{0, 1}},
		rsStr(0x0002, 0x0002, "UI", s.sopClass),
		rsStr(0x0002, 0x0003, "UI", s.sop),
		rsStr(0x0002, 0x0010, "UI", s.ts),
	}, binary.LittleEndian, false)
	var out bytes.Buffer
	out.Write(make([]byte, 128))
	out.WriteString("DICM")
	gl := rsEncode([]readSynthElem{{group: 0x0002, elem: 0x0000, vr: "UL", value: binary.LittleEndian.AppendUint32(nil, uint32(len(meta)))}}, binary.LittleEndian, false)
	out.Write(gl)
	out.Write(meta)
	out.Write(body)
	return out.Bytes()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}
