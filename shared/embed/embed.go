// Package embed turns chunk text into embedding vectors. The worker embeds chunks in batches
// through an [Embedder]; the API embeds search queries with the same one.
package embed

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// Embedder embeds texts. Implementations are safe for concurrent use.
type Embedder interface {
	// Embed returns one vector per text, in order, each of length Dimensions().
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Model names the model; it is stored beside every embedding.
	Model() string
	// Dimensions is the length of every vector.
	Dimensions() int
}

// ErrConfig reports an unusable embeddings configuration.
var ErrConfig = errors.New("embed: invalid configuration")

// LocalModel is the model name of the [Local] embedder.
const LocalModel = "quire-local-hash-v1"

// Local is an offline, deterministic embedder: feature hashing of lower-cased word unigrams
// and bigrams, weighted by log term frequency, signed, and L2-normalised. Texts sharing words
// get a high cosine similarity, so it supports lexical-semantic search with no network and no
// model files; it does not know synonyms. Use the OpenAI-compatible provider for semantic
// quality.
type Local struct {
	dims int
}

// NewLocal returns a Local embedder with dims dimensions (default 384).
func NewLocal(dims int) (*Local, error) {
	if dims == 0 {
		dims = 384
	}
	if dims < 8 || dims > 8192 {
		return nil, fmt.Errorf("%w: EMBEDDINGS_DIMENSIONS %d out of range 8..8192 for the local provider", ErrConfig, dims)
	}
	return &Local{dims: dims}, nil
}

// Model implements [Embedder].
func (l *Local) Model() string { return LocalModel }

// Dimensions implements [Embedder].
func (l *Local) Dimensions() int { return l.dims }

// Embed implements [Embedder]. It never fails except on a cancelled ctx.
func (l *Local) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = l.vector(t)
	}
	return out, nil
}

func (l *Local) vector(text string) []float32 {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
	tf := make(map[string]float64, len(words)*2)
	for i, w := range words {
		tf[w]++
		if i > 0 {
			tf[words[i-1]+" "+w] += 0.5
		}
	}
	v := make([]float64, l.dims)
	for term, n := range tf {
		h := fnv.New64a()
		_, _ = h.Write([]byte(term))
		sum := h.Sum64()
		idx := int(sum % uint64(l.dims))
		w := 1 + math.Log(n)
		if sum>>63 == 1 {
			w = -w
		}
		v[idx] += w
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, l.dims)
	if norm == 0 {
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

// Cosine returns the cosine similarity of a and b (0 when either is zero or lengths differ).
func Cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}
