package extract

import (
	"bytes"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/gogs/chardet"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/unicode"

	"github.com/quirehq/quire/shared/doctype"
)

var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
)

// decodeBOM decodes b when it starts with a byte-order mark.
func decodeBOM(b []byte) (string, string, bool) {
	switch {
	case bytes.HasPrefix(b, bomUTF8):
		return toValidUTF8(b[len(bomUTF8):]), "utf-8", true
	case bytes.HasPrefix(b, bomUTF16LE):
		return decodeWith(unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM), b), "utf-16le", true
	case bytes.HasPrefix(b, bomUTF16BE):
		return decodeWith(unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM), b), "utf-16be", true
	}
	return "", "", false
}

// decodeText converts plain text to UTF-8 and names the encoding it assumed: a byte-order
// mark wins; bytes that are valid UTF-8 are UTF-8; otherwise a statistical detector picks a
// legacy encoding when it is confident, and Windows-1252 (a superset of Latin-1) is the
// fallback.
func decodeText(b []byte) (string, string) {
	if s, name, ok := decodeBOM(b); ok {
		return s, name
	}
	if big, ok := doctype.UTF16NoBOM(b[:min(len(b), 4096)]); ok {
		if big {
			return decodeWith(unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), b), "utf-16be"
		}
		return decodeWith(unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), b), "utf-16le"
	}
	if utf8.Valid(b) {
		return string(b), "utf-8"
	}
	if enc, name := detect(b); enc != nil {
		return decodeWith(enc, b), name
	}
	return decodeWith(charmap.Windows1252, b), "windows-1252"
}

// detect guesses the legacy encoding of b, or returns nil when the guess is weak. Short texts
// are left to the caller's fallback: detectors need a few hundred bytes.
func detect(b []byte) (encoding.Encoding, string) {
	if len(b) < 256 {
		return nil, ""
	}
	sample := b[:min(len(b), 64<<10)]
	res, err := chardet.NewTextDetector().DetectBest(sample)
	if err != nil || res == nil || res.Confidence < 50 {
		return nil, ""
	}
	return lookupEncoding(res.Charset)
}

// lookupEncoding resolves a charset label to a decoder usable on untrusted input. Labels
// that would destroy the text ("replacement", UTF-7 and other unknowns) resolve to nil.
func lookupEncoding(label string) (encoding.Encoding, string) {
	label = strings.ToLower(strings.TrimSpace(label))
	if label == "" || len(label) > 40 {
		return nil, ""
	}
	enc, err := htmlindex.Get(label)
	if err != nil {
		return nil, ""
	}
	name, err := htmlindex.Name(enc)
	if err != nil || name == "replacement" || name == "x-user-defined" {
		return nil, ""
	}
	return enc, name
}

// decodeHTML converts an HTML page to UTF-8. Order: byte-order mark; a UTF-16 charset in the
// HTTP header; bytes that are valid UTF-8 (a page that says gb2312 but is UTF-8 stays
// readable); the HTTP header's charset; the page's <meta> declaration; a detector;
// Windows-1252.
func decodeHTML(b []byte, contentType string) (string, string) {
	if s, name, ok := decodeBOM(b); ok {
		return s, name
	}
	var header encoding.Encoding
	var headerName string
	if contentType != "" {
		if _, params, err := mime.ParseMediaType(contentType); err == nil {
			header, headerName = lookupEncoding(params["charset"])
		}
	}
	if header != nil && strings.HasPrefix(headerName, "utf-16") {
		return decodeWith(header, b), headerName
	}
	if utf8.Valid(b) {
		return string(b), "utf-8"
	}
	if header != nil {
		return decodeWith(header, b), headerName
	}
	// The <meta> prescan of the HTML standard (first 1024 bytes).
	if _, name, certain := charset.DetermineEncoding(b[:min(len(b), 1024)], "text/html"); certain || name != "windows-1252" {
		if enc, n := lookupEncoding(name); enc != nil && !strings.HasPrefix(n, "utf-16") && n != "utf-8" {
			return decodeWith(enc, b), n
		}
	}
	if enc, name := detect(b); enc != nil {
		return decodeWith(enc, b), name
	}
	return decodeWith(charmap.Windows1252, b), "windows-1252"
}

func decodeWith(enc encoding.Encoding, b []byte) string {
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return toValidUTF8(b)
	}
	return toValidUTF8(out)
}

func toValidUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
