package quality

import (
	"math"
	"testing"
)

func TestTokenF1(t *testing.T) {
	tests := []struct {
		got, want string
		f1        float64
	}{
		{"The cat sat.", "the CAT sat", 1},
		{"cat", "dog", 0},
		{"", "", 1},
		{"", "words", 0},
		{"a b c d", "a b", 2 * 0.5 * 1 / 1.5}, // precision 1/2, recall 1
		{"ｆｕｌｌ width 東京", "full width 東 京", 1},
	}
	for _, tt := range tests {
		if got := TokenF1(tt.got, tt.want); math.Abs(got-tt.f1) > 1e-9 {
			t.Errorf("TokenF1(%q, %q) = %v, want %v", tt.got, tt.want, got, tt.f1)
		}
	}
}
