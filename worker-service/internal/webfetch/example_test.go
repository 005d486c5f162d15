package webfetch_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/quirehq/quire/worker-service/internal/webfetch"
)

func ExampleFetcher_Fetch() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gone" {
			http.Error(w, "gone", http.StatusGone)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, "<title>Hello</title><p>Hello, Quire.</p>")
	}))
	defer srv.Close()

	// AllowPrivate only because the test server listens on 127.0.0.1.
	f := webfetch.New(webfetch.Config{AllowPrivate: true})
	page, err := f.Fetch(context.Background(), srv.URL+"/hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(page.MediaType, page.ContentType, string(page.Body))

	_, err = f.Fetch(context.Background(), srv.URL+"/gone")
	var httpErr *webfetch.HTTPError
	fmt.Println(errors.As(err, &httpErr), httpErr.StatusCode, webfetch.Permanent(err))

	// The production setting refuses private addresses before connecting.
	_, err = webfetch.New(webfetch.Config{}).Fetch(context.Background(), "http://169.254.169.254/latest/meta-data/")
	fmt.Println(errors.Is(err, webfetch.ErrBlockedAddress), webfetch.Permanent(err))
	// Output:
	// text/html text/html; charset=utf-8 <title>Hello</title><p>Hello, Quire.</p>
	// true 410 true
	// true true
}

func ExampleCrawler_Discover() {
	mux := http.NewServeMux()
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, "User-agent: *\nDisallow: /admin/\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = fmt.Fprint(w, `<a href="/docs/">Docs</a> <a href="/admin/">Admin</a> <a href="mailto:x@example.com">Mail</a>`)
	})
	mux.HandleFunc("/docs/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = fmt.Fprint(w, `<a href="intro#top">Intro</a> <a href="../">Home</a>`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	f := webfetch.New(webfetch.Config{AllowPrivate: true})
	c := webfetch.NewCrawler(f, webfetch.CrawlConfig{Limiter: webfetch.NewHostLimiter(1, 0)})
	stats, err := c.Discover(context.Background(), srv.URL, 10, 3, func(_ context.Context, v webfetch.Visit) error {
		fmt.Println(v.Depth, v.URL[len(srv.URL):])
		return nil
	})
	fmt.Printf("visited %d, disallowed %d, err %v\n", stats.Visited, stats.Disallowed, err)
	// Output:
	// 0 /
	// 1 /docs/
	// 2 /docs/intro
	// visited 3, disallowed 1, err <nil>
}
