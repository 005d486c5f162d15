package extract

import (
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/doctype"
)

// fuzzFormat checks that any input of format t either extracts or fails with one of the
// package's errors, and never by a recovered parser panic.
func fuzzFormat(f *testing.F, t doctype.Type, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	e := newExtractor(f, Options{})
	f.Fuzz(func(t2 *testing.T, data []byte) {
		_, err := extractBytes(t2, e, data, t)
		if err != nil && (!permanent(err) || strings.Contains(err.Error(), "parser panic")) {
			t2.Fatalf("%s: %v", t, err)
		}
	})
}

func FuzzRTF(f *testing.F) {
	fuzzFormat(f, doctype.RTF,
		[]byte(`{\rtf1\ansi\ansicpg1251 \'e9\u1060?\uc2\u-3\'41\'42 x\par{\*\x y}\trowd a\cell\row}`),
		[]byte(`{\rtf1 {\bin5 ab`), []byte(`\`), []byte(`{\rtf1 \u`), []byte(`{\rtf1 \'`))
}

func FuzzEML(f *testing.F) {
	fuzzFormat(f, doctype.EML,
		[]byte("Subject: a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nx\r\n--b--\r\n"),
		[]byte("Subject: =?utf-8?b?invalid?=\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n"),
		[]byte("From: a\r\nContent-Type: multipart/alternative; boundary=\"q\"\r\n\r\n--q\r\nContent-Type: text/html; charset=koi8-r\r\n\r\n<p>\xf0\xd2\xc9</p>\r\n--q"))
}

func FuzzDelimited(f *testing.F) {
	fuzzFormat(f, doctype.CSV, []byte("a,b\n\"x\ny\",\"q\"\"\"\n"), []byte("\"unterminated"), []byte("\xff\xfe,\x00"))
}

func FuzzPackages(f *testing.F) {
	for _, typ := range []doctype.Type{doctype.PPTX, doctype.XLSX, doctype.EPUB, doctype.ODT} {
		f.Add(string(typ), []byte(nil))
	}
	seeds := map[doctype.Type][]byte{
		doctype.PPTX: makeZip(f, pptxParts()...),
		doctype.XLSX: makeZip(f, xlsxParts(`<si><t>a</t></si>`, sheetXML(`<row><c t="s"><v>0</v></c></row>`))...),
		doctype.EPUB: makeZip(f, epubParts("<p>x</p>")...),
	}
	for typ, data := range seeds {
		f.Add(string(typ), data)
	}
	e := newExtractor(f, Options{})
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		switch doctype.Type(typ) {
		case doctype.PPTX, doctype.XLSX, doctype.EPUB, doctype.ODT, doctype.ODS, doctype.ODP:
		default:
			return
		}
		_, err := extractBytes(t, e, data, doctype.Type(typ))
		if err != nil && (!permanent(err) || strings.Contains(err.Error(), "parser panic")) {
			t.Fatalf("%s: %v", typ, err)
		}
	})
}
