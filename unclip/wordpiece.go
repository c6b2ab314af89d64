package unclip

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode"

	unorm "golang.org/x/text/unicode/norm"
)

// TextTokenizer turns captions into the rows of token ids a bundle's text encoder takes.
// [Tokenizer] (CLIP byte-level BPE) and [WordPiece] (BERT-style vocabularies, as PubMedBERT-based
// medical CLIP models use) implement it.
type TextTokenizer interface {
	// Tokenize returns [len(texts), ContextLength] ids, padded with the padding id.
	Tokenize(texts []string) []int64
	ContextLength() int
	VocabSize() int
}

// WordPiece is BERT's tokenizer: basic tokenisation (control characters removed, CJK characters
// and punctuation split off, optional lower-casing with accents stripped) followed by greedy
// longest-match-first word pieces with the "##" continuation prefix. Rows are
// [CLS] ids [SEP] truncated to the context (keeping [SEP] last) and padded with [PAD].
type WordPiece struct {
	vocab         map[string]int64
	lowercase     bool
	contextLength int
	cls, sep, pad int64
	unk           int64
}

// NewWordPiece reads a vocabulary in BERT's vocab.txt format (one token per line, the line number
// is the id).
func NewWordPiece(vocab io.Reader, contextLength int, lowercase bool) (*WordPiece, error) {
	if contextLength < 2 {
		return nil, fmt.Errorf("context length %d must be at least 2", contextLength)
	}
	w := &WordPiece{vocab: map[string]int64{}, lowercase: lowercase, contextLength: contextLength}
	sc := bufio.NewScanner(vocab)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	var id int64
	for sc.Scan() {
		tok := strings.TrimRight(sc.Text(), "\r")
		if _, dup := w.vocab[tok]; !dup {
			w.vocab[tok] = id
		}
		id++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read vocabulary: %w", err)
	}
	for _, sp := range []struct {
		name string
		dst  *int64
	}{{"[CLS]", &w.cls}, {"[SEP]", &w.sep}, {"[PAD]", &w.pad}, {"[UNK]", &w.unk}} {
		v, ok := w.vocab[sp.name]
		if !ok {
			return nil, fmt.Errorf("read vocabulary: no %s token", sp.name)
		}
		*sp.dst = v
	}
	return w, nil
}

// VocabSize implements TextTokenizer.
func (w *WordPiece) VocabSize() int { return len(w.vocab) }

// ContextLength implements TextTokenizer.
func (w *WordPiece) ContextLength() int { return w.contextLength }

// Encode returns the word-piece ids of text without [CLS]/[SEP].
func (w *WordPiece) Encode(text string) []int64 {
	var ids []int64
	for _, word := range w.basic(text) {
		ids = append(ids, w.pieces(word)...)
	}
	return ids
}

// Tokenize implements TextTokenizer.
func (w *WordPiece) Tokenize(texts []string) []int64 {
	L := w.contextLength
	out := make([]int64, len(texts)*L)
	for i, text := range texts {
		row := out[i*L : (i+1)*L]
		for j := range row {
			row[j] = w.pad
		}
		ids := append([]int64{w.cls}, w.Encode(text)...)
		if len(ids) > L-1 {
			ids = ids[:L-1]
		}
		copy(row, append(ids, w.sep))
	}
	return out
}

// basic is BERT's BasicTokenizer.
func (w *WordPiece) basic(text string) []string {
	var sb strings.Builder
	for _, r := range text {
		switch {
		case r == 0 || r == 0xfffd || isControl(r):
			continue
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r):
			sb.WriteByte(' ')
		case isCJK(r):
			sb.WriteByte(' ')
			sb.WriteRune(r)
			sb.WriteByte(' ')
		default:
			sb.WriteRune(r)
		}
	}
	var words []string
	for _, tok := range strings.Fields(sb.String()) {
		if w.lowercase {
			tok = stripAccents(pyLower(tok))
		}
		// split punctuation into single-character words
		start := 0
		for i, r := range tok {
			if isPunct(r) {
				if start < i {
					words = append(words, tok[start:i])
				}
				words = append(words, string(r))
				start = i + len(string(r))
			}
		}
		if start < len(tok) {
			words = append(words, tok[start:])
		}
	}
	return words
}

// pieces is BERT's WordpieceTokenizer for one word.
func (w *WordPiece) pieces(word string) []int64 {
	rs := []rune(word)
	if len(rs) > 100 {
		return []int64{w.unk}
	}
	var ids []int64
	for start := 0; start < len(rs); {
		end := len(rs)
		found := int64(-1)
		for ; end > start; end-- {
			sub := string(rs[start:end])
			if start > 0 {
				sub = "##" + sub
			}
			if id, ok := w.vocab[sub]; ok {
				found = id
				break
			}
		}
		if found < 0 {
			return []int64{w.unk}
		}
		ids = append(ids, found)
		start = end
	}
	return ids
}

func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.Is(unicode.C, r)
}

// isPunct is BERT's _is_punctuation: ASCII non-alphanumeric symbols or Unicode P*.
func isPunct(r rune) bool {
	if (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126) {
		return true
	}
	return unicode.IsPunct(r)
}

func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) || (r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) || (r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

func stripAccents(s string) string {
	var sb strings.Builder
	for _, r := range unorm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			sb.WriteRune(r)
		}
	}
	return sb.String()
}
