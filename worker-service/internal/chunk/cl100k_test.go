package chunk

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pkoukk/tiktoken-go"
)

// TestCL100KMatchesReference compares the hand-written cl100k_base counter with the
// regular-expression reference (tiktoken-go) on tricky and random text.
func TestCL100KMatchesReference(t *testing.T) {
	c := counter(t).(*BPECounter)
	if c.fast == nil || c.enc != nil {
		t.Fatal("cl100k counter has no fast path, or keeps tiktoken's encoder")
	}
	ref := reference(t)
	check := func(s string) {
		t.Helper()
		if got, want := c.fast.Count(s), len(ref.EncodeOrdinary(s)); got != want {
			t.Fatalf("Count(%q) = %d, reference %d", s, got, want)
		}
	}
	for _, s := range []string{
		"", " ", "  ", "\n", " \n ", "a  b", "a \n\n b", "hello world", "I'm you're we've they'll he'd IT'S 'sa",
		"x = f(1234567) + 3.14159;\n\treturn;", "  \t\n\r\n  x", "trailing spaces   ", "tab\tsep\tvalues",
		"unicode: naïve café — “quotes” … ½ ² Ⅻ", "日本語のテキストと中文文本", "Привет, мир!", "مرحبا بالعالم",
		"emoji 😀👍🏽 mixed", "non\u00a0breaking\u2003spaces", "a\u0301e\u0300 combining", "URL https://example.com/a?b=c&d=e#f",
		"(parenthesised) [bracketed] {braced}", "...!!!???", " ... ", "\u2028line\u2029para", "x\x85y", "a\vb\fc",
		"' ' '' 's 'S 'LL 'Re", "1,000,000.00 and 12345678901234", "—word", "\nword", "\r\nword\r\n",
	} {
		check(s)
	}
	alphabet := []rune("aZé日本ж1234567890  \t\n\r'.,;:!?-()[]\"/\\_😀\u00a0\u0301½ⅫsStTlL")
	r := rand.New(rand.NewPCG(7, 11))
	for range 20000 {
		var b strings.Builder
		for range 1 + r.IntN(40) {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		check(b.String())
	}
}

// reference is tiktoken's cl100k_base encoder.
func reference(t testing.TB) *tiktoken.Tiktoken {
	t.Helper()
	enc, err := newTiktoken(tiktoken.MODEL_CL100K_BASE)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func BenchmarkCount(b *testing.B) {
	c := counter(b).(*BPECounter)
	ref := reference(b)
	text := corpusText(rand.New(rand.NewPCG(1, 2)), 200)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			c.fast.Count(text)
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			ref.EncodeOrdinary(text)
		}
	})
}
