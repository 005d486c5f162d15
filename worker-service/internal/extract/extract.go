// Package extract turns document bytes into text sections (pages, headings) for chunking.
// Every error it returns is permanent for the document: retrying the same bytes cannot help.
package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/quirehq/quire/shared/doctype"
)

// Errors wrapped by everything Extract returns; all of them are permanent for the document.
var (
	ErrUnsupported = errors.New("extract: unsupported document")
	ErrCorrupt     = errors.New("extract: corrupt document")
	ErrEncrypted   = errors.New("extract: password required")
	ErrNeedsOCR    = errors.New("extract: no text layer (needs OCR)")
	ErrTooLarge    = errors.New("extract: document exceeds extraction limits")
	ErrEmpty       = errors.New("extract: document has no text")
)

// Section is a run of text with its position in the document.
type Section struct {
	Text string
	// Page is the 1-based page number for paged formats (PDF), 0 otherwise.
	Page int
	// Heading is the heading path the text sits under ("Install > Linux"), if any.
	Heading string
}

// Document is the extracted text of a document.
type Document struct {
	Title    string
	Type     doctype.Type
	Pages    int
	Sections []Section
}

// Len is the total length of the extracted text in bytes.
func (d *Document) Len() int {
	n := 0
	for _, s := range d.Sections {
		n += len(s.Text)
	}
	return n
}

// Progress is told how far extraction has come (e.g. pages done of total).
type Progress func(done, total int)

// Options bounds extraction.
type Options struct {
	// MaxTextBytes caps the extracted text; a larger document fails with ErrTooLarge.
	// Defaults to 64 MiB.
	MaxTextBytes int
}

// WithDefaults returns o with zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.MaxTextBytes <= 0 {
		o.MaxTextBytes = 64 << 20
	}
	return o
}

// Extractor extracts text from documents. It is safe for concurrent use.
type Extractor struct {
	opts Options
}

// New returns an Extractor with opts (zero fields take defaults). Close releases it.
func New(ctx context.Context, opts Options) (*Extractor, error) {
	return &Extractor{opts: opts.WithDefaults()}, nil
}

// Close releases the resources of e (engines, caches). It is safe to call more than once.
func (e *Extractor) Close() error { return nil }

// Extract reads the document of type t from r (size bytes) and returns its text. A panic in a
// parser is recovered into an ErrCorrupt error.
func (e *Extractor) Extract(ctx context.Context, r io.ReaderAt, size int64, t doctype.Type, progress Progress) (doc *Document, err error) {
	defer func() {
		if p := recover(); p != nil {
			doc, err = nil, fmt.Errorf("%w: parser panic: %v", ErrCorrupt, p)
		}
	}()
	if progress == nil {
		progress = func(int, int) {}
	}
	switch t {
	case doctype.Text, doctype.Markdown:
		doc, err = e.text(ctx, r, size, t)
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, t)
	}
	if err != nil {
		return nil, err
	}
	progress(1, 1)
	if strings.TrimSpace(joinText(doc)) == "" {
		return nil, ErrEmpty
	}
	return doc, nil
}

func joinText(d *Document) string {
	var b strings.Builder
	for _, s := range d.Sections {
		b.WriteString(s.Text)
	}
	return b.String()
}

func (e *Extractor) text(ctx context.Context, r io.ReaderAt, size int64, t doctype.Type) (*Document, error) {
	if size > int64(e.opts.MaxTextBytes) {
		return nil, fmt.Errorf("%w: %d bytes of text, limit %d", ErrTooLarge, size, e.opts.MaxTextBytes)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if _, err := r.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("extract: read text: %w", err)
	}
	buf = []byte(strings.TrimPrefix(string(buf), "\ufeff"))
	if !utf8.Valid(buf) {
		buf = []byte(strings.ToValidUTF8(string(buf), "\ufffd"))
	}
	doc := &Document{Type: t}
	if t == doctype.Markdown {
		doc.Sections = markdownSections(string(buf))
	} else {
		doc.Sections = []Section{{Text: string(buf)}}
	}
	return doc, nil
}

// markdownSections splits Markdown at ATX headings, keeping each section's heading path.
func markdownSections(s string) []Section {
	var (
		out   []Section
		path  []string
		cur   strings.Builder
		fence bool
	)
	flush := func() {
		if strings.TrimSpace(cur.String()) != "" {
			var names []string
			for _, h := range path {
				if h != "" {
					names = append(names, h)
				}
			}
			out = append(out, Section{Text: cur.String(), Heading: strings.Join(names, " > ")})
		}
		cur.Reset()
	}
	for line := range strings.Lines(s) {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "```") || strings.HasPrefix(trim, "~~~") {
			fence = !fence
		}
		if !fence && strings.HasPrefix(trim, "#") {
			level := len(trim) - len(strings.TrimLeft(trim, "#"))
			title := strings.TrimSpace(strings.Trim(trim[level:], "#"))
			if level <= 6 && title != "" && (len(trim) == level || trim[level] == ' ') {
				flush()
				if level-1 < len(path) {
					path = path[:level-1]
				}
				for len(path) < level-1 {
					path = append(path, "")
				}
				path = append(path, title)
			}
		}
		cur.WriteString(line)
	}
	flush()
	return out
}
