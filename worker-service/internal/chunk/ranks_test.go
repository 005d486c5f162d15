package chunk

import "testing"

// The rank table answers exactly the vocabulary's tokens: not their prefixes, extensions or
// other strings of the same length.
func TestRankTable(t *testing.T) {
	vocab := map[string]int{"a": 0, "ab": 7, "abc": 1 << 20, " the": 42, "\x00\xff": 3}
	table, err := newRankTable(vocab)
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range vocab {
		if got, ok := table.lookup(tok); !ok || got != want {
			t.Errorf("lookup(%q) = %d, %v; want %d", tok, got, ok, want)
		}
	}
	for _, s := range []string{"", "b", "ba", "abcd", " th", "the", "\x00", "\x00\xfe"} {
		if r, ok := table.lookup(s); ok {
			t.Errorf("lookup(%q) = %d, want no token", s, r)
		}
	}
	if _, err := newRankTable(map[string]int{"x": 1 << 24}); err == nil {
		t.Error("a rank over 24 bits was accepted")
	}
}
