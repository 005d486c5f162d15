package extract

import (
	"context"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// maxRTFDepth caps the nesting of RTF groups. Word nests a few dozen deep; a file of 100,000
// nested groups fails with ErrTooLarge instead of growing the reader's stack of group states.
const maxRTFDepth = 256

// rtf reads a Rich Text Format document with a tokenizer (control words, control symbols,
// groups), no recursion: paragraphs (\par), line breaks, tabs and table rows (cells joined
// with " | "); \'hh characters in the document's code page (\ansicpg, Windows-1252 by default)
// and \uN Unicode characters with their \ucN fallbacks skipped. Destinations that are not
// body text (font and colour tables, style sheets, pictures, objects, headers, footers,
// footnotes, fields' instructions, every \* destination) are skipped; \info's \title is the
// title. Binary data (\binN) is skipped by its length.
func (e *Extractor) rtf(ctx context.Context, r io.ReaderAt, size int64, lim *limiter) (*Document, error) {
	data, err := readAll(r, size, int64(e.opts.MaxHTMLBytes)*4)
	if err != nil {
		return nil, err
	}
	p := &rtfParser{data: data, lim: lim, w: &paraWriter{lim: lim}, enc: charmap.Windows1252}
	if err := p.run(ctx); err != nil {
		return nil, err
	}
	return &Document{Title: strings.TrimSpace(p.title.String()), Sections: p.w.finish()}, nil
}

type rtfState struct {
	skip  bool // inside a destination whose text is not body text
	title bool // inside \info\title
	uc    int  // characters to skip after \uN
}

type rtfParser struct {
	data  []byte
	pos   int
	lim   *limiter
	w     *paraWriter
	enc   encoding.Encoding
	stack []rtfState
	st    rtfState
	para  strings.Builder
	cells []string
	title strings.Builder
	skipN int    // fallback characters still to skip after a \uN
	hi    uint16 // a pending high surrogate
	bytes []byte // pending \'hh bytes, decoded together (double-byte code pages)
}

// rtfSkipped are destinations whose content is not body text.
var rtfSkipped = map[string]bool{
	"fonttbl": true, "colortbl": true, "stylesheet": true, "info": true, "pict": true,
	"object": true, "header": true, "headerl": true, "headerr": true, "headerf": true,
	"footer": true, "footerl": true, "footerr": true, "footerf": true, "footnote": true,
	"fldinst": true, "listtable": true, "listoverridetable": true, "revtbl": true,
	"rsidtbl": true, "generator": true, "xmlnstbl": true, "themedata": true,
	"colorschememapping": true, "datastore": true, "latentstyles": true, "filetbl": true,
	"pgdsctbl": true, "bkmkstart": true, "bkmkend": true, "mmathPr": true, "template": true,
	"private": true, "nonshppict": true, "shppict": true, "objdata": true, "datafield": true,
}

func (p *rtfParser) run(ctx context.Context) error {
	var tick ticker
	p.st.uc = 1
	for p.pos < len(p.data) {
		if err := tick.check(ctx); err != nil {
			return err
		}
		c := p.data[p.pos]
		switch c {
		case '{':
			p.flushBytes()
			if len(p.stack) >= maxRTFDepth {
				return errf(ErrTooLarge, "rtf", "groups nested more than %d deep", maxRTFDepth)
			}
			p.stack = append(p.stack, p.st)
			p.pos++
		case '}':
			p.flushBytes()
			if len(p.stack) == 0 {
				p.pos++ // an unbalanced close: tolerated, as readers do
				continue
			}
			p.st = p.stack[len(p.stack)-1]
			p.stack = p.stack[:len(p.stack)-1]
			p.pos++
		case '\\':
			if err := p.control(); err != nil {
				return err
			}
		case '\r', '\n':
			p.pos++
		default:
			p.flushBytes()
			p.pos++
			if p.skipN > 0 {
				p.skipN--
				continue
			}
			if err := p.text(rune(c)); err != nil {
				return err
			}
		}
	}
	p.flushBytes()
	return p.endPara()
}

// control reads a control word or symbol at p.pos (a backslash).
func (p *rtfParser) control() error {
	p.pos++
	if p.pos >= len(p.data) {
		return nil
	}
	c := p.data[p.pos]
	if !isASCIILetter(c) {
		p.pos++
		switch c {
		case '\'':
			if p.pos+2 <= len(p.data) {
				if b, err := strconv.ParseUint(string(p.data[p.pos:p.pos+2]), 16, 8); err == nil {
					p.pos += 2
					if p.skipN > 0 {
						p.skipN--
						return nil
					}
					p.bytes = append(p.bytes, byte(b))
					return nil
				}
			}
			return nil
		case '*':
			p.st.skip = true // an optional destination this reader does not know
			return nil
		case '~':
			return p.text('\u00a0')
		case '_':
			return p.text('-')
		case '-':
			return nil // optional hyphen
		case '\\', '{', '}':
			p.flushBytes()
			return p.text(rune(c))
		case '\n', '\r':
			return p.word("par", 0, false)
		case '\t':
			return p.text('\t')
		}
		return nil
	}
	start := p.pos
	for p.pos < len(p.data) && isASCIILetter(p.data[p.pos]) && p.pos-start < 32 {
		p.pos++
	}
	word := string(p.data[start:p.pos])
	arg, hasArg := 0, false
	if p.pos < len(p.data) && (p.data[p.pos] == '-' || isDigit(p.data[p.pos])) {
		ns := p.pos
		p.pos++
		for p.pos < len(p.data) && isDigit(p.data[p.pos]) && p.pos-ns < 11 {
			p.pos++
		}
		arg, _ = strconv.Atoi(string(p.data[ns:p.pos]))
		hasArg = true
	}
	if p.pos < len(p.data) && p.data[p.pos] == ' ' {
		p.pos++
	}
	if word != "u" {
		p.flushBytes()
	}
	return p.word(word, arg, hasArg)
}

func (p *rtfParser) word(word string, arg int, hasArg bool) error {
	if rtfSkipped[word] {
		p.st.skip = true
		return nil
	}
	switch word {
	case "title":
		if len(p.stack) > 0 && p.stack[len(p.stack)-1].skip {
			p.st.title = true
		}
	case "ansicpg":
		if enc := rtfCodePage(arg); enc != nil {
			p.enc = enc
		}
	case "uc":
		if arg >= 0 && arg <= 8 {
			p.st.uc = arg
		}
	case "u":
		if arg < 0 {
			arg += 65536
		}
		p.skipN = p.st.uc
		return p.unicode(uint16(arg))
	case "bin":
		if hasArg && arg > 0 {
			p.pos = min(len(p.data), p.pos+arg)
		}
	case "par", "sect", "page":
		return p.endPara()
	case "line":
		return p.text('\n')
	case "tab":
		return p.text('\t')
	case "cell", "nestcell":
		p.cells = append(p.cells, strings.TrimSpace(p.para.String()))
		p.para.Reset()
	case "row", "nestrow":
		line := strings.Join(p.cells, " | ")
		p.cells = nil
		if !p.st.skip && strings.Trim(line, " |") != "" {
			return p.w.para(line)
		}
	case "emdash":
		return p.text('—')
	case "endash":
		return p.text('–')
	case "bullet":
		return p.text('•')
	case "lquote":
		return p.text('‘')
	case "rquote":
		return p.text('’')
	case "ldblquote":
		return p.text('“')
	case "rdblquote":
		return p.text('”')
	}
	return nil
}

func (p *rtfParser) unicode(u uint16) error {
	switch {
	case utf16.IsSurrogate(rune(u)) && u < 0xDC00:
		p.hi = u
		return nil
	case utf16.IsSurrogate(rune(u)):
		r := utf16.DecodeRune(rune(p.hi), rune(u))
		p.hi = 0
		return p.text(r)
	}
	return p.text(rune(u))
}

// flushBytes decodes pending \'hh bytes in the document's code page.
func (p *rtfParser) flushBytes() {
	if len(p.bytes) == 0 {
		return
	}
	b := p.bytes
	p.bytes = p.bytes[:0]
	s, err := p.enc.NewDecoder().Bytes(b)
	if err != nil {
		s = []byte(toValidUTF8(b))
	}
	for _, r := range string(s) {
		_ = p.text(r)
	}
}

func (p *rtfParser) text(r rune) error {
	switch {
	case p.st.title:
		if p.title.Len() < 1024 {
			p.title.WriteRune(r)
		}
	case p.st.skip:
	default:
		p.para.WriteRune(r)
		if p.para.Len() > p.lim.max {
			return errf(ErrTooLarge, "rtf", "paragraph of more than %d bytes", p.lim.max)
		}
	}
	return nil
}

func (p *rtfParser) endPara() error {
	text := p.para.String()
	p.para.Reset()
	if len(p.cells) > 0 {
		// Inside a table row: \par ends a paragraph of the cell.
		p.para.WriteString(text + " ")
		return nil
	}
	return p.w.para(text)
}

func rtfCodePage(cp int) encoding.Encoding {
	switch cp {
	case 1250:
		return charmap.Windows1250
	case 1251:
		return charmap.Windows1251
	case 1252:
		return charmap.Windows1252
	case 1253:
		return charmap.Windows1253
	case 1254:
		return charmap.Windows1254
	case 1255:
		return charmap.Windows1255
	case 1256:
		return charmap.Windows1256
	case 1257:
		return charmap.Windows1257
	case 1258:
		return charmap.Windows1258
	case 437:
		return charmap.CodePage437
	case 850:
		return charmap.CodePage850
	case 10000:
		return charmap.Macintosh
	}
	return nil
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool       { return c >= '0' && c <= '9' }
