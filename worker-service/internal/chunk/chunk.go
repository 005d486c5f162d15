// Package chunk splits extracted text into overlapping, token-bounded chunks, breaking at
// paragraph and sentence boundaries where it can and never inside a word.
package chunk

import (
	"strings"
	"unicode/utf8"

	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/worker-service/internal/extract"
)

// Options configures [Split].
type Options struct {
	// Size is the most tokens a chunk holds (default 512).
	Size int
	// Overlap is how many tokens from the end of a chunk start the next one of the same
	// heading: 0 means the default, 64 (at most a quarter of Size); a negative value means no
	// overlap. It is capped at half of Size.
	Overlap int
	// Counter counts tokens (default WordCounter, an approximation; use [NewCounter] for the
	// embeddings model's own tokenizer).
	Counter Counter
}

// WithDefaults returns o with zero fields set to defaults.
func (o Options) WithDefaults() Options {
	if o.Size <= 0 {
		o.Size = 512
	}
	switch {
	case o.Overlap == 0:
		o.Overlap = min(64, o.Size/4)
	case o.Overlap < 0:
		o.Overlap = 0
	}
	o.Overlap = min(o.Overlap, o.Size/2)
	if o.Counter == nil {
		o.Counter = WordCounter{}
	}
	return o
}

// Chunk is one piece of a document.
type Chunk struct {
	// Ordinal is the chunk's 0-based position in the document.
	Ordinal int
	Content string
	// TokenCount is Counter's count of Content; at most Options.Size.
	TokenCount int
	// Page is the page (PDF) where the chunk's own text starts (after any overlap), 0 if none.
	Page int
	// Heading is the heading path of the chunk's section ("Install > Linux"), if any.
	Heading string
	// Location is where the chunk's own text starts (after any overlap): its page, slide,
	// sheet or chapter, with the row range of a spreadsheet widened to the last row it holds.
	// Zero when the document has no positions (plain text, HTML).
	Location doctype.Location
}

// unit is the smallest piece the chunker moves: a sentence, a run of words of an over-long
// sentence, or a run of characters of an over-long word.
type unit struct {
	text   string
	sep    string // what separated it from the previous unit in the source: "\n\n", " " or ""
	tokens int
	page   int
	loc    doctype.Location
}

// Split cuts the sections of doc into chunks of at most opts.Size tokens as counted by
// opts.Counter. Chunks break between paragraphs or sentences where they can, between words
// when a sentence alone is too long, and inside a word only when one word (a long unspaced
// run such as CJK text without punctuation or an encoded blob) is longer than a chunk. Each
// chunk after the first of a heading starts with up to opts.Overlap tokens from the end of the
// previous one, cut at a sentence or word boundary. Chunks never span a heading change, but do
// run on across pages (Page is where the chunk's new text starts). Nor do they span slides,
// sheets or chapters; rows of one sheet run on, the chunk's Location giving its row range.
func Split(doc *extract.Document, opts Options) []Chunk {
	opts = opts.WithDefaults()
	var out []Chunk
	for _, blk := range blocks(doc.Sections) {
		var units []unit
		for _, sec := range blk {
			units = appendUnits(units, sec, opts)
		}
		out = pack(out, units, blk[0].Heading, opts)
	}
	return out
}

// blocks groups consecutive sections under the same heading and on the same slide, sheet and
// chapter.
func blocks(secs []extract.Section) [][]extract.Section {
	var out [][]extract.Section
	for _, s := range secs {
		if n := len(out); n > 0 && sameBlock(out[n-1][0], s) {
			out[n-1] = append(out[n-1], s)
			continue
		}
		out = append(out, []extract.Section{s})
	}
	return out
}

func sameBlock(a, b extract.Section) bool {
	return a.Heading == b.Heading && a.Location.Slide == b.Location.Slide &&
		a.Location.Sheet == b.Location.Sheet && a.Location.Chapter == b.Location.Chapter
}

