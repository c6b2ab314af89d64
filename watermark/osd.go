package watermark

import (
	"math"
	"math/bits"
	"slices"
	"sort"
)

// Soft-decision decoding. Reed–Solomon over GF(256) is linear over GF(2) (addition is XOR),
// so its 128-bit image is a binary linear (128, 64) code, and an ordered-statistics decoder
// (Fossorier & Lin 1995) can use every bit's reliability instead of hard bytes: it sorts the
// bits by |soft value|, takes the 64 most reliable independent ones as the information set,
// re-encodes their hard decisions and every pattern of up to three flips among them (order
// 3, 43,744 patterns, pruned without loss: see osdDecode), and keeps the codeword with the
// smallest soft discrepancy. That corrects bit errors spread over many bytes, which the
// byte-wise decoder cannot. It is written here because no Go library decodes a binary code
// from soft values; the code itself is still the library's (the generator is read from its
// encoder).
//
// A codeword is accepted only when its CRC matches and it lies within osdMaxDistance bits of
// the hard decisions. The false-decode bound does not depend on the search: of the 2¹²⁸
// words, at most 2⁴⁸ (one per version and id) are codewords with a matching CRC, so a random
// word lies within d bits of one of them with probability at most 2⁴⁸·V(128, d)/2¹²⁸, V the
// volume of the Hamming ball.
//
// When that fails, the detector accepts the search's codeword on a bound that uses the
// reliabilities (reliableBound: errors gather in the least reliable bits) up to
// osdCombinedBound, and combines the code's bound with the pilot's: the payload is reported
// only when the two together put the false-positive probability under its target. A wrong
// payload needs the search to return a wrong codeword (it does when the errors are many)
// whose CRC matches; the search ignores the CRC, so that happens with probability 2⁻¹⁶ per
// candidate tried (detect tries up to 9): at most 9·2⁻¹⁶ ≈ 1.4·10⁻⁴ of the attacked images
// on which the search goes wrong, fewer still after the bound and the pilot (none in the
// robustness suite).
const (
	osdMaxDistance   = 10
	osdCombinedBound = 1e-2
)

// word is a 128-bit codeword, bit i at word[i/64] bit (63 - i%64), so that bit order matches
// bytesToBits.
type word [2]uint64

func (w *word) set(i int)      { w[i/64] |= 1 << (63 - i%64) }
func (w word) get(i int) bool  { return w[i/64]>>(63-i%64)&1 == 1 }
func (w word) xor(v word) word { return word{w[0] ^ v[0], w[1] ^ v[1]} }
func (w word) ones() int       { return bits.OnesCount64(w[0]) + bits.OnesCount64(w[1]) }

// byteWord turns a codeword of bytes into a word.
func byteWord(b []byte) word {
	var w word
	for i, v := range b {
		w[i/8] |= uint64(v) << (56 - 8*(i%8))
	}
	return w
}

// binaryGenerator reads the rows of the code's binary generator matrix from the encoder: the
// codeword of each single data bit.
func (c *codec) binaryGenerator() ([dataBytes * 8]word, error) {
	var g [dataBytes * 8]word
	code := make([]byte, codeBytes)
	for i := range g {
		data := make([]byte, dataBytes)
		data[i/8] = 1 << (7 - i%8)
		if err := c.fec.Encode(data, func(s sharePart) { copy(code[s.Number:], s.Data) }); err != nil {
			return g, err
		}
		g[i] = byteWord(code)
	}
	return g, nil
}

// osdSearched is one word's soft-decision search, kept by the codec: the detector decodes
// each candidate's word in full and then, where none decodes, on the reliability bound, and
// the search is the costly part of both.
type osdSearched struct {
	soft []float64
	best word
	dist int
	ok   bool
}

// osd is osdDecode, run once per distinct word the codec is given.
func (c *codec) osd(soft []float64) (best word, dist int, ok bool) {
	for _, e := range c.searched {
		if slices.Equal(e.soft, soft) {
			return e.best, e.dist, e.ok
		}
	}
	best, dist, ok = c.osdDecode(soft)
	c.searched = append(c.searched, osdSearched{slices.Clone(soft), best, dist, ok})
	return best, dist, ok
}

