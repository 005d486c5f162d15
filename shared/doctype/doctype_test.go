package doctype

import (
	"archive/zip"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func zipWith(t *testing.T, names ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("<x/>"))
	}
	zw.Close()
	return b.Bytes()
}

func utf16(s string, big bool) []byte {
	var b []byte
	for _, r := range s {
		if big {
			b = append(b, byte(r>>8), byte(r))
		} else {
			b = append(b, byte(r), byte(r>>8))
		}
	}
	return b
}

func TestSniff(t *testing.T) {
	tests := []struct {
		name     string
		head     []byte
		filename string
		want     Type
		wantErr  error
	}{
		{"pdf", []byte("%PDF-1.7\n%âãÏÓ\n1 0 obj"), "a.bin", PDF, nil},
		{"pdf after junk", append(bytes.Repeat([]byte("J"), 500), "%PDF-1.4\n"...), "x.pdf", PDF, nil},
		{"pdf too deep", append(bytes.Repeat([]byte("J"), 2000), "%PDF-1.4\n"...), "x.pdf", Text, nil},
		{"docx", zipWith(t, "[Content_Types].xml", "_rels/.rels", "word/document.xml"), "r.docx", DOCX, nil},
		{"docx named pdf", zipWith(t, "[Content_Types].xml", "word/document.xml"), "r.pdf", DOCX, nil},
		{"plain zip", zipWith(t, "photo.jpg"), "r.docx", "", ErrUnsupported},
		{"legacy doc", []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00"), "old.doc", "", ErrLegacyDoc},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "p.txt", PNG, nil},
		{"jpeg", []byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"), "scan.png", JPEG, nil},
		{"tiff little-endian", []byte("II*\x00\x08\x00\x00\x00"), "fax", TIFF, nil},
		{"tiff big-endian", []byte("MM\x00*\x00\x00\x00\x08"), "fax.tif", TIFF, nil},
		{"webp", []byte("RIFF\x24\x00\x00\x00WEBPVP8 "), "p.webp", WebP, nil},
		{"riff wave", []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00"), "a.webp", "", ErrUnsupported},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00"), "a.png", "", ErrUnsupported},
		{"empty", nil, "e.txt", "", ErrEmpty},
		{"html doctype", []byte("\n<!DOCTYPE html><html><body>x</body></html>"), "page.txt", HTML, nil},
		{"html upper case", []byte("<HTML><HEAD><TITLE>Old page</TITLE></HEAD>"), "page.txt", HTML, nil},
		{"xhtml upper prolog", []byte(`<?XML version="1.0"?>` + "\n<Html>"), "p", HTML, nil},
		{"html after an unclosed comment", []byte("<!-- generated\n<HTML><BODY>x"), "p", HTML, nil},
		{"text mentioning html", []byte("Write <html> at the top of the page.\n"), "notes.txt", Text, nil},
		{"xhtml prolog", []byte(`<?xml version="1.0" encoding="utf-8"?>` + "\n<!-- saved -->\n<html xmlns=\"http://www.w3.org/1999/xhtml\">"), "p", HTML, nil},
		{"html fragment by name", []byte("<div><p>hi</p></div>"), "frag.html", HTML, nil},
		{"fragment as text", []byte("<div><p>hi</p></div>"), "frag.txt", Text, nil},
		{"html renamed pdf", []byte("<html><head><title>FAQ</title></head>"), "faq.pdf", HTML, nil},
		{"markdown", []byte("# Title\n\nSome *text*."), "README.md", Markdown, nil},
		{"markdown upper", []byte("# Title\n"), "NOTES.MARKDOWN", Markdown, nil},
		{"text", []byte("just words\n"), "notes", Text, nil},
		{"latin-1", []byte("caf\xe9 cr\xe8me br\xfbl\xe9e"), "menu.txt", Text, nil},
		{"utf-16le bom", append([]byte{0xFF, 0xFE}, utf16("<html><body>hi", false)...), "p.htm", HTML, nil},
		{"utf-16be bom text", append([]byte{0xFE, 0xFF}, utf16("plain text here", true)...), "p.txt", Text, nil},
		{"utf-16le no bom", utf16("plain text without a byte order mark", false), "p.txt", Text, nil},
		{"utf-16be no bom", utf16("plain text without a byte order mark", true), "p.txt", Text, nil},
		{"control bytes", bytes.Repeat([]byte{0x01, 0x02, 'a', 0x03}, 100), "x.txt", "", ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Sniff(tt.head, tt.filename)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Sniff = %q, %v; want error %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Sniff = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSniffLongHead(t *testing.T) {
	// Only SniffLen bytes count: binary data after them does not matter.
	head := append([]byte(strings.Repeat("text ", SniffLen/5+10)), 0, 0, 0)
	if got, err := Sniff(head, "a.txt"); err != nil || got != Text {
		t.Fatalf("Sniff = %q, %v", got, err)
	}
}

func TestContentType(t *testing.T) {
	for typ, want := range map[Type]string{PDF: "application/pdf", HTML: "text/html", Markdown: "text/markdown; charset=utf-8", Text: "text/plain; charset=utf-8", PNG: "image/png", JPEG: "image/jpeg", TIFF: "image/tiff", WebP: "image/webp"} {
		if got := typ.ContentType(); got != want {
			t.Errorf("%s.ContentType() = %q, want %q", typ, got, want)
		}
	}
}

// BenchmarkSniff sniffs a 10 KB plain-text upload, the API's per-upload cost.
func BenchmarkSniff(b *testing.B) {
	head := bytes.Repeat([]byte("Quire sniffs the first bytes of every upload. "), 220)
	b.SetBytes(int64(min(len(head), SniffLen)))
	for b.Loop() {
		if got, err := Sniff(head, "notes.txt"); err != nil || got != Text {
			b.Fatal(got, err)
		}
	}
}

func zipStored(t *testing.T, first, content string, more ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: first, Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(content))
	for _, n := range more {
		w, _ := zw.Create(n)
		w.Write([]byte("<x/>"))
	}
	zw.Close()
	return b.Bytes()
}

func TestSniffFormats(t *testing.T) {
	mail := "Return-Path: <a@example.com>\r\nFrom: Ann <a@example.com>\r\nTo: b@example.com\r\nSubject: Minutes\r\n  of the meeting\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nHello.\r\n"
	table := "name,age,city\nAnn,31,Oslo\nBob,42,\"Rome, Italy\"\nCy,19,Lima\nDee,55,Kyiv\n"
	tests := []struct {
		name     string
		head     []byte
		filename string
		want     Type
	}{
		{"pptx", zipWith(t, "[Content_Types].xml", "_rels/.rels", "ppt/presentation.xml"), "deck.bin", PPTX},
		{"xlsx", zipWith(t, "[Content_Types].xml", "_rels/.rels", "xl/workbook.xml"), "r.docx", XLSX},
		{"pptx by name", zipWith(t, "[Content_Types].xml"), "deck.pptx", PPTX},
		{"xlsx by name", zipWith(t, "[Content_Types].xml"), "book.XLSX", XLSX},
		{"office defaults to docx", zipWith(t, "[Content_Types].xml"), "x.zip", DOCX},
		{"odt", zipStored(t, "mimetype", "application/vnd.oasis.opendocument.text", "content.xml"), "r.bin", ODT},
		{"ods", zipStored(t, "mimetype", "application/vnd.oasis.opendocument.spreadsheet"), "r", ODS},
		{"odp", zipStored(t, "mimetype", "application/vnd.oasis.opendocument.presentation"), "r", ODP},
		{"epub", zipStored(t, "mimetype", "application/epub+zip", "META-INF/container.xml"), "book.zip", EPUB},
		{"rtf", []byte(`{\rtf1\ansi hello}`), "r.doc", RTF},
		{"eml", []byte(mail), "message", EML},
		{"eml mbox line", []byte("From a@example.com Mon Dec  7 10:00:00 2026\n" + strings.ReplaceAll(mail, "\r", "")), "m", EML},
		{"eml by name", []byte("Subject: hi\n\nbody\n"), "m.eml", EML},
		{"text with a colon", []byte("Note: this is prose.\nFrom: nobody in particular\n\nMore.\n"), "notes", Text},
		{"csv by name", []byte("just one column\n"), "a.csv", CSV},
		{"tsv by name", []byte("a\tb\n"), "a.tsv", TSV},
		{"csv by structure", []byte(table), "export", CSV},
		{"tsv by structure", []byte(strings.ReplaceAll(strings.ReplaceAll(table, "\"Rome, Italy\"", "Rome"), ",", "\t")), "export", TSV},
		{"prose with commas", []byte("Hello, world.\nThis, that, and the other.\nOne line\nTwo, lines\nEnd\n"), "notes", Text},
		{"csv named txt", []byte(table), "notes.txt", Text},
		{"text indented by a tab", []byte("\tone\n\ttwo\n\tthree\n\tfour\n\tfive\n"), "poem", Text},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Sniff(tt.head, tt.filename)
			if err != nil || got != tt.want {
				t.Fatalf("Sniff = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestLocation(t *testing.T) {
	if b := (Location{}).JSON(); b != nil {
		t.Fatalf("zero location JSON = %s, want nil", b)
	}
	if got := string(Location{Page: 3}.JSON()); got != `{"page":3}` {
		t.Fatalf("page JSON = %s", got)
	}
	l := Location{Sheet: "Sales", RowStart: 2, RowEnd: 2}.Extend(Location{Sheet: "Sales", RowStart: 7, RowEnd: 9})
	if got := string(l.JSON()); got != `{"sheet":"Sales","row_start":2,"row_end":9}` {
		t.Fatalf("extended JSON = %s", got)
	}
	if l := (Location{Sheet: "A", RowStart: 1, RowEnd: 1}).Extend(Location{Sheet: "B", RowStart: 5, RowEnd: 5}); l.RowEnd != 1 {
		t.Fatalf("extended across sheets: %+v", l)
	}
}