// location is the position of a section; a section with only a page is at that page.
func location(sec extract.Section) doctype.Location {
	loc := sec.Location
	if loc.IsZero() && sec.Page > 0 {
		loc.Page = sec.Page
	}
	return loc
}

func appendUnits(units []unit, sec extract.Section, opts Options) []unit {
	loc := location(sec)
	for _, para := range paragraphs(sec.Text) {
		for si, s := range sentences(para) {
			sep := s.sep
			if si == 0 {
				sep = "\n\n"
			}
			for i, piece := range splitLong(s.text, opts) {
				if i > 0 {
					sep = piece.sep
				}
				tokens := piece.tokens
				if tokens == 0 {
					tokens = opts.Counter.Count(piece.text)
				}
				units = append(units, unit{text: piece.text, sep: sep, tokens: tokens, page: sec.Page, loc: loc})
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

type piece struct {
	text   string
	sep    string // separator before it: " " or ""
	tokens int    // its token count if known, else 0
}

// sentences splits a paragraph after ., ! or ? followed by a space, and after the CJK full
// stops (with no space needed).
func sentences(p string) []piece {
	var out []piece
	start, sep := 0, ""
	for i, r := range p {
		end := false
		next := i + utf8.RuneLen(r)
		switch r {
		case '。', '！', '？', '；':
			end = true
		case '.', '!', '?':
			end = next == len(p) || p[next] == ' '
		}
		if !end {
			continue
		}
		if s := strings.TrimSpace(p[start:next]); s != "" {
			out = append(out, piece{text: s, sep: sep})
		}
		start = next
		sep = ""
		if start < len(p) && p[start] == ' ' {
			sep = " "
		}
	}
	if s := strings.TrimSpace(p[start:]); s != "" {
		out = append(out, piece{text: s, sep: sep})
	}
	return out
}

// splitLong cuts a sentence longer than a chunk at word boundaries, and a word longer than a
// chunk between characters.
func splitLong(s string, opts Options) []piece {
	if n := opts.Counter.Count(s); n <= opts.Size {
		return []piece{{s, "", n}}
	}
	var (
		out []piece
		cur strings.Builder
		n   int
	)
	flush := func(sep string) {
		if cur.Len() > 0 {
			out = append(out, piece{text: cur.String(), sep: sep})
			cur.Reset()
			n = 0
		}
	}
	nextSep := ""
	for _, w := range strings.Fields(s) {
		wt := opts.Counter.Count(" " + w)
		if wt > opts.Size {
			flush(nextSep)
			for i, part := range splitWord(w, opts) {
				sep := ""
				if i == 0 {
					sep = " "
				}
				out = append(out, piece{text: part, sep: sep})
			}
			nextSep = " "
			continue
		}
		if n+wt > opts.Size {
			sep := nextSep
			flush(sep)
			nextSep = " "
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
		n += wt
	}
	flush(nextSep)
	if len(out) > 0 {
		out[0].sep = ""
	}
	return out
}

// splitWord cuts an over-long word into runs of characters of at most opts.Size tokens.
func splitWord(w string, opts Options) []string {
	var out []string
	for len(w) > 0 {
		// Binary search for the longest prefix (in runes) within Size tokens.
		runes := []rune(w)
		lo, hi := 1, len(runes)
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if opts.Counter.Count(string(runes[:mid])) <= opts.Size {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		out = append(out, string(runes[:lo]))
		w = string(runes[lo:])
	}
	return out
}

// pack greedily fills chunks with units, then checks each chunk's exact count (tokens do not
// add up exactly across joins) and moves units to the next chunk until it fits.
func pack(out []Chunk, units []unit, heading string, opts Options) []Chunk {
	var carry []unit // overlap from the previous chunk
	for len(units) > 0 {
		budget := opts.Size
		for _, u := range carry {
			budget -= u.tokens
		}
		n, sum := 0, 0
		for n < len(units) && (n == 0 || sum+units[n].tokens <= budget) {
			sum += units[n].tokens
			n++
		}
		for {
			content := join(carry, units[:n])
			tokens := opts.Counter.Count(content)
			if tokens > opts.Size && n == 1 && len(carry) == 0 {
				// One unit whose exact count is over (counts do not add up exactly across
				// words): cut it at the last word that fits.
				if a, b, ok := cut(units[0], opts); ok {
					units = append([]unit{a, b}, units[1:]...)
					content, tokens = a.text, a.tokens
				}
			}
			if tokens <= opts.Size || (n == 1 && len(carry) == 0) {
				out = append(out, Chunk{
					Ordinal:    len(out),
					Content:    content,
					TokenCount: tokens,
					Page:       units[0].page,
					Heading:    heading,
					Location:   span(units[:n]),
				})
				break
			}
			switch {
			case n > 1:
				n--
			default:
				carry = nil // the unit alone fits only without the overlap
			}
		}
		carry = overlap(units[:n], opts)
		units = units[n:]
	}
	return out
}

// span is the location of a chunk's new units: the first one's, its row range widened to the
// last.
func span(units []unit) doctype.Location {
	loc := units[0].loc
	for _, u := range units[1:] {
		loc = loc.Extend(u.loc)
	}
	return loc
}

// join renders units with their source separators ("" glues the pieces of a split word or
// CJK sentences back together); the overlap runs into the first new unit.
func join(carry, units []unit) string {
	var b strings.Builder
	for i, u := range append(append([]unit(nil), carry...), units...) {
		if i > 0 {
			b.WriteString(u.sep)
		}
		b.WriteString(u.text)
	}
	return b.String()
}

// overlap returns the tail of a chunk's units worth at most opts.Overlap tokens: whole
// sentences if they fit, otherwise the last words of the last unit.
func overlap(units []unit, opts Options) []unit {
	if opts.Overlap <= 0 || len(units) == 0 {
		return nil
	}
	var tail []unit
	sum := 0
	for i := len(units) - 1; i >= 0 && sum+units[i].tokens <= opts.Overlap; i-- {
		sum += units[i].tokens
		tail = append([]unit{units[i]}, tail...)
	}
	if len(tail) > 0 {
		tail[0].sep = "\n\n"
		return tail
	}
	last := units[len(units)-1]
	words := strings.Fields(last.text)
	if len(words) < 2 {
		return nil
	}
	k, n := len(words), 0
	for k > 1 {
		t := opts.Counter.Count(" " + words[k-1])
		if n+t > opts.Overlap {
			break
		}
		n += t
		k--
	}
	if k == len(words) {
		return nil
	}
	text := strings.Join(words[k:], " ")
	return []unit{{text: text, sep: "\n\n", tokens: opts.Counter.Count(text), page: last.page, loc: last.loc}}
}

// cut splits u after the most words whose exact count is within opts.Size (between
// characters when even the first word is too long).
func cut(u unit, opts Options) (unit, unit, bool) {
	words := strings.Fields(u.text)
	lo, hi := 0, len(words)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if opts.Counter.Count(strings.Join(words[:mid], " ")) <= opts.Size {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	var head, tail, sep string
	switch {
	case lo > 0:
		head, tail, sep = strings.Join(words[:lo], " "), strings.Join(words[lo:], " "), " "
	default:
		parts := splitWord(words[0], opts)
		if len(parts) < 2 && len(words) < 2 {
			return u, unit{}, false
		}
		head = parts[0]
		tail = strings.TrimPrefix(u.text, head)
		sep = ""
		if strings.HasPrefix(tail, " ") {
			sep = " "
		}
		tail = strings.TrimSpace(tail)
	}
	a := unit{text: head, sep: u.sep, tokens: opts.Counter.Count(head), page: u.page, loc: u.loc}
	b := unit{text: tail, sep: sep, tokens: opts.Counter.Count(tail), page: u.page, loc: u.loc}
	return a, b, true
}
