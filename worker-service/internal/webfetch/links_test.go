package webfetch

import (
	"errors"
	"slices"
	"testing"
)

func TestExtractLinks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		page string
		html string
		want []string
	}{
		{
			name: "relative, absolute and duplicates",
			page: "https://example.com/docs/index.html",
			html: `<html><body>
				<a href="intro.html">Intro</a>
				<a href="/about#team">About</a>
				<a href="/about">About again</a>
				<a href="https://Example.com:443/docs/intro.html#top">Intro again</a>
				<a href="//other.example/x">Other site</a>
				<A HREF="../Up/">Up</A>
				<map><area href="/map-target" alt=""></map>
				<a>no href</a>
			</body></html>`,
			want: []string{
				"https://example.com/docs/intro.html",
				"https://example.com/about",
				"https://other.example/x",
				"https://example.com/Up/",
				"https://example.com/map-target",
			},
		},
		{
			name: "skips non-http and nofollow",
			page: "http://example.com/",
			html: `<a href="mailto:me@example.com">mail</a>
				<a href="javascript:void(0)">js</a>
				<a href="tel:123">tel</a>
				<a href="#top">self</a>
				<a href="/ads" rel="sponsored nofollow">ad</a>
				<a href="/kept" rel="noopener">kept</a>
				<link rel="stylesheet" href="/style.css">
				<img src="/img.png">`,
			want: []string{"http://example.com/", "http://example.com/kept"},
		},
		{
			name: "base href",
			page: "https://example.com/a/b.html",
			html: `<head><base href="https://example.com/root/"><base href="/ignored/"></head>
				<a href="x.html">x</a>`,
			want: []string{"https://example.com/root/x.html"},
		},
		{
			name: "meta robots nofollow",
			page: "https://example.com/",
			html: `<head><meta name="robots" content="noindex, NoFollow"></head><a href="/x">x</a>`,
			want: nil,
		},
		{
			name: "meta robots index follow",
			page: "https://example.com/",
			html: `<head><meta name="ROBOTS" content="index,follow"></head><a href="/x">x</a>`,
			want: []string{"https://example.com/x"},
		},
		{
			name: "malformed html keeps what it found",
			page: "https://example.com/",
			html: `<a href="/one">1</a><div><<a href='/two'>2<p><a href=/three>3`,
			want: []string{"https://example.com/one", "https://example.com/two", "https://example.com/three"},
		},
		{
			name: "non-UTF-8 bytes",
			page: "https://example.com/",
			html: "<p>caf\xe9</p><a href=\"/menu\">men\xfa</a>",
			want: []string{"https://example.com/menu"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ExtractLinks(tt.page, []byte(tt.html))
			if err != nil {
				t.Fatalf("ExtractLinks: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ExtractLinks =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	if _, err := ExtractLinks("not a url", []byte("<a href=/x>")); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("relative page URL: error = %v, want ErrInvalidURL", err)
	}
}
