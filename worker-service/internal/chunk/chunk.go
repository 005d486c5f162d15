// Package chunk splits extracted text into overlapping, token-bounded chunks, breaking at
// paragraph and sentence boundaries where it can and never inside a word.
package chunk

import (
	"strings"
	"unicode"

	"github.com/quirehq/quire/worker-service/internal/extract"
)

// Counter counts the tokens of a text the way the embeddings model does.
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

// Options configures [Split].
type Options struct {
	// Size is the target chunk size in tokens (default 512).
	Size int
	// Overlap is how many tokens of the end of a chunk start the next one (default 64; less
	// than Size).
	Overlap int
	// Counter counts tokens (default WordCounter).
	Counter Counter
}

// WithDefaults returns o with zero fields set to defaults.
func (o Options) WithDefaults() Options {
	if o.Size <= 0 {
		o.Size = 512
	}
	if o.Overlap < 0 || o.Overlap >= o.Size {
		o.Overlap = 0
	}
	if o.Counter == nil {
		o.Counter = WordCounter{}
	}
	return o
}

// Chunk is one piece of a document.
type Chunk struct {
	Ordinal    int
	Content    string
	TokenCount int
	Page       int
	Heading    string
}

// unit is the smallest piece the chunker moves: a sentence, or a word run of an over-long one.
type unit struct {
	text    string
	tokens  int
	page    int
	heading string
	// paraEnd marks the last unit of a paragraph.
	paraEnd bool
}

// Split cuts the sections of doc into chunks of at most opts.Size tokens (a single word longer
// than that becomes its own chunk), each starting with up to opts.Overlap tokens from the end
// of the previous chunk of the same section. Chunks do not cross a page or heading change.
func Split(doc *extract.Document, opts Options) []Chunk {
	opts = opts.WithDefaults()
	var out []Chunk
	for _, sec := range mergeSections(doc.Sections) {
		units := sectionUnits(sec, opts)
		out = append(out, pack(units, opts, len(out))...)
	}
	return out
}

// mergeSections joins consecutive sections with the same page and heading.
func mergeSections(secs []extract.Section) []extract.Section {
	var out []extract.Section
	for _, s := range secs {
		if n := len(out); n > 0 && out[n-1].Page == s.Page && out[n-1].Heading == s.Heading {
			out[n-1].Text += "\n\n" + s.Text
			continue
		}
		out = append(out, s)
	}
	return out
}

func sectionUnits(sec extract.Section, opts Options) []unit {
	var units []unit
	for _, para := range paragraphs(sec.Text) {
		sents := sentences(para)
		for i, s := range sents {
			for _, piece := range splitLong(s, opts) {
				units = append(units, unit{text: piece, tokens: opts.Counter.Count(piece), page: sec.Page, heading: sec.Heading})
			}
			if i == len(sents)-1 && len(units) > 0 {
				units[len(units)-1].paraEnd = true
			}
		}
	}
	return units
}

// paragraphs splits at blank lines and collapses the white space inside each paragraph.
func paragraphs(s string) []string {
	var out []string
	for p := range strings.SplitSeq(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
		p = strings.Join(strings.Fields(p), " ")
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// sentences splits a paragraph after ., ! or ? (and their CJK forms) followed by a space or the end.
func sentences(p string) []string {
	var out []string
	start := 0
	rs := []rune(p)
	for i, r := range rs {
		end := false
		switch r {
		case '。', '！', '？':
			end = true
		case '.', '!', '?':
			end = i+1 == len(rs) || unicode.IsSpace(rs[i+1])
		}
		if end {
			if s := strings.TrimSpace(string(rs[start : i+1])); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(string(rs[start:])); s != "" {
		out = append(out, s)
	}
	return out
}

// splitLong cuts a sentence longer than a chunk at word boundaries.
func splitLong(s string, opts Options) []string {
	if opts.Counter.Count(s) <= opts.Size {
		return []string{s}
	}
	words := strings.Fields(s)
	var (
		out []string
		cur []string
	)
	for _, w := range words {
		cur = append(cur, w)
		if len(cur) > 1 && opts.Counter.Count(strings.Join(cur, " ")) > opts.Size {
			out = append(out, strings.Join(cur[:len(cur)-1], " "))
			cur = []string{w}
		}
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, " "))
	}
	return out
}

func pack(units []unit, opts Options, first int) []Chunk {
	var (
		out    []Chunk
		cur    []unit
		tokens int
	)
	emit := func() {
		var b strings.Builder
		for i, u := range cur {
			if i > 0 {
				if cur[i-1].paraEnd {
					b.WriteString("\n\n")
				} else {
					b.WriteByte(' ')
				}
			}
			b.WriteString(u.text)
		}
		text := b.String()
		out = append(out, Chunk{
			Ordinal:    first + len(out),
			Content:    text,
			TokenCount: opts.Counter.Count(text),
			Page:       cur[0].page,
			Heading:    cur[0].heading,
		})
	}
	fresh := 0 // units in cur that no earlier chunk holds
	for _, u := range units {
		if len(cur) > 0 && tokens+u.tokens > opts.Size && fresh > 0 {
			emit()
			// Keep the tail of the chunk, up to Overlap tokens, as the start of the next one.
			keep, kt := 0, 0
			for i := len(cur) - 1; i >= 0 && kt+cur[i].tokens <= opts.Overlap; i-- {
				kt += cur[i].tokens
				keep++
			}
			if kt+u.tokens > opts.Size {
				keep, kt = 0, 0
			}
			cur = append([]unit(nil), cur[len(cur)-keep:]...)
			tokens, fresh = kt, 0
		}
		cur = append(cur, u)
		tokens += u.tokens
		fresh++
	}
	if fresh > 0 {
		emit()
	}
	return out
}
