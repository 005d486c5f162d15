// Package quality scores extracted text against a reference, as the project's extraction
// evaluation does: token-F1 over normalised word tokens. The corpus tool and the extraction
// tests share it.
package quality

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Tokens splits text into the scoring tokens of the project's extraction evaluation: NFKC,
// lower case, runs of letters, digits and marks; each Han or kana character is a token.
func Tokens(s string) map[string]int {
	s = strings.ToLower(norm.NFKC.String(s))
	out := map[string]int{}
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out[cur.String()]++
			cur.Reset()
		}
	}
	for _, r := range s {
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana):
			flush()
			out[string(r)]++
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			cur.WriteRune(r)
		default:
			flush()
		}
	}
	flush()
	return out
}

// TokenF1 is the harmonic mean of the token precision and recall of got against want, the
// tokens counted as multisets (see [Tokens]): 1 when they hold the same words as often, 0
// when they share none. Two texts without tokens score 1.
func TokenF1(got, want string) float64 {
	g, w := Tokens(got), Tokens(want)
	var common, ng, nw int
	for t, n := range g {
		ng += n
		common += min(n, w[t])
	}
	for _, n := range w {
		nw += n
	}
	if ng == 0 || nw == 0 {
		if ng == nw {
			return 1
		}
		return 0
	}
	p, r := float64(common)/float64(ng), float64(common)/float64(nw)
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}
