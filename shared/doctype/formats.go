package doctype

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"io"
	"strings"
)

// Office, e-book, mail and table formats.
const (
	PPTX Type = "pptx"
	XLSX Type = "xlsx"
	ODT  Type = "odt"
	ODS  Type = "ods"
	ODP  Type = "odp"
	EPUB Type = "epub"
	RTF  Type = "rtf"
	EML  Type = "eml"
	CSV  Type = "csv"
	TSV  Type = "tsv"
)

var formatContentTypes = map[Type]string{
	PPTX: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	ODT:  "application/vnd.oasis.opendocument.text",
	ODS:  "application/vnd.oasis.opendocument.spreadsheet",
	ODP:  "application/vnd.oasis.opendocument.presentation",
	EPUB: "application/epub+zip",
	RTF:  "application/rtf",
	EML:  "message/rfc822",
	CSV:  "text/csv; charset=utf-8",
	TSV:  "text/tab-separated-values; charset=utf-8",
}

// zipMimetypes maps the `mimetype` entry that OpenDocument and EPUB packages store first,
// uncompressed, to the format.
var zipMimetypes = []struct {
	mime string
	typ  Type
}{
	{"application/vnd.oasis.opendocument.text", ODT},
	{"application/vnd.oasis.opendocument.spreadsheet", ODS},
	{"application/vnd.oasis.opendocument.presentation", ODP},
	{"application/epub+zip", EPUB},
}

// zipEntryNames lists the names of the local file headers at the start of a zip archive, as
// far as head reaches; it stops at an entry whose size is only known after its data.
func zipEntryNames(head []byte) (names []string, mimetype string) {
	for off := 0; off+30 <= len(head); {
		h := head[off:]
		if !bytes.HasPrefix(h, []byte("PK\x03\x04")) {
			break
		}
		flags := binary.LittleEndian.Uint16(h[6:])
		method := binary.LittleEndian.Uint16(h[8:])
		csize := int(binary.LittleEndian.Uint32(h[18:]))
		nlen := int(binary.LittleEndian.Uint16(h[26:]))
		xlen := int(binary.LittleEndian.Uint16(h[28:]))
		if 30+nlen > len(h) {
			break
		}
		name := string(h[30 : 30+nlen])
		names = append(names, name)
		data := 30 + nlen + xlen
		if name == "mimetype" && method == 0 && data+csize <= len(h) && csize < 200 {
			mimetype = strings.TrimSpace(string(h[data : data+csize]))
		}
		if flags&0x8 != 0 || csize < 0 {
			break
		}
		off += data + csize
	}
	return names, mimetype
}

// sniffPackage recognises the zip-based formats other than DOCX: OpenDocument and EPUB by
// their `mimetype` entry, PowerPoint and Excel packages by their part names. ok is false
// when the head says nothing of them.
func sniffPackage(head []byte, ext string) (Type, bool) {
	names, mimetype := zipEntryNames(head)
	for _, m := range zipMimetypes {
		if mimetype == m.mime || bytes.Contains(head, []byte("mimetype"+m.mime)) {
			return m.typ, true
		}
	}
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, "word/"):
			return DOCX, true
		case strings.HasPrefix(n, "ppt/"):
			return PPTX, true
		case strings.HasPrefix(n, "xl/"):
			return XLSX, true
		}
	}
	switch {
	case bytes.Contains(head, []byte("word/")):
		return DOCX, true
	case bytes.Contains(head, []byte("ppt/")):
		return PPTX, true
	case bytes.Contains(head, []byte("xl/")):
		return XLSX, true
	case bytes.Contains(head, []byte("[Content_Types].xml")):
		// An Office package whose parts start past the sniffed bytes: the extension
		// chooses, Word by default (the worker's reader checks the parts themselves).
		switch ext {
		case ".pptx", ".pptm", ".ppsx":
			return PPTX, true
		case ".xlsx", ".xlsm":
			return XLSX, true
		}
		return DOCX, true
	}
	return "", false
}

// sniffTextual recognises the textual formats that plain text cannot be told from by a
// prefix: e-mail messages (an RFC 822 header block) and delimited tables (by extension, or
// by a consistent structure).
func sniffTextual(text, ext string) (Type, bool) {
	if looksEML(text, ext == ".eml") {
		return EML, true
	}
	switch ext {
	case ".csv":
		return CSV, true
	case ".tsv", ".tab":
		return TSV, true
	case ".txt", ".text", ".md", ".markdown", ".log":
		return "", false
	}
	if delimited(text, '\t') {
		return TSV, true
	}
	if delimited(text, ',') {
		return CSV, true
	}
	return "", false
}

// mailHeaders are the header fields counted as evidence of a message.
var mailHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "subject": true, "date": true, "message-id": true,
	"mime-version": true, "received": true, "return-path": true, "content-type": true,
	"delivered-to": true, "reply-to": true, "in-reply-to": true, "references": true,
	"x-mailer": true, "user-agent": true, "sender": true, "content-transfer-encoding": true,
}

// looksEML reports whether text starts with an RFC 822 header block: every line up to the
// first blank one (or the end of the sniffed bytes) is a field or a folded continuation, with
// at least three well-known fields including From (one, with the .eml extension).
func looksEML(text string, named bool) bool {
	text = strings.TrimPrefix(text, "\ufeff")
	known, from, fields := 0, false, 0
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		if i == len(lines)-1 && i > 0 {
			break // cut by the sniff length
		}
		if line[0] == ' ' || line[0] == '\t' {
			if fields == 0 {
				return false
			}
			continue
		}
		if i == 0 && strings.HasPrefix(line, "From ") {
			continue // an mbox "From " separator line
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || strings.ContainsAny(line[:colon], " \t") {
			return false
		}
		fields++
		name := strings.ToLower(line[:colon])
		if mailHeaders[name] {
			known++
			from = from || name == "from"
		}
	}
	if named {
		return known >= 1
	}
	return known >= 3 && from
}

// delimited reports whether text is a table separated by sep: at least five lines, each
// with the same number (two or more) of fields, quoted fields allowed, and most lines with a
// first field (text indented by one tab on every line is not a table).
func delimited(text string, sep rune) bool {
	if !strings.ContainsRune(text, sep) {
		return false
	}
	if i := strings.LastIndexByte(text, '\n'); i > 0 && len(text) >= SniffLen {
		text = text[:i] // the last line may be cut by the sniff length
	}
	r := csv.NewReader(strings.NewReader(text))
	r.Comma = sep
	r.FieldsPerRecord = 0 // every record must have as many fields as the first
	r.LazyQuotes = sep == '\t'
	rows, firsts := 0, 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil || len(rec) < 2 {
			return false
		}
		rows++
		if strings.TrimSpace(rec[0]) != "" {
			firsts++
		}
	}
	return rows >= 5 && firsts*2 > rows
}
