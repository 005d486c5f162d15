package extract

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"

	"github.com/quirehq/quire/shared/doctype"
)

func TestText(t *testing.T) {
	french := "Le café crème coûte très cher à Noël; déjà l'été dernier, les prix de la brasserie étaient élevés.\n"
	latin1, _ := charmap.ISO8859_1.NewEncoder().String(strings.Repeat(french, 6))
	cyr := "Привет, мир! Это пример русского текста для проверки кодировки файла.\n"
	cp1251, _ := charmap.Windows1251.NewEncoder().String(strings.Repeat(cyr, 8))
	tests := []struct {
		name    string
		data    string
		typ     doctype.Type
		opts    Options
		want    string
		wantErr error
	}{
		{name: "utf-8", data: "héllo wörld 你好\n", typ: doctype.Text, want: "héllo wörld 你好"},
		{name: "utf-8 bom", data: "\xEF\xBB\xBFbonjour à tous", typ: doctype.Text, want: "bonjour à tous"},
		{name: "utf-16le bom", data: "\xFF\xFE" + utf16le("Привет мир"), typ: doctype.Text, want: "Привет мир"},
		{name: "utf-16be bom", data: "\xFE\xFF" + utf16be("日本語のテキスト"), typ: doctype.Text, want: "日本語のテキスト"},
		{name: "utf-16le without bom", data: utf16le("plain text without a byte order mark"), typ: doctype.Text, want: "without a byte order mark"},
		{name: "latin-1", data: latin1, typ: doctype.Text, want: "café crème coûte très cher à Noël"},
		{name: "short latin-1", data: "caf\xe9 cr\xe8me", typ: doctype.Text, want: "café crème"},
		{name: "windows-1251", data: cp1251, typ: doctype.Text, want: "Привет, мир!"},
		{name: "crlf", data: "one\r\ntwo\r\n", typ: doctype.Text, want: "one\ntwo\n"},
		{name: "whitespace only", data: " \n\t\n", typ: doctype.Text, wantErr: ErrEmpty},
		{name: "zero bytes", data: "", typ: doctype.Text, wantErr: ErrEmpty},
		{name: "over cap", data: strings.Repeat("words ", 100), typ: doctype.Text, opts: Options{MaxTextBytes: 100}, wantErr: ErrTooLarge},
		{name: "unsupported type", data: "x", typ: doctype.Type("wordperfect"), wantErr: ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := extractor(t, EnginePDFium)
			if tt.opts != (Options{}) {
				e = newExtractor(t, tt.opts)
			}
			doc, err := extractBytes(t, e, []byte(tt.data), tt.typ)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := allText(doc); !strings.Contains(got, tt.want) {
				t.Fatalf("text %q lacks %q", got, tt.want)
			}
		})
	}
}

func utf16be(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteByte(byte(r >> 8))
		b.WriteByte(byte(r))
	}
	return b.String()
}

func TestMarkdownSections(t *testing.T) {
	md := "Intro before any heading.\n\n# Guide\n\nWelcome.\n\n## Install\n\nRun it.\n\n```sh\n# not a heading\nmake\n```\n\n### Linux\n\nUse apt.\n\n## Usage\nSetext Part\n-----------\n\nDetails here.\n\nTop Level\n=========\n\nLast words.\n"
	doc, err := extractBytes(t, extractor(t, EnginePDFium), []byte(md), doctype.Markdown)
	if err != nil {
		t.Fatal(err)
	}
	type sec struct{ heading, first string }
	var got []sec
	for _, s := range doc.Sections {
		got = append(got, sec{s.Heading, strings.SplitN(strings.TrimSpace(s.Text), "\n", 2)[0]})
	}
	want := []sec{
		{"", "Intro before any heading."},
		{"Guide", "# Guide"},
		{"Guide > Install", "## Install"},
		{"Guide > Install > Linux", "### Linux"},
		{"Guide > Usage", "## Usage"},
		{"Guide > Setext Part", "Setext Part"},
		{"Top Level", "Top Level"},
	}
	if len(got) != len(want) {
		t.Fatalf("sections %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("section %d = %q, want %q", i, got[i], want[i])
		}
	}
	if !strings.Contains(doc.Sections[2].Text, "# not a heading") {
		t.Errorf("fenced code lost: %q", doc.Sections[2].Text)
	}
	if doc.Title != "Guide" {
		t.Errorf("Title = %q", doc.Title)
	}
}

// TestRunRecoversPanics checks the guard every format runs under: a parser panic becomes
// ErrCorrupt, and the per-document deadline becomes ErrTooLarge while the caller's own
// cancellation stays the context's error.
func TestRunRecoversPanics(t *testing.T) {
	e := newExtractor(t, Options{Timeout: 50 * time.Millisecond})
	_, err := e.run(t.Context(), func(context.Context, *limiter) (*Document, error) {
		var m map[string]int
		m["boom"]++ // a nil map write: a runtime panic like a parser bug
		return nil, nil
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("panic: err = %v, want ErrCorrupt", err)
	}
	_, err = e.run(t.Context(), func(ctx context.Context, _ *limiter) (*Document, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("deadline: err = %v, want ErrTooLarge", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = e.run(ctx, func(ctx context.Context, _ *limiter) (*Document, error) { return nil, ctx.Err() })
	if !errors.Is(err, context.Canceled) || permanent(err) {
		t.Fatalf("cancelled: err = %v, want context.Canceled only", err)
	}
}
