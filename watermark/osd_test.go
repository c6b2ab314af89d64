package watermark

import (
	"math"
	"math/rand/v2"
	"testing"
)

// softFor returns soft values for a payload's codeword: +1 for a 0 bit, −1 for a 1 bit,
// times a magnitude drawn from [lo, hi).
func softFor(t *testing.T, cd *codec, p Payload, rng *rand.Rand, lo, hi float64) []float64 {
	t.Helper()
	bits, err := cd.encode(p)
	if err != nil {
		t.Fatal(err)
	}
	s := make([]float64, len(bits))
	for i, b := range bits {
		s[i] = (lo + (hi-lo)*rng.Float64()) * float64(1-2*int(b))
	}
	return s
}

// TestOSDOrderThree checks that the soft-decision search tries every pattern of three flips
// on the information set: three wrong bits among the most reliable (where the search once
// looked only at pairs) still decode to the codeword, which is the closest one (every other
// codeword differs from it in at least 9 bits, so from the word in at least 6).
func TestOSDOrderThree(t *testing.T) {
	cd, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for trial := 0; trial < 200; trial++ {
		p := Payload{ID: rng.Uint64() & MaxPayloadID, Version: 1}
		s := softFor(t, cd, p, rng, 1, 1.1)
		for _, i := range rng.Perm(codedBits)[:3] {
			s[i] = -s[i] * 1.15 // wrong, and more reliable than every right bit
		}
		w, d, ok := cd.osdDecode(s)
		b := w.bytes()
		got, crcOK := cd.try(b[:], nil)
		if !ok || !crcOK || got != p || d != 3 {
			t.Fatalf("trial %d: search found %v (CRC %v) at %d bits, want %v at 3", trial, got, crcOK, d, p)
		}
	}
}

// TestDecodeBest checks that, of several words that pass the reliability bound, the one with
// the smallest bound is taken, wherever it stands.
func TestDecodeBest(t *testing.T) {
	cd, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	p := Payload{ID: 0x0123456789, Version: 1}
	word := func(errors int) []float64 {
		s := softFor(t, cd, p, rng, 0.8, 1.2)
		for _, i := range rng.Perm(codedBits)[:errors] {
			s[i] *= -0.2 // wrong, and among the least reliable
		}
		return s
	}
	weak, strong := word(26), word(14)
	rw, err1 := cd.decodeWithin(weak, osdCombinedBound)
	rs, err2 := cd.decodeWithin(strong, osdCombinedBound)
	if err1 != nil || err2 != nil || rw.payload != p || rs.payload != p || !(rs.falseProb < rw.falseProb) {
		t.Fatalf("setup: bounds %g (%v) and %g (%v), want both to pass, the second smaller", rw.falseProb, err1, rs.falseProb, err2)
	}
	noise := make([]float64, codedBits)
	for i := range noise {
		noise[i] = rng.NormFloat64()
	}
	for _, tc := range []struct {
		name  string
		softs [][]float64
		want  int
	}{
		{"weak first", [][]float64{noise, weak, strong}, 2},
		{"strong first", [][]float64{strong, weak, noise}, 0},
		{"noise only", [][]float64{noise}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, r, ok := cd.decodeBest(tc.softs, osdCombinedBound)
			if tc.want < 0 {
				if ok {
					t.Fatalf("noise decoded to %v", r.payload)
				}
				return
			}
			if !ok || i != tc.want || r.payload != p || math.Abs(r.falseProb-rs.falseProb) > 1e-12*rs.falseProb {
				t.Fatalf("got word %d (%v, bound %g), want word %d at bound %g", i, ok, r.falseProb, tc.want, rs.falseProb)
			}
		})
	}
}

// BenchmarkOSD times the soft-decision search on a word of random values, where the pruning
// helps least (docs/watermark.md, *Payload and code*):
//
//	go test ./watermark -run '^$' -bench BenchmarkOSD -benchtime 20x
func BenchmarkOSD(b *testing.B) {
	cd, err := newCodec()
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	s := make([]float64, codedBits)
	for i := range s {
		s[i] = rng.NormFloat64()
	}
	for i := 0; i < b.N; i++ {
		cd.osdDecode(s)
	}
}
