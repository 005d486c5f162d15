package jobqueue_test

import (
	"testing"

	"github.com/quirehq/quire/shared/jobqueue"
)

func TestCheckURL(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"nats://127.0.0.1:4222", true},
		{"nats://n0:4222,nats://n1:4222, nats://n2:4222", true},
		{"tls://nats.example.com:4222", true},
		{"localhost:4222", false},
		{"nats://a:4222,b:4222", false},
		{"", false},
	} {
		if err := jobqueue.CheckURL(tt.url); (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
		}
	}
}
