package extract

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/quirehq/quire/shared/doctype"
)

// docx reads a Word .docx package: the body (paragraphs, lists, tables row by row, headings
// as section paths), then footnotes and endnotes, then headers and footers. The package is
// read as a stream under explicit limits (entries, bytes per part and in total counted as
// they are read, compression ratio), and the XML with encoding/xml, which never expands
// entities; any DTD is refused.
func (e *Extractor) docx(ctx context.Context, r io.ReaderAt, size int64, lim *limiter) (*Document, error) {
	var magic [8]byte
	if n, _ := r.ReadAt(magic[:], 0); n == len(magic) && string(magic[:]) == oleMagic {
		return nil, fmt.Errorf("%w: docx: this is a binary Word .doc or a password-protected Office file; save it as an unprotected .docx", ErrUnsupported)
	}
	pk, err := e.openZip(r, size, "docx")
	if err != nil {
		return nil, err
	}
	main := pk.mainPart()
	if pk.files[main] == nil {
		return nil, fmt.Errorf("%w: docx: the package has no %s", ErrCorrupt, main)
	}
	doc := &Document{Type: doctype.DOCX}
	w := &docxWriter{lim: lim}
	if err := pk.walk(ctx, main, w); err != nil {
		return nil, err
	}
	var extra []string
	for _, name := range []string{"word/footnotes.xml", "word/endnotes.xml"} {
		if pk.files[name] != nil {
			extra = append(extra, name)
		}
	}
	var hf []string
	for name := range pk.files {
		if headerFooterPart.MatchString(name) {
			hf = append(hf, name)
		}
	}
	slices.Sort(hf)
	w.heading(0, "") // notes, headers and footers sit under no heading
	for _, name := range append(extra, hf...) {
		if err := pk.walk(ctx, name, w); err != nil {
			return nil, err
		}
	}
	doc.Sections = w.finish()
	doc.Title = pk.title()
	return doc, nil
}

// oleMagic starts OLE2 compound files: binary .doc, and encrypted OOXML packages.
const oleMagic = "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"

var headerFooterPart = regexp.MustCompile(`^word/(header|footer)[0-9]*\.xml$`)

// mainPart finds the main document part from the package relationships, as Word does;
// word/document.xml when they do not say.
func (pk *zipPackage) mainPart() string {
	const fallback = "word/document.xml"
	var target string
	err := pk.scan("_rels/.rels", 1<<20, func(d *xml.Decoder, t xml.Token) error {
		if se, ok := t.(xml.StartElement); ok && se.Name.Local == "Relationship" {
			var typ, tgt string
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "Type":
					typ = a.Value
				case "Target":
					tgt = a.Value
				}
			}
			if strings.HasSuffix(typ, "/officeDocument") && target == "" {
				target = strings.TrimPrefix(path.Clean("/"+tgt), "/")
			}
		}
		return nil
	})
	if err != nil || target == "" || pk.files[target] == nil {
		return fallback
	}
	return target
}

// title reads dc:title from docProps/core.xml, if any.
func (pk *zipPackage) title() string { return pk.titleOf("docProps/core.xml") }

