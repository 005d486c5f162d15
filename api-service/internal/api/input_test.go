package api

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

func TestUTF8Reader(t *testing.T) {
	tests := []struct {
		in    string
		valid bool
	}{
		{"", true},
		{`{"url":"https://example.com/é€𝄞"}`, true},
		{strings.Repeat("日本語", 1000), true},
		{"abc\xff", false},
		{"\xc3\x28", false},
		{"ab\xe2\x82", false},   // cut off at the end
		{"\xed\xa0\x80", false}, // a surrogate
		{"\xf0\x9d\x84", false},
		{"ok\xf4\x90\x80\x80", false}, // past U+10FFFF
	}
	for _, tt := range tests {
		// One byte per read splits every sequence; a whole read splits none.
		for name, r := range map[string]io.Reader{
			"bytewise": newUTF8Reader(iotest.OneByteReader(strings.NewReader(tt.in))),
			"halves":   newUTF8Reader(iotest.HalfReader(strings.NewReader(tt.in))),
			"whole":    newUTF8Reader(strings.NewReader(tt.in)),
		} {
			got, err := io.ReadAll(r)
			if tt.valid && (err != nil || string(got) != tt.in) {
				t.Errorf("%s %q: %q, %v; want it unchanged", name, tt.in, got, err)
			}
			if !tt.valid && !errors.Is(err, errInvalidUTF8) {
				t.Errorf("%s %q: error %v, want errInvalidUTF8", name, tt.in, err)
			}
		}
		if utf8.ValidString(tt.in) != tt.valid {
			t.Fatalf("test case %q is mislabelled", tt.in)
		}
	}
}

func TestValidTaskID(t *testing.T) {
	for id, want := range map[string]bool{
		"019ad2b3-6f1e-7c3a-9b1e-2f6c4e8a1d20": true, "orphan-1": true, "acme-7-pumps.txt": true,
		"": false, "a b": false, "x\x00": false, "\xff": false, "' OR '1'='1": false, "a/b": false, strings.Repeat("a", 256): false,
	} {
		if got := validTaskID(id); got != want {
			t.Errorf("validTaskID(%q) = %v, want %v", id, got, want)
		}
	}
}
