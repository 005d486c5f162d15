package extract

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// delimited reads a CSV (sep ',') or TSV (sep '\t') file as one table, streaming record by
// record: each row becomes one section located by its 1-based row number (see [sheetWriter]).
// Quoted fields may hold separators and line breaks; rows may have differing numbers of
// fields; stray quotes are taken literally. The encoding is UTF-8, UTF-16 with a byte-order
// mark, or a legacy single-byte encoding detected from the first 64 KiB (Windows-1252 by
// default).
func (e *Extractor) delimited(ctx context.Context, r io.ReaderAt, size int64, sep rune, lim *limiter) (*Document, error) {
	kind := "csv"
	if sep == '\t' {
		kind = "tsv"
	}
	in, err := decodedReader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, err
	}
	cr := csv.NewReader(in)
	cr.Comma = sep
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	w := newSheetWriter(lim)
	w.start("")
	var tick ticker
	for n := 1; ; n++ {
		if err := tick.check(ctx); err != nil {
			return nil, err
		}
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, errf(ErrCorrupt, kind, "%v", err)
		}
		if err != nil {
			return nil, err // the reader failed: not the document's fault
		}
		if len(rec) > maxRowCells {
			return nil, errf(ErrTooLarge, kind, "row %d has %d fields, limit %d", n, len(rec), maxRowCells)
		}
		if err := w.row(n, rec, nil); err != nil {
			return nil, err
		}
	}
	return &Document{Sections: w.secs}, nil
}

// decodedReader returns r decoded to UTF-8, the encoding chosen from its first bytes.
func decodedReader(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(64 << 10)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	switch {
	case len(head) >= 2 && (head[0] == 0xFF && head[1] == 0xFE || head[0] == 0xFE && head[1] == 0xFF):
		return transform.NewReader(br, unicode.BOMOverride(unicode.UTF8.NewDecoder())), nil
	case len(head) >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF:
		_, _ = br.Discard(3)
		return br, nil
	}
	// A multi-byte character may be cut at the end of the sample.
	valid := head
	for i := 0; i < 3 && len(valid) > 0 && !utf8.Valid(valid); i++ {
		valid = valid[:len(valid)-1]
	}
	if utf8.Valid(valid) {
		return br, nil
	}
	if enc, _ := detect(head); enc != nil {
		return transform.NewReader(br, enc.NewDecoder()), nil
	}
	return transform.NewReader(br, charmap.Windows1252.NewDecoder()), nil
}
