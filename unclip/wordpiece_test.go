package unclip

import (
	"reflect"
	"strings"
	"testing"
)

// The cases of google-research/bert's tokenization_test.py.
func TestWordPiece(t *testing.T) {
	vocab := strings.Join([]string{"[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", ",", "[PAD]"}, "\n")
	wp, err := NewWordPiece(strings.NewReader(vocab), 8, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := wp.Encode("UNwant\u00E9d,running"), []int64{7, 4, 5, 10, 8, 9}; !equalInts(got, want) {
		t.Errorf("Encode = %v, want %v (un ##want ##ed , runn ##ing)", got, want)
	}
	if got, want := wp.Encode("unwantedX running"), []int64{0, 8, 9}; !equalInts(got, want) {
		t.Errorf("Encode(unwantedX running) = %v, want %v ([UNK] runn ##ing)", got, want)
	}
	if got := wp.Encode(""); len(got) != 0 {
		t.Errorf("Encode(\"\") = %v", got)
	}
	basic := []struct {
		lower bool
		text  string
		want  []string
	}{
		{true, " \tHeLLo!how  \n Are yoU?  ", []string{"hello", "!", "how", "are", "you", "?"}},
		{true, "H\u00E9llo", []string{"hello"}},
		{false, " \tHeLLo!how  \n Are yoU?  ", []string{"HeLLo", "!", "how", "Are", "yoU", "?"}},
		{true, "ah\u535A\u63A8zz", []string{"ah", "\u535A", "\u63A8", "zz"}},
		{true, "a\u0000b\u0007c d", []string{"abc", "d"}},
	}
	for _, tc := range basic {
		w := &WordPiece{lowercase: tc.lower}
		if got := w.basic(tc.text); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("basic(%q, lower %v) = %q, want %q", tc.text, tc.lower, got, tc.want)
		}
	}
	rows := wp.Tokenize([]string{"unwanted running unwanted", "want"})
	want := []int64{1, 7, 4, 5, 8, 9, 7, 2, 1, 3, 2, 11, 11, 11, 11, 11}
	if !equalInts(rows, want) {
		t.Errorf("Tokenize = %v, want %v ([CLS] … [SEP] truncated, [PAD] padding)", rows, want)
	}
	if _, err := NewWordPiece(strings.NewReader("[CLS]\n[SEP]\n"), 8, true); err == nil || !strings.Contains(err.Error(), "[PAD]") {
		t.Errorf("a vocabulary without [PAD] must be an error naming it: %v", err)
	}
	var _ TextTokenizer = wp
	var _ TextTokenizer = (*Tokenizer)(nil)
}
