package embed_test

import (
	"context"
	"fmt"

	"github.com/quirehq/quire/shared/embed"
)

// New builds the embedder the environment selects; with no provider it is the offline,
// deterministic local one.
func ExampleNew() {
	ctx := context.Background()
	e, err := embed.New(ctx, embed.Config{})
	if err != nil {
		panic(err)
	}
	vecs, err := e.Embed(ctx, []string{"reset your password", "password reset link", "canteen menu"})
	if err != nil {
		panic(err)
	}
	fmt.Println(e.Model(), e.Dimensions(), len(vecs))
	fmt.Println(embed.Cosine(vecs[0], vecs[1]) > embed.Cosine(vecs[0], vecs[2]))
	// Output:
	// quire-local-hash-v1 384 3
	// true
}
