package chunk

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/worker-service/internal/extract"
)

var cl100k = sync.OnceValues(func() (Counter, error) { return NewCounter("text-embedding-3-small") })

func counter(t testing.TB) Counter {
	t.Helper()
	c, err := cl100k()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewCounter(t *testing.T) {
	for model, want := range map[string]string{
		"text-embedding-3-small": "cl100k_base", "text-embedding-ada-002": "cl100k_base", "nomic-embed-text": "cl100k_base",
		"": "cl100k_base", "gpt-4": "cl100k_base", "gpt-4o": "o200k_base", "gpt-4o-mini": "o200k_base", "O200K_BASE": "o200k_base",
	} {
		if got := encodingFor(model); got != want {
			t.Errorf("encodingFor(%q) = %s, want %s", model, got, want)
		}
	}
	o200k, err := NewCounter("gpt-4o-mini")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		c         Counter
		text, enc string
		want      int
	}{
		// Reference counts from OpenAI's tiktoken.
		{counter(t), "tiktoken is great!", "cl100k_base", 6},
		{counter(t), "hello world", "cl100k_base", 2},
		{counter(t), "antidisestablishmentarianism", "cl100k_base", 6},
		{counter(t), "<|endoftext|>", "cl100k_base", 7},
		{o200k, "hello world", "o200k_base", 2},
	}
	for _, tt := range tests {
		if got := tt.c.(*BPECounter).Encoding(); got != tt.enc {
			t.Errorf("encoding = %s, want %s", got, tt.enc)
		}
		if got := tt.c.Count(tt.text); got != tt.want {
			t.Errorf("%s: Count(%q) = %d, want %d", tt.enc, tt.text, got, tt.want)
		}
	}
}

// corpusText builds paragraphs of varied sentences from a fixed vocabulary.
func corpusText(r *rand.Rand, paras int) string {
	words := strings.Fields("the river authority published annual report describing record rainfall flood defences held along lower valley engineers said new embankments finished spring kept water villages during November storms gauge bridge reached highest level forty years")
	var b strings.Builder
	for p := range paras {
		if p > 0 {
			b.WriteString("\n\n")
		}
		for s := range 2 + r.IntN(6) {
			if s > 0 {
				b.WriteByte(' ')
			}
			n := 4 + r.IntN(30)
			for i := range n {
				if i > 0 {
					b.WriteByte(' ')
				}
				w := words[r.IntN(len(words))]
				if i == 0 {
					w = strings.ToUpper(w[:1]) + w[1:]
				}
				b.WriteString(w)
			}
			b.WriteString([]string{".", "!", "?"}[r.IntN(3)])
		}
	}
	return b.String()
}

func TestSplitInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	doc := &extract.Document{Pages: 3, Sections: []extract.Section{
		{Text: corpusText(r, 30), Page: 1},
		{Text: corpusText(r, 30), Page: 2},
		{Text: corpusText(r, 10), Page: 3, Heading: "Appendix"},
		{Text: "Tiny section.", Heading: "Appendix > Notes"},
	}}
	for _, opts := range []Options{{Size: 512, Overlap: 64}, {Size: 100, Overlap: 20}, {Size: 40, Overlap: -1}} {
		t.Run(fmt.Sprintf("size%d-overlap%d", opts.Size, opts.Overlap), func(t *testing.T) {
			opts.Counter = counter(t)
			chunks := Split(doc, opts)
			if len(chunks) < 2 {
				t.Fatalf("%d chunks", len(chunks))
			}
			var vocab = map[string]bool{}
			for _, s := range doc.Sections {
				for _, w := range strings.Fields(s.Text) {
					vocab[w] = true
				}
			}
			for i, c := range chunks {
				if c.Ordinal != i {
					t.Errorf("chunk %d has ordinal %d", i, c.Ordinal)
				}
				if c.TokenCount > opts.Size {
					t.Errorf("chunk %d: %d tokens > %d", i, c.TokenCount, opts.Size)
				}
				if got := opts.Counter.Count(c.Content); got != c.TokenCount {
					t.Errorf("chunk %d: TokenCount %d, counter says %d", i, c.TokenCount, got)
				}
				for _, w := range strings.Fields(c.Content) {
					if !vocab[w] {
						t.Fatalf("chunk %d has %q, not a word of the source (split mid-word?):\n%s", i, w, c.Content)
					}
				}
				switch {
				case strings.HasPrefix(c.Heading, "Appendix") && c.Page != 3 && c.Page != 0:
					t.Errorf("chunk %d under %q on page %d", i, c.Heading, c.Page)
				case c.Heading == "" && c.Page != 1 && c.Page != 2:
					t.Errorf("chunk %d: page %d", i, c.Page)
				}
			}
			// Overlap: a chunk that follows one of the same heading starts with that chunk's tail.
			overlaps := 0
			for i := 1; i < len(chunks); i++ {
				prev, cur := chunks[i-1], chunks[i]
				if prev.Heading != cur.Heading {
					continue
				}
				first := strings.Fields(cur.Content)[0:3]
				if strings.Contains(prev.Content[len(prev.Content)/2:], strings.Join(first, " ")) {
					overlaps++
				}
			}
			if opts.Overlap > 0 && overlaps == 0 {
				t.Error("no chunk starts with the tail of the previous one")
			}
			if opts.Overlap < 0 && overlaps > 0 {
				t.Errorf("%d overlaps with overlap disabled", overlaps)
			}
			// Every sentence of the source is in some chunk.
			all := ""
			for _, c := range chunks {
				all += c.Content + "\n"
			}
			for _, s := range doc.Sections {
				for _, p := range paragraphs(s.Text) {
					for _, sent := range sentences(p) {
						if opts.Size >= 100 && !strings.Contains(all, sent.text) {
							t.Fatalf("sentence lost: %q", sent.text)
						}
					}
				}
			}
		})
	}
}

