package unclip

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"html"
	"io"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Special tokens of the CLIP vocabulary.
const (
	StartOfText = "<|startoftext|>"
	EndOfText   = "<|endoftext|>"
)

// OpenAINumMerges is the number of merges OpenAI's CLIP tokenizer uses from bpe_simple_vocab_16e6.txt.
const OpenAINumMerges = 49152 - 256 - 2

// clipPattern is CLIP's pre-tokenisation pattern. Python's `regex` \s is Unicode White_Space; the
// text is whitespace-cleaned first, so only ASCII spaces reach it and Go's \s agrees.
var clipPattern = regexp.MustCompile(`(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`)

// Tokenizer is CLIP's byte-level BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	encoder       map[string]int64
	ranks         map[[2]string]int
	byteEncoder   [256]string
	contextLength int
	sot, eot      int64

	mu    sync.Mutex
	cache map[string][]int64
}

// NewTokenizer reads a merges file in the format of CLIP's bpe_simple_vocab_16e6.txt (optionally
// gzipped: one header line, then one merge "a b" per line) and uses its first numMerges merges
// (0: all). contextLength is the length of Tokenize's rows.
func NewTokenizer(merges io.Reader, numMerges, contextLength int) (*Tokenizer, error) {
	raw, err := io.ReadAll(merges)
	if err != nil {
		return nil, fmt.Errorf("read merges: %w", err)
	}
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("read merges: %w", err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("read merges: gunzip: %w", err)
		}
	}
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("read merges: not UTF-8 text")
	}
	if contextLength < 2 {
		return nil, fmt.Errorf("context length %d must be at least 2", contextLength)
	}
	lines := strings.Split(string(raw), "\n")
	if len(lines) < 1 {
		return nil, fmt.Errorf("read merges: empty file")
	}
	lines = lines[1:] // header
	if numMerges > 0 {
		if numMerges > len(lines) {
			return nil, fmt.Errorf("read merges: want %d merges, the file has %d lines", numMerges, len(lines))
		}
		lines = lines[:numMerges]
	}
	t := &Tokenizer{
		encoder:       map[string]int64{},
		ranks:         map[[2]string]int{},
		contextLength: contextLength,
		cache:         map[string][]int64{},
	}
	symbols := bytesToUnicode()
	vocab := make([]string, 0, 512+len(lines)+2)
	for _, b := range symbols.order {
		vocab = append(vocab, symbols.enc[b])
	}
	for _, b := range symbols.order {
		vocab = append(vocab, symbols.enc[b]+"</w>")
	}
	for i, line := range lines {
		parts := strings.Fields(line)
		if len(parts) == 0 && numMerges == 0 && i == len(lines)-1 {
			break // trailing newline
		}
		if len(parts) != 2 {
			return nil, fmt.Errorf("read merges: line %d: want two symbols, got %q", i+2, line)
		}
		t.ranks[[2]string{parts[0], parts[1]}] = i
		vocab = append(vocab, parts[0]+parts[1])
	}
	vocab = append(vocab, StartOfText, EndOfText)
	for i, v := range vocab {
		t.encoder[v] = int64(i)
	}
	t.byteEncoder = symbols.enc
	t.sot, t.eot = t.encoder[StartOfText], t.encoder[EndOfText]
	return t, nil
}

// VocabSize is the number of token ids.
func (t *Tokenizer) VocabSize() int { return len(t.encoder) }

// ContextLength is the length of the rows Tokenize returns.
func (t *Tokenizer) ContextLength() int { return t.contextLength }

// StartToken and EndToken are the ids of <|startoftext|> and <|endoftext|>.
func (t *Tokenizer) StartToken() int64 { return t.sot }

// EndToken is the id of <|endoftext|>.
func (t *Tokenizer) EndToken() int64 { return t.eot }

// Encode returns the BPE ids of text without start/end tokens, as CLIP's SimpleTokenizer.encode.
func (t *Tokenizer) Encode(text string) []int64 {
	text = cleanText(text)
	var ids []int64
	for _, piece := range clipPattern.FindAllString(text, -1) {
		var sb strings.Builder
		for i := 0; i < len(piece); i++ {
			sb.WriteString(t.byteEncoder[piece[i]])
		}
		ids = append(ids, t.bpe(sb.String())...)
	}
	return ids
}

