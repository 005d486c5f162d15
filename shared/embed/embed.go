// Package embed turns chunk text into embedding vectors. The worker embeds chunks in batches
// through an [Embedder]; the API embeds search queries with the same one.
package embed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"unicode"
	"unicode/utf8"
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
	// scratch holds *localScratch buffers reused across calls: the term counts and the
	// unnormalised vector, most of what embedding a chunk would allocate.
	scratch sync.Pool
}

type localScratch struct {
	tf map[uint64]float64
	v  []float64
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

// FNV-1a, 64 bits (hash/fnv's New64a), inline so that a bigram's hash continues from its
// first word's without building the bigram.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// vector hashes each term (a lower-cased word, or two words joined by a space) with FNV-1a:
// the hash picks the dimension and its top bit the sign. It reads text once, hashing each word
// and the bigram that ends with it as it goes; terms are told apart by their 64-bit hashes.
func (l *Local) vector(text string) []float32 {
	sc, _ := l.scratch.Get().(*localScratch)
	if sc == nil {
		sc = &localScratch{tf: make(map[uint64]float64, len(text)/3), v: make([]float64, l.dims)}
	}
	defer func() {
		clear(sc.tf)
		clear(sc.v)
		l.scratch.Put(sc)
	}()
	tf := sc.tf
	var (
		word, bigram uint64 // hashes of the current word and of "<previous word> <current word>"
		prev         uint64 // hash of the previous word
		inWord, pair bool   // pair: a previous word exists
		buf          [utf8.UTFMax]byte
	)
	endWord := func() {
		tf[word]++
		if pair {
			tf[bigram] += 0.5
		}
		prev, pair, inWord = word, true, false
	}
	for _, r := range text {
		if r < utf8.RuneSelf {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
		} else {
			r = unicode.ToLower(r)
		}
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			if inWord {
				endWord()
			}
			continue
		}
		if !inWord {
			word, bigram, inWord = fnvOffset64, (prev^' ')*fnvPrime64, true
		}
		for _, c := range utf8.AppendRune(buf[:0], r) {
			word = (word ^ uint64(c)) * fnvPrime64
			bigram = (bigram ^ uint64(c)) * fnvPrime64
		}
	}
	if inWord {
		endWord()
	}
	v := sc.v
	for sum, n := range tf {
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
