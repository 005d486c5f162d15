package extract_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/worker-service/internal/extract"
)

func ExampleExtractor_Extract() {
	ctx := context.Background()
	ex, err := extract.New(ctx, extract.Options{})
	if err != nil {
		panic(err)
	}
	defer ex.Close()

	md := "# Guide\n\nWelcome.\n\n## Install\n\nRun `make`.\n"
	typ, _ := doctype.Sniff([]byte(md), "README.md")
	doc, err := ex.Extract(ctx, strings.NewReader(md), int64(len(md)), typ, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(doc.Type, doc.Title)
	for _, s := range doc.Sections {
		fmt.Printf("%q\n", s.Heading)
	}
	// Output:
	// markdown Guide
	// "Guide"
	// "Guide > Install"
}

func ExampleExtractor_ExtractHTML() {
	ctx := context.Background()
	ex, err := extract.New(ctx, extract.Options{})
	if err != nil {
		panic(err)
	}
	defer ex.Close()

	page := []byte("<html><head><title>Caf\xe9</title></head><body><nav><a href='/'>Home</a></nav>" +
		"<h1>Menu</h1><p>Caf\xe9 cr\xe8me, two euros.</p></body></html>")
	doc, err := ex.ExtractHTML(ctx, page, "text/html; charset=ISO-8859-1", "https://example.com/menu")
	if err != nil {
		panic(err)
	}
	fmt.Println(doc.Title)
	for _, s := range doc.Sections {
		fmt.Printf("%s: %q\n", s.Heading, s.Text)
	}
	// Output:
	// Café
	// Menu: "Menu\n\nCafé crème, two euros."
}
