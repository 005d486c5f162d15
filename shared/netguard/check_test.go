package netguard_test

import (
	"errors"
	"testing"

	"github.com/quirehq/quire/shared/netguard"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url          string
		allowPrivate bool
		wantErr      error
	}{
		{"http://127.0.0.1:8080/hook", false, netguard.ErrBlocked},
		{"http://127.0.0.1:8080/hook", true, nil},
		{"http://[::1]/hook", false, netguard.ErrBlocked},
		{"http://169.254.169.254/latest/meta-data", false, netguard.ErrBlocked},
		{"http://10.1.2.3/hook", false, netguard.ErrBlocked},
		{"http://2130706433/hook", false, netguard.ErrBlocked},
		{"http://localhost:9000/hook", false, netguard.ErrBlocked},
		{"https://93.184.215.14/hook", false, nil},
		{"https://[2606:4700::6810:84e5]/hook", false, nil},
	}
	for _, tt := range tests {
		err := netguard.CheckURL(t.Context(), tt.url, tt.allowPrivate)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("CheckURL(%q, allowPrivate=%v) = %v, want %v", tt.url, tt.allowPrivate, err, tt.wantErr)
		}
	}
}
