package webfetch

import (
	"errors"
	"net/url"
	"testing"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{"http://example.com", "http://example.com/", nil},
		{"HTTP://Example.COM/Path", "http://example.com/Path", nil},
		{"http://example.com:80/a", "http://example.com/a", nil},
		{"https://example.com:443/a", "https://example.com/a", nil},
		{"http://example.com:443/a", "http://example.com:443/a", nil},
		{"https://example.com:8443/a", "https://example.com:8443/a", nil},
		{"http://example.com./a", "http://example.com/a", nil},
		{"http://example.com/a#frag", "http://example.com/a", nil},
		{"http://example.com/a?", "http://example.com/a", nil},
		{"http://example.com/a/./b/../c", "http://example.com/a/c", nil},
		{"http://example.com/a/b/", "http://example.com/a/b/", nil},
		{"http://example.com/../a", "http://example.com/a", nil},
		{"http://example.com/a?b=2&a=1", "http://example.com/a?b=2&a=1", nil}, // query order kept
		{"http://example.com/a?q=x%20y#f", "http://example.com/a?q=x%20y", nil},
		{"http://example.com/a%2Fb", "http://example.com/a%2Fb", nil},
		{"http://example.com/caf%C3%A9", "http://example.com/caf%C3%A9", nil},
		{"http://[2001:DB8::1]:80/", "http://[2001:db8::1]/", nil},
		{"http://[2001:db8::1]:8080/", "http://[2001:db8::1]:8080/", nil},
		{"  https://example.com/x  ", "https://example.com/x", nil},
		{"/relative", "", ErrInvalidURL},
		{"mailto:a@example.com", "", ErrInvalidURL},
		{"ftp://example.com/", "", ErrInvalidURL},
		{"http://user:pw@example.com/", "", ErrInvalidURL},
		{"http:///nohost", "", ErrInvalidURL},
		{"http://%zz/", "", ErrInvalidURL},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Normalize(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if err == nil {
			// Idempotent.
			if again, _ := Normalize(got); again != got {
				t.Errorf("Normalize(Normalize(%q)) = %q, want %q", tt.in, again, got)
			}
		}
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	base, _ := url.Parse("https://example.com/docs/guide/intro.html?x=1#top")
	tests := []struct {
		ref     string
		want    string
		wantErr error
	}{
		{"page.html", "https://example.com/docs/guide/page.html", nil},
		{"./page.html#s2", "https://example.com/docs/guide/page.html", nil},
		{"../api/", "https://example.com/docs/api/", nil},
		{"/about", "https://example.com/about", nil},
		{"//Example.com:443/x", "https://example.com/x", nil},
		{"//cdn.example.net/lib.js", "https://cdn.example.net/lib.js", nil},
		{"?page=2", "https://example.com/docs/guide/intro.html?page=2", nil},
		{"#section", "https://example.com/docs/guide/intro.html?x=1", nil},
		{"", "https://example.com/docs/guide/intro.html?x=1", nil},
		{"  /spaced  ", "https://example.com/spaced", nil},
		{"HTTP://OTHER.example/", "http://other.example/", nil},
		{"mailto:team@example.com", "", ErrInvalidURL},
		{"javascript:void(0)", "", ErrInvalidURL},
		{"tel:+441234", "", ErrInvalidURL},
		{"data:text/html,hi", "", ErrInvalidURL},
		{"ftp://example.com/f", "", ErrInvalidURL},
	}
	for _, tt := range tests {
		got, err := Resolve(base, tt.ref)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Resolve(%q) error = %v, want %v", tt.ref, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("Resolve(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

func TestSameSite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://example.com/", "https://example.com/x", true},
		{"https://example.com/", "http://example.com/x", true},
		{"https://example.com/", "https://www.example.com/x", true},
		{"https://WWW.Example.com/", "https://example.com./x", true},
		{"https://example.com/", "https://example.com:443/x", true},
		{"http://example.com/", "https://example.com:443/x", true},
		{"https://example.com/", "https://blog.example.com/", false},
		{"https://example.com/", "https://example.org/", false},
		{"https://example.com/", "https://example.com:8443/", false},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8081/", false},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/a", true},
		{"https://example.com/", "https://notexample.com/", false},
	}
	for _, tt := range tests {
		a, _ := url.Parse(tt.a)
		b, _ := url.Parse(tt.b)
		if got := SameSite(a, b); got != tt.want {
			t.Errorf("SameSite(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