// Tokenize returns one row of ContextLength ids per text: start token, BPE ids, end token, zero
// padding; over-long texts are truncated keeping the end token last. The result is [len(texts), L].
func (t *Tokenizer) Tokenize(texts []string) []int64 {
	L := t.contextLength
	out := make([]int64, len(texts)*L)
	for i, text := range texts {
		row := out[i*L : (i+1)*L]
		ids := append([]int64{t.sot}, t.Encode(text)...)
		if len(ids) > L-1 {
			ids = ids[:L-1]
		}
		ids = append(ids, t.eot)
		copy(row, ids)
	}
	return out
}

func (t *Tokenizer) bpe(token string) []int64 {
	t.mu.Lock()
	if ids, ok := t.cache[token]; ok {
		t.mu.Unlock()
		return ids
	}
	t.mu.Unlock()
	var word []string
	for _, r := range token {
		word = append(word, string(r))
	}
	word[len(word)-1] += "</w>"
	for len(word) > 1 {
		best, bestRank := -1, int(^uint(0)>>1)
		for i := 0; i+1 < len(word); i++ {
			if r, ok := t.ranks[[2]string{word[i], word[i+1]}]; ok && r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		first, second := word[best], word[best+1]
		merged := make([]string, 0, len(word))
		for i := 0; i < len(word); {
			if i+1 < len(word) && word[i] == first && word[i+1] == second {
				merged = append(merged, first+second)
				i += 2
			} else {
				merged = append(merged, word[i])
				i++
			}
		}
		word = merged
	}
	ids := make([]int64, 0, len(word))
	for _, w := range word {
		if id, ok := t.encoder[w]; ok {
			ids = append(ids, id)
		}
	}
	t.mu.Lock()
	if len(t.cache) < 1<<16 {
		t.cache[token] = ids
	}
	t.mu.Unlock()
	return ids
}

// cleanText is CLIP's basic_clean (ftfy is the identity on clean text), whitespace_clean and lower().
func cleanText(text string) string {
	text = html.UnescapeString(html.UnescapeString(text))
	text = strings.TrimFunc(text, pyIsSpace)
	text = strings.Join(strings.FieldsFunc(text, unicode.IsSpace), " ")
	text = strings.TrimFunc(text, pyIsSpace)
	return pyLower(text)
}

// pyIsSpace is Python's str.isspace for one rune (Unicode White_Space plus the separators 0x1c-0x1f).
func pyIsSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// pyLower is Python's str.lower: Go's simple case mapping plus the two special cases Python applies
// (U+0130 → "i̇", and a final capital sigma → "ς").
func pyLower(s string) string {
	if !strings.ContainsAny(s, "\u0130\u03a3") {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var sb strings.Builder
	for i, r := range rs {
		switch {
		case r == 0x130:
			sb.WriteString("i\u0307")
		case r == 0x3a3 && finalSigma(rs, i):
			sb.WriteRune(0x3c2)
		default:
			sb.WriteRune(unicode.ToLower(r))
		}
	}
	return sb.String()
}

func finalSigma(rs []rune, i int) bool {
	before := false
	for j := i - 1; j >= 0; j-- {
		if unicode.Is(unicode.Mn, rs[j]) || unicode.Is(unicode.Me, rs[j]) || unicode.Is(unicode.Cf, rs[j]) {
			continue
		}
		before = unicode.IsLetter(rs[j])
		break
	}
	if !before {
		return false
	}
	for j := i + 1; j < len(rs); j++ {
		if unicode.Is(unicode.Mn, rs[j]) || unicode.Is(unicode.Me, rs[j]) || unicode.Is(unicode.Cf, rs[j]) {
			continue
		}
		return !unicode.IsLetter(rs[j])
	}
	return true
}

type byteSymbols struct {
	enc   [256]string
	order []byte // the vocabulary order of the byte symbols
}

// bytesToUnicode is CLIP's bytes_to_unicode: printable bytes map to themselves, the others to
// U+0100 onwards, in the order the vocabulary lists them.
func bytesToUnicode() byteSymbols {
	var s byteSymbols
	used := [256]bool{}
	for _, rg := range [][2]int{{'!', '~'}, {0xa1, 0xac}, {0xae, 0xff}} {
		for b := rg[0]; b <= rg[1]; b++ {
			s.enc[b] = string(rune(b))
			used[b] = true
			s.order = append(s.order, byte(b))
		}
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !used[b] {
			s.enc[b] = string(rune(256 + n))
			n++
			s.order = append(s.order, byte(b))
		}
	}
	return s
}
