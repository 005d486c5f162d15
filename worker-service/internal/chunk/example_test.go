package chunk_test

import (
	"fmt"

	"github.com/quirehq/quire/worker-service/internal/chunk"
	"github.com/quirehq/quire/worker-service/internal/extract"
)

func ExampleSplit() {
	counter, err := chunk.NewCounter("text-embedding-3-small")
	if err != nil {
		panic(err)
	}
	doc := &extract.Document{Sections: []extract.Section{
		{Page: 1, Text: "The first page has two sentences. The second one is here."},
		{Page: 2, Text: "Page two starts a new paragraph."},
	}}
	for _, c := range chunk.Split(doc, chunk.Options{Size: 16, Overlap: 4, Counter: counter}) {
		fmt.Printf("%d p%d %d tokens: %q\n", c.Ordinal, c.Page, c.TokenCount, c.Content)
	}
	// Output:
	// 0 p1 13 tokens: "The first page has two sentences. The second one is here."
	// 1 p2 11 tokens: "one is here.\n\nPage two starts a new paragraph."
}
