package chunk

import (
	"fmt"
	"strings"

	"github.com/pkoukk/tiktoken-go"
	tiktokenloader "github.com/pkoukk/tiktoken-go-loader"
)

// Counter counts the tokens of a text the way the embeddings model does. Implementations are
// safe for concurrent use.
type Counter interface {
	Count(s string) int
}

// WordCounter approximates tokens as about 4/3 per word, the usual ratio for English text with
// BPE tokenizers. It is the fallback when no model tokenizer is configured.
type WordCounter struct{}

// Count implements [Counter].
func (WordCounter) Count(s string) int {
	n := len(strings.Fields(s))
	return (n*4 + 2) / 3
}

// BPECounter counts tokens with one of OpenAI's byte-pair encodings (tiktoken). Its
// vocabularies are compiled into the binary: nothing is fetched at run time.
type BPECounter struct {
	enc      *tiktoken.Tiktoken
	fast     *cl100kCounter // cl100k_base without the regular-expression engine
	encoding string
}

// Count implements [Counter]: the number of tokens of s, special-token text counted as
// ordinary text (as the embeddings endpoints do).
func (c *BPECounter) Count(s string) int {
	if c.fast != nil {
		return c.fast.Count(s)
	}
	return len(c.enc.EncodeOrdinary(s))
}

// Encoding names the byte-pair encoding, e.g. "cl100k_base".
func (c *BPECounter) Encoding() string { return c.encoding }

// The split patterns of the encodings, as published with tiktoken.
const (
	patCL100K = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	patO200K  = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// NewCounter returns the tokenizer of an embeddings or chat model: o200k_base for the models
// that use it (gpt-4o, gpt-4.1, gpt-4.5 and their dated versions), cl100k_base for every other
// name — OpenAI's embeddings models (text-embedding-3-small/large, ada-002) use it, and for a
// local model it is a close stand-in. An encoding name ("cl100k_base", "o200k_base") is also
// accepted. Loading takes about a tenth of a second: make one Counter per process.
func NewCounter(model string) (Counter, error) {
	name := encodingFor(model)
	if name == tiktoken.MODEL_CL100K_BASE {
		// cl100k_base is counted without tiktoken's encoder, which would keep a second copy
		// of the vocabulary (and its reverse) alive for nothing.
		ranks, err := loadRanks(name)
		if err != nil {
			return nil, err
		}
		table, err := newRankTable(ranks)
		if err != nil {
			return nil, err
		}
		return &BPECounter{fast: &cl100kCounter{ranks: table}, encoding: name}, nil
	}
	enc, err := newTiktoken(name)
	if err != nil {
		return nil, err
	}
	return &BPECounter{enc: enc, encoding: name}, nil
}

func loadRanks(name string) (map[string]int, error) {
	ranks, err := tiktokenloader.NewOfflineLoader().LoadTiktokenBpe(name + ".tiktoken")
	if err != nil {
		return nil, fmt.Errorf("chunk: load %s vocabulary: %w", name, err)
	}
	return ranks, nil
}

// newTiktoken builds tiktoken's encoder of encoding name from the compiled-in vocabulary.
func newTiktoken(name string) (*tiktoken.Tiktoken, error) {
	pat := patCL100K
	special := map[string]int{"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}
	if name == tiktoken.MODEL_O200K_BASE {
		pat = patO200K
		special = map[string]int{"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
	}
	ranks, err := loadRanks(name)
	if err != nil {
		return nil, err
	}
	bpe, err := tiktoken.NewCoreBPE(ranks, special, pat)
	if err != nil {
		return nil, fmt.Errorf("chunk: build %s tokenizer: %w", name, err)
	}
	set := map[string]any{}
	for k := range special {
		set[k] = true
	}
	enc := &tiktoken.Encoding{Name: name, PatStr: pat, MergeableRanks: ranks, SpecialTokens: special}
	return tiktoken.NewTiktoken(bpe, enc, set), nil
}

func encodingFor(model string) string {
	m := strings.ToLower(strings.TrimSpace(model))
	if m == tiktoken.MODEL_O200K_BASE || m == tiktoken.MODEL_CL100K_BASE {
		return m
	}
	if tiktoken.MODEL_TO_ENCODING[m] == tiktoken.MODEL_O200K_BASE {
		return tiktoken.MODEL_O200K_BASE
	}
	for prefix, enc := range tiktoken.MODEL_PREFIX_TO_ENCODING {
		if strings.HasPrefix(m, prefix) && enc == tiktoken.MODEL_O200K_BASE {
			return tiktoken.MODEL_O200K_BASE
		}
	}
	return tiktoken.MODEL_CL100K_BASE
}