// walk extracts the text of one WordprocessingML part into w.
func (pk *zipPackage) walk(ctx context.Context, name string, w *docxWriter) error {
	var (
		skip    int // depth inside an element whose text is not content
		inText  bool
		para    strings.Builder
		style   string
		outline = -1
		list    bool
		tables  []*docxTable
		tokens  int
	)
	endPara := func() error {
		text := strings.TrimSpace(para.String())
		para.Reset()
		lvl := headingLevel(style, outline)
		style, outline = "", -1
		isList := list
		list = false
		if len(tables) > 0 {
			t := tables[len(tables)-1]
			if text != "" {
				t.cell = append(t.cell, text)
			}
			return nil
		}
		if text == "" {
			return nil
		}
		if lvl > 0 {
			w.heading(lvl, text)
		}
		if isList {
			text = "- " + text
		}
		return w.para(text)
	}
	return pk.scan(name, pk.opts.MaxZipPartBytes, func(d *xml.Decoder, t xml.Token) error {
		if tokens++; tokens%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		switch t := t.(type) {
		case xml.StartElement:
			if skip > 0 {
				skip++
				return nil
			}
			switch t.Name.Local {
			case "delText", "instrText", "Fallback":
				// Deleted text, field codes, and the legacy rendering of content that
				// mc:Choice already holds (text boxes would come twice).
				skip = 1
			case "t":
				inText = true
			case "tab", "ptab":
				para.WriteByte('\t')
			case "br", "cr":
				para.WriteByte('\n')
			case "noBreakHyphen":
				para.WriteByte('-')
			case "pStyle":
				style = attr(t, "val")
			case "outlineLvl":
				if n, err := strconv.Atoi(attr(t, "val")); err == nil {
					outline = n
				}
			case "numPr":
				list = true
			case "tbl":
				tables = append(tables, &docxTable{})
			case "tc":
				if n := len(tables); n > 0 {
					tables[n-1].cell = nil
				}
			}
		case xml.EndElement:
			if skip > 0 {
				skip--
				return nil
			}
			switch t.Name.Local {
			case "t":
				inText = false
			case "p":
				return endPara()
			case "tc":
				if n := len(tables); n > 0 {
					tb := tables[n-1]
					tb.row = append(tb.row, strings.Join(tb.cell, " "))
					tb.cell = nil
				}
			case "tr":
				if n := len(tables); n > 0 {
					tb := tables[n-1]
					line := strings.TrimSpace(strings.Join(tb.row, " | "))
					tb.row = nil
					if strings.Trim(line, " |") == "" {
						return nil
					}
					if n > 1 {
						// A table inside a cell joins that cell's text.
						tables[n-2].cell = append(tables[n-2].cell, line)
						return nil
					}
					return w.para(line)
				}
			case "tbl":
				if n := len(tables); n > 0 {
					tables = tables[:n-1]
				}
			}
		case xml.CharData:
			if inText && skip == 0 {
				para.Write(t)
				if para.Len() > w.lim.max {
					return fmt.Errorf("%w: docx: paragraph of more than %d bytes", ErrTooLarge, w.lim.max)
				}
			}
		}
		return nil
	})
}

type docxTable struct {
	row  []string // finished cells of the current row
	cell []string // paragraphs of the current cell
}

// headingLevel reads a heading level from a paragraph style id ("Heading2", "heading 2",
// "Title") or its outline level; 0 for body text.
func headingLevel(style string, outline int) int {
	s := strings.ToLower(strings.ReplaceAll(style, " ", ""))
	switch {
	case s == "title":
		return 1
	case strings.HasPrefix(s, "heading"):
		if n, err := strconv.Atoi(strings.TrimPrefix(s, "heading")); err == nil && n >= 1 && n <= 9 {
			return n
		}
	}
	if outline >= 0 && outline < 9 {
		return outline + 1
	}
	return 0
}

func attr(se xml.StartElement, local string) string {
	for _, a := range se.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// docxWriter collects paragraphs into sections under their heading paths.
type docxWriter struct {
	lim  *limiter
	path []string
	secs []Section
	cur  strings.Builder
}

func (w *docxWriter) heading(level int, title string) {
	w.flush()
	if level == 0 {
		w.path = nil
		return
	}
	if level-1 < len(w.path) {
		w.path = w.path[:level-1]
	}
	for len(w.path) < level-1 {
		w.path = append(w.path, "")
	}
	w.path = append(w.path, title)
}

func (w *docxWriter) para(text string) error {
	if err := w.lim.add(len(text) + 2); err != nil {
		return err
	}
	if w.cur.Len() > 0 {
		w.cur.WriteString("\n\n")
	}
	w.cur.WriteString(text)
	return nil
}

func (w *docxWriter) flush() {
	if strings.TrimSpace(w.cur.String()) != "" {
		w.secs = append(w.secs, Section{Text: w.cur.String(), Heading: headingPath(w.path)})
	}
	w.cur.Reset()
}

func (w *docxWriter) finish() []Section {
	w.flush()
	return w.secs
}
