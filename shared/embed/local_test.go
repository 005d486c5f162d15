package embed

import (
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"testing"
	"unicode"
)

// referenceVector is the Local model as first written: terms as strings, hashed with
// hash/fnv. Stored embeddings were made by it, so vector must not drift from it.
func referenceVector(dims int, text string) []float32 {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
	tf := map[string]float64{}
	for i, w := range words {
		tf[w]++
		if i > 0 {
			tf[words[i-1]+" "+w] += 0.5
		}
	}
	v := make([]float64, dims)
	for term, n := range tf {
		h := fnv.New64a()
		_, _ = h.Write([]byte(term))
		sum := h.Sum64()
		w := 1 + math.Log(n)
		if sum>>63 == 1 {
			w = -w
		}
		v[int(sum%uint64(dims))] += w
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, dims)
	if norm == 0 {
		return out
	}
	for i, x := range v {
		out[i] = float32(x / math.Sqrt(norm))
	}
	return out
}

func TestLocalVectorsAreTheReferenceModel(t *testing.T) {
	texts := []string{
		"",
		"...",
		"Quire",
		"The worker drains the job stream; each job runs extract, chunk, embed and store. The store step commits the chunks.",
		"Ünïcode wörds, 数字 123 and ÄÖÜ mixed with the the the repeated words repeated words.",
		"invalid \xff\xfe utf-8 between\xffwords",
		strings.Repeat("a long document with many many words, ", 300),
	}
	for _, dims := range []int{8, 384, 1536} {
		l, err := NewLocal(dims)
		if err != nil {
			t.Fatal(err)
		}
		// Calls at once and one after another share the embedder's scratch buffers: none may
		// see another's terms.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 3 {
					got, err := l.Embed(t.Context(), texts)
					if err != nil {
						t.Error(err)
						return
					}
					for i, text := range texts {
						want := referenceVector(dims, text)
						for k := range want {
							if math.Abs(float64(got[i][k]-want[k])) > 1e-6 {
								t.Errorf("dims %d, text %d: component %d = %v, reference %v", dims, i, k, got[i][k], want[k])
								return
							}
						}
					}
				}
			})
		}
		wg.Wait()
	}
}

func BenchmarkLocal(b *testing.B) {
	l, _ := NewLocal(384)
	text := strings.Repeat("Benchmark sentences hold ordinary words of a document, like this one. ", 35)
	for b.Loop() {
		if _, err := l.Embed(b.Context(), []string{text}); err != nil {
			b.Fatal(err)
		}
	}
}