func TestSplitBoundaries(t *testing.T) {
	c := counter(t)
	long := strings.Repeat("这是一个没有标点的很长的中文句子", 200)           // one "word" of 6,400 characters
	blob := strings.Repeat("QWxhZGRpbjpvcGVuIHNlc2FtZQ", 200) // an encoded blob: one long word
	doc := &extract.Document{Sections: []extract.Section{
		{Text: "First paragraph stays whole.\n\nSecond paragraph, also whole."},
		{Text: long, Heading: "CJK"},
		{Text: blob, Heading: "Blob"},
		{Text: "第一句。第二句！第三句？", Heading: "Punctuation"},
	}}
	chunks := Split(doc, Options{Size: 64, Overlap: 8, Counter: c})
	if chunks[0].Content != "First paragraph stays whole.\n\nSecond paragraph, also whole." {
		t.Errorf("chunk 0 = %q", chunks[0].Content)
	}
	var cjk, blobText strings.Builder
	for _, ch := range chunks {
		if ch.Heading == "Blob" {
			blobText.WriteString(ch.Content)
		}
		if ch.TokenCount > 64 {
			t.Errorf("chunk %d: %d tokens", ch.Ordinal, ch.TokenCount)
		}
		if ch.Heading == "CJK" {
			cjk.WriteString(ch.Content)
		}
	}
	if !strings.Contains(cjk.String(), long[:300]) || cjk.Len() < len(long) {
		t.Errorf("CJK text lost: %d of %d bytes", cjk.Len(), len(long))
	}
	if blobText.String() != blob {
		t.Errorf("blob split into chunks does not join back: %d of %d bytes", blobText.Len(), len(blob))
	}
	last := chunks[len(chunks)-1]
	if last.Heading != "Punctuation" || last.Content != "第一句。第二句！第三句？" {
		t.Errorf("last chunk = %+v", last)
	}
	if got := Split(&extract.Document{}, Options{}); len(got) != 0 {
		t.Errorf("empty document: %d chunks", len(got))
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.WithDefaults()
	if o.Size != 512 || o.Overlap != 64 || o.Counter == nil {
		t.Errorf("defaults = %+v", o)
	}
	if o := (Options{Size: 100, Overlap: -1}).WithDefaults(); o.Overlap != 0 {
		t.Errorf("negative overlap = %d, want 0", o.Overlap)
	}
	if o := (Options{Size: 100, Overlap: 500}).WithDefaults(); o.Overlap != 50 {
		t.Errorf("overlap capped = %d, want 50", o.Overlap)
	}
}

func BenchmarkSplit(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	text := corpusText(r, 2000)
	doc := &extract.Document{Sections: []extract.Section{{Text: text}}}
	for _, bc := range []struct {
		name string
		c    Counter
	}{{"cl100k", counter(b)}, {"words", WordCounter{}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				Split(doc, Options{Counter: bc.c})
			}
		})
	}
}

func TestSplitLocations(t *testing.T) {
	row := func(n int, sheet string) extract.Section {
		return extract.Section{
			Text:     fmt.Sprintf("Region: North; Units: %d; Note: row %d of the sheet.", n*10, n),
			Heading:  sheet,
			Location: doctype.Location{Sheet: sheet, RowStart: n, RowEnd: n},
		}
	}
	doc := &extract.Document{Sections: []extract.Section{
		{Text: "Page one text.", Page: 1},
		{Text: "Slide one.", Location: doctype.Location{Slide: 1}},
		{Text: "Slide two.", Location: doctype.Location{Slide: 2}},
	}}
	for n := 2; n <= 41; n++ {
		doc.Sections = append(doc.Sections, row(n, "Sales"))
	}
	doc.Sections = append(doc.Sections, row(2, "Costs"))
	chunks := Split(doc, Options{Size: 64, Overlap: -1})
	if got := chunks[0].Location; got != (doctype.Location{Page: 1}) {
		t.Fatalf("chunk 0 location %+v, want page 1", got)
	}
	if chunks[1].Location.Slide != 1 || chunks[2].Location.Slide != 2 {
		t.Fatalf("slides did not get chunks of their own: %+v, %+v", chunks[1], chunks[2])
	}
	next := 2
	for _, c := range chunks[3:] {
		l := c.Location
		if l.Sheet == "Costs" {
			if l.RowStart != 2 || l.RowEnd != 2 {
				t.Fatalf("Costs chunk location %+v", l)
			}
			continue
		}
		if l.Sheet != "Sales" || l.RowStart != next || l.RowEnd < l.RowStart {
			t.Fatalf("chunk %d location %+v, want Sales from row %d", c.Ordinal, l, next)
		}
		if !strings.Contains(c.Content, fmt.Sprintf("row %d of", l.RowEnd)) || strings.Contains(c.Content, fmt.Sprintf("row %d of", l.RowEnd+1)) {
			t.Fatalf("chunk %d rows %d-%d but content %q", c.Ordinal, l.RowStart, l.RowEnd, c.Content)
		}
		next = l.RowEnd + 1
	}
	if next != 42 {
		t.Fatalf("Sales chunks end before row 41 (next %d)", next)
	}
}