// osdDecode returns the codeword the ordered-statistics search finds closest to soft (in soft
// discrepancy) and its Hamming distance to the hard decisions. ok is false when the
// information set could not be completed (never for this code).
func (c *codec) osdDecode(soft []float64) (best word, dist int, ok bool) {
	const k = dataBytes * 8
	var hard word
	for i, v := range soft {
		if v < 0 {
			hard.set(i)
		}
	}
	order := make([]int, codedBits)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return math.Abs(soft[order[a]]) > math.Abs(soft[order[b]]) })
	// Gaussian elimination over GF(2), pivoting on the most reliable columns first.
	rows := c.gen
	var mrb [k]int
	rank := 0
	for _, col := range order {
		if rank == k {
			break
		}
		p := -1
		for r := rank; r < k; r++ {
			if rows[r].get(col) {
				p = r
				break
			}
		}
		if p < 0 {
			continue
		}
		rows[rank], rows[p] = rows[p], rows[rank]
		for r := 0; r < k; r++ {
			if r != rank && rows[r].get(col) {
				rows[r] = rows[r].xor(rows[rank])
			}
		}
		mrb[rank] = col
		rank++
	}
	if rank < k {
		return word{}, 0, false
	}
	// Discrepancy tables: per byte position, the summed |soft| of each pattern of 8 bits.
	var tab [codeBytes][256]float64
	for b := 0; b < codeBytes; b++ {
		for m := 1; m < 256; m++ {
			j := bits.TrailingZeros8(uint8(m))
			tab[b][m] = tab[b][m&(m-1)] + math.Abs(soft[b*8+7-j])
		}
	}
	disc := func(w word) float64 {
		d := w.xor(hard)
		s := 0.0
		for b := 0; b < codeBytes; b++ {
			s += tab[b][uint8(d[b/8]>>(56-8*(b%8)))]
		}
		return s
	}
	var c0 word
	for r := 0; r < k; r++ {
		if hard.get(mrb[r]) {
			c0 = c0.xor(rows[r])
		}
	}
	best, bestD := c0, disc(c0)
	try := func(w word) {
		if d := disc(w); d < bestD {
			best, bestD = w, d
		}
	}
	// Every pattern of up to three flips on the information set, least reliable first (w is
	// non-increasing). The rows are reduced on the information set, so a pattern's codeword
	// differs from the hard decisions there exactly at its flips and its discrepancy is at
	// least their |soft|: where that reaches the best found, neither the pattern nor any
	// with a more reliable flip in place of one of its own can win, and the loop stops.
	var w [k]float64
	for r := range w {
		w[r] = math.Abs(soft[mrb[r]])
	}
	for a := k - 1; a >= 0 && w[a] < bestD; a-- {
		ca := c0.xor(rows[a])
		try(ca)
		for b := a - 1; b >= 0 && w[a]+w[b] < bestD; b-- {
			cb := ca.xor(rows[b])
			try(cb)
			for c := b - 1; c >= 0 && w[a]+w[b]+w[c] < bestD; c-- {
				try(cb.xor(rows[c]))
			}
		}
	}
	return best, best.xor(hard).ones(), true
}

// osdFalseProb bounds the chance that a random word lies within d bits of a codeword whose
// CRC matches: 2⁴⁸·V(128, d)/2¹²⁸.
func osdFalseProb(d int) float64 {
	v := 0.0
	for i := 0; i <= d; i++ {
		v += binom(codedBits, i)
	}
	return v * math.Pow(2, float64(8*(dataBytes-2)-codedBits))
}

// decodeBest is decodeWithin on every word of softs; it returns the index of the word whose
// codeword passed with the smallest bound.
func (c *codec) decodeBest(softs [][]float64, maxBound float64) (int, decodeResult, bool) {
	bi, best, found := -1, decodeResult{}, false
	for i, s := range softs {
		if r, err := c.decodeWithin(s, maxBound); err == nil && (!found || r.falseProb < best.falseProb) {
			bi, best, found = i, r, true
		}
	}
	return bi, best, found
}

// decodeWithin is the soft-decision search alone, accepting a codeword with a matching CRC
// whose reliableBound is at most maxBound.
func (c *codec) decodeWithin(soft []float64, maxBound float64) (decodeResult, error) {
	w, d, ok := c.osd(soft)
	if !ok {
		return decodeResult{}, errUndecodable
	}
	bound := reliableBound(soft, w)
	if bound > maxBound {
		return decodeResult{}, errUndecodable
	}
	b := w.bytes()
	p, ok := c.try(b[:], nil)
	if !ok {
		return decodeResult{}, errUndecodable
	}
	res := decodeResult{payload: p, bitErrors: d, falseProb: bound}
	var hard word
	for i, v := range soft {
		if v < 0 {
			hard.set(i)
		}
	}
	hb := hard.bytes()
	for i := range b {
		if b[i] != hb[i] {
			res.symbolErrors++
		}
	}
	return res, nil
}

func (w word) bytes() [codeBytes]byte {
	var b [codeBytes]byte
	for j := range b {
		b[j] = byte(w[j/8] >> (56 - 8*(j%8)))
	}
	return b
}

// reliableBound is a false-decode bound that uses the soft values: for each K of
// reliableSpans, the most reliable K bits are compared with the codeword w, and
// 2⁴⁸·V(K, j)/2ᴷ bounds the chance that random bits (signs independent of magnitudes) agree
// with some codeword with a matching CRC on all but j of them; the smallest over K, times the
// number of K tried. Errors gather in the least reliable bits, so this is often far smaller
// than the bound from all 128 bits.
func reliableBound(soft []float64, w word) float64 {
	order := make([]int, codedBits)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return math.Abs(soft[order[a]]) > math.Abs(soft[order[b]]) })
	best := 1.0
	j, next := 0, 0
	for k, i := range order {
		if (soft[i] < 0) != w.get(i) {
			j++
		}
		if next < len(reliableSpans) && k+1 == reliableSpans[next] {
			next++
			v := 0.0
			for e := 0; e <= j; e++ {
				v += binom(k+1, e)
			}
			best = math.Min(best, v*math.Pow(2, float64(8*(dataBytes-2)-(k+1))))
		}
	}
	return math.Min(1, best*float64(len(reliableSpans)))
}

// reliableSpans are the numbers of most reliable bits reliableBound compares.
var reliableSpans = []int{64, 80, 96, 112, 128}
