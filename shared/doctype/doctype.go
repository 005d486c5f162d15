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

// Raster images, read through OCR.
const (
	PNG  Type = "png"
	JPEG Type = "jpeg"
	TIFF Type = "tiff"
	WebP Type = "webp"
)

// IsImage reports whether t is a raster image format (its text comes from OCR).
func (t Type) IsImage() bool {
	switch t {
	case PNG, JPEG, TIFF, WebP:
		return true
	}
	return false
}

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
	if ct, ok := formatContentTypes[t]; ok {
		return ct
	}
	switch t {
	case PDF:
		return "application/pdf"
	case DOCX:
		return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	case Markdown:
		return "text/markdown; charset=utf-8"
	case HTML:
		return "text/html"
	case PNG, JPEG, TIFF, WebP:
		return "image/" + string(t)
	}
	return "text/plain; charset=utf-8"
}

// Sniff identifies the format of a document from its first bytes (up to [SniffLen]). The
// filename only chooses between formats the bytes cannot tell apart (Markdown or CSV versus
// plain text, an Office package whose part names lie past the sniffed bytes). It returns [ErrEmpty], [ErrLegacyDoc] or [ErrUnsupported] for files Quire cannot read.
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
		return sniffZip(head, ext)
	case bytes.HasPrefix(head, []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")):
		// An OLE2 compound file: binary Word (.doc) in practice; also old Excel and
		// PowerPoint files and password-protected Office files, which Quire cannot read either.
		return "", ErrLegacyDoc
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, nil
	case bytes.HasPrefix(head, []byte("\xFF\xD8\xFF")):
		return JPEG, nil
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")):
		return TIFF, nil
	case len(head) >= 12 && bytes.HasPrefix(head, []byte("RIFF")) && string(head[8:12]) == "WEBP":
		return WebP, nil
	case bytes.HasPrefix(head, []byte(`{\rtf`)):
		return RTF, nil
	}
	text, ok := textual(head)
	if !ok {
		return "", fmt.Errorf("%w: binary content", ErrUnsupported)
	}
	if looksHTML(text) {
		return HTML, nil
	}
	if t, ok := sniffTextual(text, ext); ok {
		return t, nil
	}
	switch ext {
	case ".html", ".htm", ".xhtml":
		// A fragment ("<div>…") names its format only through its filename.
		if strings.HasPrefix(strings.TrimLeft(text, " \t\r\n\ufeff"), "<") {
			return HTML, nil
		}
	case ".md", ".markdown", ".mdown", ".mkd", ".mkdn":
		return Markdown, nil
	}
	return Text, nil
}

// sniffZip tells the zip-based formats apart by the part names and the `mimetype` entry in
// their first local headers (they come first in every producer seen: [Content_Types].xml,
// _rels, word/; mimetype for OpenDocument and EPUB).
func sniffZip(head []byte, ext string) (Type, error) {
	if t, ok := sniffPackage(head, ext); ok {
		return t, nil
	}
	return "", fmt.Errorf("%w: zip archive that is not an Office, OpenDocument or EPUB file", ErrUnsupported)
}

// pdfAfterJunk accepts the PDF header within the first KiB, as PDF readers do.
func pdfAfterJunk(head []byte) bool {
	n := min(len(head), 1024)
	return bytes.Contains(head[:n], []byte("%PDF-"))
}

// textual reports whether head looks like text in a supported encoding and returns it as
// UTF-8 for structural checks.
func textual(head []byte) (string, bool) {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return decodeUTF16Prefix(head[2:], head[0] == 0xFE), true
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		head = head[3:]
	}
	if big, ok := UTF16NoBOM(head); ok {
		return decodeUTF16Prefix(head, big), true
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
	return s, true
}

// UTF16NoBOM recognises UTF-16 text without a byte-order mark: mostly ASCII-range text whose
// every other byte is zero. It reports whether it is big-endian.
func UTF16NoBOM(head []byte) (big, ok bool) {
	n := len(head) &^ 1
	if n < 16 {
		return false, false
	}
	var zeroEven, zeroOdd int
	for i := 0; i < n; i += 2 {
		if head[i] == 0 {
			zeroEven++
		}
		if head[i+1] == 0 {
			zeroOdd++
		}
	}
	pairs := n / 2
	switch {
	case zeroOdd*10 >= pairs*9 && zeroEven*10 < pairs:
		return false, true
	case zeroEven*10 >= pairs*9 && zeroOdd*10 < pairs:
		return true, true
	}
	return false, false
}

func decodeUTF16Prefix(b []byte, big bool) string {
	var sb strings.Builder
	for i := 0; i+1 < len(b); i += 2 {
		var r rune
		if big {
			r = rune(b[i])<<8 | rune(b[i+1])
		} else {
			r = rune(b[i+1])<<8 | rune(b[i])
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case; prefix is lower-case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// looksHTML reports whether text starts like an HTML page (in any letter case).
func looksHTML(text string) bool {
	s := strings.TrimLeft(text, " \t\r\n\ufeff")
	// Skip an XML declaration and leading comments (XHTML, saved pages).
	for {
		switch {
		case hasPrefixFold(s, "<?xml"):
			i := strings.Index(s, "?>")
			if i < 0 {
				return false
			}
			s = strings.TrimLeft(s[i+2:], " \t\r\n")
			continue
		case strings.HasPrefix(s, "<!--"):
			i := strings.Index(s, "-->")
			if i < 0 {
				return strings.Contains(strings.ToLower(s), "<html")
			}
			s = strings.TrimLeft(s[i+3:], " \t\r\n")
			continue
		}
		break
	}
	for _, p := range []string{"<!doctype html", "<html", "<head", "<body"} {
		if hasPrefixFold(s, p) {
			return true
		}
	}
	return false
}
