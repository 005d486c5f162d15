package worker

import (
	"testing"
	"time"
)

func TestExponentialBackoff(t *testing.T) {
	low := ExponentialBackoff(60*time.Second, 600*time.Second, func(int64) int64 { return 0 })
	high := ExponentialBackoff(60*time.Second, 600*time.Second, func(n int64) int64 { return n - 1 })
	for _, tt := range []struct {
		attempt   int
		min, maxd time.Duration
	}{
		{1, 30 * time.Second, 60 * time.Second},
		{2, 60 * time.Second, 120 * time.Second},
		{3, 120 * time.Second, 240 * time.Second},
		{4, 240 * time.Second, 480 * time.Second},
		{5, 300 * time.Second, 600 * time.Second},
		{40, 300 * time.Second, 600 * time.Second},
		{100, 300 * time.Second, 600 * time.Second},
	} {
		if got := low(tt.attempt); got != tt.min {
			t.Errorf("attempt %d lowest delay = %v, want %v", tt.attempt, got, tt.min)
		}
		if got := high(tt.attempt); got != tt.maxd {
			t.Errorf("attempt %d highest delay = %v, want %v", tt.attempt, got, tt.maxd)
		}
	}
	random := ExponentialBackoff(time.Second, time.Minute, nil)
	for range 1000 {
		if d := random(3); d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("attempt 3 delay %v outside [2s,4s]", d)
		}
	}
}
