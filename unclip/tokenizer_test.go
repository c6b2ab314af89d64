package unclip

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const clipBPEDir = "../../shared/data/clip-bpe"

func openAITokenizer(t testing.TB, contextLength int) *Tokenizer {
	t.Helper()
	f, err := os.Open(filepath.Join(clipBPEDir, "bpe_simple_vocab_16e6.txt.gz"))
	if err != nil {
		t.Skipf("CLIP vocabulary not available (%v): needs ../shared/data/clip-bpe from the project root", err)
	}
	defer f.Close()
	tok, err := NewTokenizer(f, OpenAINumMerges, contextLength)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTokenizerReference reproduces OpenAI's SimpleTokenizer on every line of reference.jsonl.
func TestTokenizerReference(t *testing.T) {
	tok := openAITokenizer(t, 77)
	if got, want := tok.VocabSize(), 49408; got != want {
		t.Fatalf("vocab size %d, want %d", got, want)
	}
	if tok.StartToken() != 49406 || tok.EndToken() != 49407 {
		t.Fatalf("special tokens %d %d", tok.StartToken(), tok.EndToken())
	}
	f, err := os.Open(filepath.Join(clipBPEDir, "reference.jsonl"))
	if err != nil {
		t.Skipf("reference.jsonl not available: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n, bad := 0, 0
	for sc.Scan() {
		var row struct {
			Text      string  `json:"text"`
			BPE       []int64 `json:"bpe"`
			Context77 []int64 `json:"context77"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		n++
		got := tok.Encode(row.Text)
		if !equalInts(got, row.BPE) {
			bad++
			if bad <= 5 {
				t.Errorf("line %d %q:\n got  %v\n want %v", n, row.Text, got, row.BPE)
			}
			continue
		}
		if ctx := tok.Tokenize([]string{row.Text}); !equalInts(ctx, row.Context77) {
			bad++
			t.Errorf("line %d %q: context77 differs:\n got  %v\n want %v", n, row.Text, ctx, row.Context77)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 300 {
		t.Fatalf("read only %d lines", n)
	}
	if bad > 0 {
		t.Fatalf("%d of %d lines differ", bad, n)
	}
}

func TestTokenizerSmallMerges(t *testing.T) {
	merges := "#version: test\nl o\nlo w\nlow</w> er\ne r</w>\n"
	tok, err := NewTokenizer(strings.NewReader(merges), 0, 6)
	if err != nil {
		t.Fatal(err)
	}
	// vocabulary: 256 byte symbols, the same with </w>, 4 merges (ids 512..515), start, end.
	if tok.VocabSize() != 512+4+2 || tok.StartToken() != 516 || tok.EndToken() != 517 {
		t.Fatalf("vocab %d start %d end %d", tok.VocabSize(), tok.StartToken(), tok.EndToken())
	}
	sym := func(c byte) int64 { return int64(c - '!') }     // printable ASCII symbols come first
	end := func(c byte) int64 { return int64(c-'!') + 256 } // the same with </w>
	tests := []struct {
		text string
		want []int64
	}{
		{"lower", []int64{513, 515}},                         // l o → lo; lo w → low; e r</w> → er</w>
		{"LOWER", []int64{513, 515}},                         // lower-cased first
		{"lo", []int64{sym('l'), end('o')}},                  // "l o" does not match "l o</w>"
		{"a &amp; b", []int64{end('a'), end('&'), end('b')}}, // HTML entities unescaped
		{"  a\t\n b ", []int64{end('a'), end('b')}},          // whitespace collapsed
		{"it's", []int64{sym('i'), end('t'), sym('\''), end('s')}},
		{"x1", []int64{end('x'), end('1')}},
	}
	for _, tc := range tests {
		if got := tok.Encode(tc.text); !equalInts(got, tc.want) {
			t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
	row := tok.Tokenize([]string{"lower lower lower lower", ""})
	want := []int64{516, 513, 515, 513, 515, 517, 516, 517, 0, 0, 0, 0}
	if !equalInts(row, want) {
		t.Fatalf("Tokenize = %v, want %v (truncation keeps the end token last, padding 0)", row, want)
	}
	// Invalid UTF-8 becomes U+FFFD (as Python's decode with errors="replace"), never a panic.
	if got, want := tok.Encode("\xff\xfe lo"), tok.Encode("\ufffd\ufffd lo"); !equalInts(got, want) || len(want) != 8 {
		t.Errorf("Encode(invalid UTF-8) = %v, want %v", got, want)
	}
	if _, err := NewTokenizer(strings.NewReader("#h\nab\n"), 0, 8); err == nil {
		t.Fatal("a malformed merge line must be an error")
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
