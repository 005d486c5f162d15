package extract

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/doctype"
)

func TestDelimited(t *testing.T) {
	e := newExtractor(t, Options{})
	tests := []struct {
		name string
		typ  doctype.Type
		data string
		want []Section
	}{
		{"csv with header", doctype.CSV, "name,city,notes\nAnn,Oslo,\"likes, commas\"\n\nBob,\"Rome\nItaly\",\n", []Section{
			{Text: "name: Ann; city: Oslo; notes: likes, commas", Location: doctype.Location{RowStart: 2, RowEnd: 2}},
			{Text: "name: Bob; city: Rome Italy", Location: doctype.Location{RowStart: 3, RowEnd: 3}},
		}},
		{"csv without header", doctype.CSV, "1,2,3\n4,5\n", []Section{
			{Text: "1 | 2 | 3", Location: doctype.Location{RowStart: 1, RowEnd: 1}},
			{Text: "4 | 5", Location: doctype.Location{RowStart: 2, RowEnd: 2}},
		}},
		{"tsv latin-1 with a stray quote", doctype.TSV, "word\tmeaning\ncaf\xe9\ta 5\" coffee\n", []Section{
			{Text: "word: café; meaning: a 5\" coffee", Location: doctype.Location{RowStart: 2, RowEnd: 2}},
		}},
		{"csv with a BOM", doctype.CSV, "\ufeffid,x\n1,y\n", []Section{
			{Text: "id: 1; x: y", Location: doctype.Location{RowStart: 2, RowEnd: 2}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := extractBytes(t, e, []byte(tt.data), tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(doc.Sections) != fmt.Sprint(tt.want) {
				t.Fatalf("sections %+v\nwant %+v", doc.Sections, tt.want)
			}
		})
	}
	wide := strings.Repeat("x,", maxRowCells+1) + "\n"
	if _, err := extractBytes(t, e, []byte(wide), doctype.CSV); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("row of %d fields: err = %v, want ErrTooLarge", maxRowCells+2, err)
	}
}

func TestRTF(t *testing.T) {
	e := newExtractor(t, Options{})
	src := `{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\froman Times New Roman;}}{\colortbl;\red0\green0\blue0;}` +
		`{\info{\title Minutes}{\author Ann}}{\*\generator Writer;}{\header Page header\par}` +
		`\pard\plain Caf\'e9 cr\u232\'e8me and na\uc0\u239 ve\par` +
		`{\b Bold} text with \{braces\} and a\tab tab.\par` +
		`{\pict\pngblip 89504e470d0a}\par` +
		`\trowd\cellx1000\cellx2000 A1\cell B1\cell\row ` +
		`\uc1 Emoji \u-10179?\u-8704? end\par}`
	doc, err := extractBytes(t, e, []byte(src), doctype.RTF)
	if err != nil {
		t.Fatal(err)
	}
	want := "Café crème and naïve\n\nBold text with {braces} and a\ttab.\n\nA1 | B1\n\nEmoji \U0001F600 end"
	if doc.Title != "Minutes" || len(doc.Sections) != 1 || doc.Sections[0].Text != want {
		t.Fatalf("title %q sections %+v\nwant text %q", doc.Title, doc.Sections, want)
	}
}

func TestRTFHostile(t *testing.T) {
	e := newExtractor(t, Options{})
	tests := []struct {
		name    string
		data    string
		wantErr error
	}{
		{"100k nested groups", `{\rtf1 ` + strings.Repeat("{", 100_000) + "x" + strings.Repeat("}", 100_000) + "}", ErrTooLarge},
		{"only markup", `{\rtf1\ansi{\fonttbl{\f0 Arial;}}}`, ErrEmpty},
		{"unbalanced and truncated", `{\rtf1 text}}}} more \'`, nil},
		{"binary data", `{\rtf1 before {\bin4 ` + "\x00}{\\" + ` after}\par}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := extractBytes(t, e, []byte(tt.data), doctype.RTF)
			if tt.wantErr == nil {
				if err != nil || strings.ContainsRune(allText(doc), 0) {
					t.Fatalf("err = %v, text %q", err, allText(doc))
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

const mailHead = "From: =?UTF-8?Q?Ren=C3=A9e?= <renee@example.com>\r\nTo: team@example.com\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nSubject: =?UTF-8?B?UXVhcnRlcmx5IHJlc3VsdHM=?=\r\nMIME-Version: 1.0\r\n"

func TestEML(t *testing.T) {
	e := newExtractor(t, Options{})
	msg := mailHead + "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" +
		"--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSales grew =E9norm=\r\nously.\r\n\r\nSee the report.\r\n" +
		"--alt\r\nContent-Type: text/html\r\n\r\n<p>Sales grew enormously (HTML).</p>\r\n--alt--\r\n" +
		"--outer\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		strings.Repeat("QUJDREVGR0hJ\r\n", 1366) +
		"--outer\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><h1>Footer</h1><p>Sent from the <b>HTML</b> part.</p></body></html>\r\n" +
		"--outer--\r\n"
	doc, err := extractBytes(t, e, []byte(msg), doctype.EML)
	if err != nil {
		t.Fatal(err)
	}
	text := allText(doc)
	for _, want := range []string{
		"From: Renée <renee@example.com>", "Subject: Quarterly results", "Sales grew énormously.", "See the report.",
		"Attachment report.pdf (application/pdf, 12 KB) not ingested:", "Sent from the HTML part.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "(HTML)") {
		t.Errorf("the HTML alternative was read besides the plain text:\n%s", text)
	}
	if doc.Title != "Quarterly results" || doc.Sections[0].Heading != "Quarterly results" {
		t.Errorf("title %q, heading %q", doc.Title, doc.Sections[0].Heading)
	}
}

func TestEMLHostile(t *testing.T) {
	e := newExtractor(t, Options{})
	nested := func(depth int) string {
		var b strings.Builder
		b.WriteString(mailHead)
		for i := range depth {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
		}
		b.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
		for i := depth - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
		return b.String()
	}
	many := func(n int) string {
		var b strings.Builder
		b.WriteString(mailHead + "Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n")
		for range n {
			b.WriteString("--m\r\nContent-Type: text/plain\r\n\r\nx\r\n")
		}
		b.WriteString("--m--\r\n")
		return b.String()
	}
	tests := []struct {
		name    string
		data    string
		wantErr error
	}{
		{"deep multipart nesting", nested(10_000), ErrTooLarge},
		{"many parts", many(maxMIMEParts + 10), ErrTooLarge},
		{"huge header", "Subject: x\r\nX-Long: " + strings.Repeat("a", maxMailHeaderBytes+10) + "\r\n\r\nbody", ErrTooLarge},
		{"no boundary", mailHead + "Content-Type: multipart/mixed\r\n\r\nbody", ErrCorrupt},
		{"not a message", "\x00\x01\x02", ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := extractBytes(t, e, []byte(tt.data), doctype.EML)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	// Within the limits, nesting works.
	if doc, err := extractBytes(t, e, []byte(nested(maxMIMEDepth-2)), doctype.EML); err != nil || !strings.Contains(allText(doc), "deep") {
		t.Fatalf("nesting within the limit: %v", err)
	}
}
