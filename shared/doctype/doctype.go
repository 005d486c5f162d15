// Package doctype recognises the document formats Quire ingests from their bytes, never from
// the filename or a client's Content-Type alone. The API uses it to answer 415 before anything
// is enqueued; the worker uses it again before extraction.
package doctype

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// Type is a document format.
type Type string

// The formats Quire extracts.
const (
	PDF      Type = "pdf"
	DOCX     Type = "docx"
	Text     Type = "text"
	Markdown Type = "markdown"
	HTML     Type = "html"
)

// SniffLen is how many leading bytes [Sniff] looks at.
const SniffLen = 8192

// Errors returned by [Sniff].
var (
	ErrUnsupported = errors.New("doctype: unsupported document type")
	ErrEmpty       = errors.New("doctype: empty file")
	ErrLegacyDoc   = errors.New("doctype: legacy binary Word .doc file; convert it to .docx")
)

// ContentType is the canonical MIME type of t.
func (t Type) ContentType() string {
	switch t {
	case PDF:
		return "application/pdf"
	case DOCX:
		return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	case Markdown:
		return "text/markdown; charset=utf-8"
	case HTML:
		return "text/html"
	}
	return "text/plain; charset=utf-8"
}

// Sniff identifies the format of a document from its first bytes (up to [SniffLen]). The
// filename only chooses between formats the bytes cannot tell apart (Markdown versus plain
// text). It returns [ErrEmpty], [ErrLegacyDoc] or [ErrUnsupported] for files Quire cannot read.
func Sniff(head []byte, filename string) (Type, error) {
	if len(head) > SniffLen {
		head = head[:SniffLen]
	}
	if len(head) == 0 {
		return "", ErrEmpty
	}
	ext := strings.ToLower(path.Ext(filename))
	switch {
	case bytes.HasPrefix(head, []byte("%PDF-")) || pdfAfterJunk(head):
		return PDF, nil
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		if bytes.Contains(head, []byte("word/")) || bytes.Contains(head, []byte("[Content_Types].xml")) {
			return DOCX, nil
		}
		return "", fmt.Errorf("%w: zip archive that is not a Word .docx", ErrUnsupported)
	case bytes.HasPrefix(head, []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")):
		return "", ErrLegacyDoc
	}
	text, ok := textual(head)
	if !ok {
		return "", fmt.Errorf("%w: binary content", ErrUnsupported)
	}
	if looksHTML(text) {
		return HTML, nil
	}
	if ext == ".md" || ext == ".markdown" {
		return Markdown, nil
	}
	return Text, nil
}

// pdfAfterJunk accepts the PDF header within the first KiB, as PDF readers do.
func pdfAfterJunk(head []byte) bool {
	n := min(len(head), 1024)
	return bytes.Contains(head[:n], []byte("%PDF-"))
}

// textual reports whether head looks like text in a supported encoding and returns it
// lower-cased as UTF-8 for structural checks.
func textual(head []byte) (string, bool) {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return decodeUTF16Prefix(head), true
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		head = head[3:]
	}
	ctrl := 0
	for _, c := range head {
		if c == 0 {
			return "", false
		}
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != 0x1b {
			ctrl++
		}
	}
	if ctrl*100 > len(head) {
		return "", false
	}
	s := string(head)
	if !utf8.ValidString(s) {
		// A single-byte encoding such as Latin-1 or Windows-1252; the worker converts it.
		s = strings.ToValidUTF8(s, " ")
	}
	return strings.ToLower(s), true
}

func decodeUTF16Prefix(head []byte) string {
	big := head[0] == 0xFE
	var b strings.Builder
	for i := 2; i+1 < len(head); i += 2 {
		var r rune
		if big {
			r = rune(head[i])<<8 | rune(head[i+1])
		} else {
			r = rune(head[i+1])<<8 | rune(head[i])
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}

func looksHTML(lower string) bool {
	s := strings.TrimLeft(lower, " \t\r\n\ufeff")
	for _, p := range []string{"<!doctype html", "<html", "<head", "<body", "<!--"} {
		if strings.HasPrefix(s, p) {
			return p != "<!--" || strings.Contains(s, "<html")
		}
	}
	return false
}
