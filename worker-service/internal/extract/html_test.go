package extract

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/quirehq/quire/shared/doctype"
)

const articleBody = `<p>The river authority published its annual report on Tuesday, describing a year of record rainfall and the flood defences that held along the lower valley.</p>
<p>Engineers said the new embankments, finished in spring, kept water out of four villages during the November storms, when the gauge at the old bridge reached its highest level in forty years.</p>
<p>The report also recommends restoring wetlands upstream, which would slow the water before it reaches the towns, and asks the regional council to fund a study of the northern tributaries next year.</p>
<p>Residents who attended the public meeting welcomed the findings but asked for better warnings, since several families learned of the evacuation order from neighbours rather than from the authority itself.</p>`

func newsPage(charsetMeta string) string {
	return `<!DOCTYPE html><html><head>` + charsetMeta + `<title>Flood report | Valley News</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/politics">Politics</a></li><li><a href="/sport">Sport</a></li><li><a href="/weather">Weather navigation link</a></li></ul></nav>
<header><div class="logo">Valley News masthead</div></header>
<main><article><h1>Flood defences held, report says</h1>` + articleBody + `<h2>What happens next</h2><p>The council will vote on the wetland study in March, after a consultation with farmers whose land lies in the proposed flood plain.</p></article></main>
<aside><h3>Most read</h3><ul><li><a href="/a">Celebrity sidebar story</a></li><li><a href="/b">Another sidebar story</a></li></ul></aside>
<footer><p>Copyright Valley News footer text. All rights reserved.</p></footer>
<script>var tracking = "script text must not appear";</script>
</body></html>`
}

func TestHTMLMainContent(t *testing.T) {
	e := extractor(t, EnginePDFium)
	page := newsPage(`<meta charset="utf-8">`)
	for _, via := range []string{"Extract", "ExtractHTML"} {
		t.Run(via, func(t *testing.T) {
			var doc *Document
			var err error
			if via == "Extract" {
				doc, err = extractBytes(t, e, []byte(page), doctype.HTML)
			} else {
				doc, err = e.ExtractHTML(t.Context(), []byte(page), "text/html; charset=utf-8", "https://news.example/flood")
			}
			if err != nil {
				t.Fatal(err)
			}
			text := allText(doc)
			for _, want := range []string{"record rainfall", "highest level in forty years", "northern tributaries", "vote on the wetland study"} {
				if !strings.Contains(text, want) {
					t.Errorf("main content lacks %q:\n%s", want, text)
				}
			}
			for _, not := range []string{"Weather navigation link", "Celebrity sidebar", "footer text", "script text", "masthead"} {
				if strings.Contains(text, not) {
					t.Errorf("boilerplate %q kept:\n%s", not, text)
				}
			}
			if !strings.Contains(doc.Title, "Flood") {
				t.Errorf("Title = %q", doc.Title)
			}
			if doc.Type != doctype.HTML {
				t.Errorf("Type = %q", doc.Type)
			}
		})
	}
}

// TestHTMLDocumentationPage: a long page of sibling sections, where readability keeps one
// section, falls back to the whole page minus navigation, with heading paths.
func TestHTMLDocumentationPage(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<html><head><title>Manual</title></head><body><div class="navheader"><a href="prev.html">Prev</a> <a href="next.html">Next</a></div><h1>Package Manual</h1>`)
	for _, sec := range []string{"Installing", "Configuring", "Upgrading", "Removing"} {
		b.WriteString(`<div class="section"><h2>` + sec + `</h2>`)
		for i := range 3 {
			b.WriteString(`<p>` + sec + ` step ` + string(rune('A'+i)) + `: run the command shown below and read its output carefully before you continue with the next step of the procedure.</p>`)
		}
		b.WriteString(`<h3>` + sec + ` options</h3><table><tr><th>Option</th><th>Meaning</th></tr><tr><td>-y</td><td>assume yes</td></tr></table></div>`)
	}
	b.WriteString(`</body></html>`)
	doc, err := extractBytes(t, extractor(t, EnginePDFium), []byte(b.String()), doctype.HTML)
	if err != nil {
		t.Fatal(err)
	}
	text := allText(doc)
	for _, sec := range []string{"Installing step A", "Configuring step B", "Upgrading step C", "Removing step A", "Option | Meaning", "-y | assume yes"} {
		if !strings.Contains(text, sec) {
			t.Errorf("text lacks %q:\n%s", sec, text)
		}
	}
	paths := map[string]bool{}
	for _, s := range doc.Sections {
		paths[s.Heading] = true
	}
	for _, p := range []string{"Package Manual > Upgrading", "Package Manual > Upgrading > Upgrading options"} {
		if !paths[p] {
			t.Errorf("no section with heading path %q; have %v", p, paths)
		}
	}
}

func TestHTMLCharsets(t *testing.T) {
	e := extractor(t, EnginePDFium)
	latin1, _ := charmap.Windows1252.NewEncoder().String(`<html><head><meta charset="windows-1252"><title>Café</title></head><body><p>Le café crème coûte très cher à Noël, déjà.</p></body></html>`)
	gbk, _ := simplifiedchinese.GBK.NewEncoder().String(`<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head><body><p>北京欢迎你，这是一段中文文本。</p></body></html>`)
	headerOnly, _ := charmap.ISO8859_1.NewEncoder().String(`<html><body><p>Größe und Übung für Jürgen.</p></body></html>`)
	tests := []struct {
		name, body, contentType, want string
	}{
		{"meta windows-1252", latin1, "", "café crème coûte très cher à Noël"},
		{"meta gb2312", gbk, "", "北京欢迎你"},
		{"utf-8 page that says gb2312", `<html><head><meta charset="gb2312"></head><body><p>北京欢迎你，这是一段中文文本。</p></body></html>`, "", "北京欢迎你"},
		{"utf-8 page, header says latin1", `<html><body><p>Größe und Übung.</p></body></html>`, "text/html; charset=iso-8859-1", "Größe und Übung"},
		{"header charset only", headerOnly, "text/html; charset=ISO-8859-1", "Größe und Übung für Jürgen"},
		{"hostile replacement charset", `<html><head><meta charset="replacement"></head><body><p>Plain words survive hostile labels.</p></body></html>`, "text/html; charset=replacement", "Plain words survive hostile labels"},
		{"hostile utf-7 charset", `<html><head><meta charset="utf-7"></head><body><p>+ADw-script+AD4- stays literal text.</p></body></html>`, "text/html; charset=utf-7", "+ADw-script+AD4- stays literal text"},
		{"absurd charset header", `<html><body><p>Header parameters that make no sense are ignored.</p></body></html>`, "text/html; charset=" + strings.Repeat("x", 5000), "are ignored"},
		{"utf-16 with bom", "\xff\xfe" + utf16le(`<html><body><p>Sixteen bit text.</p></body></html>`), "", "Sixteen bit text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := e.ExtractHTML(t.Context(), []byte(tt.body), tt.contentType, "")
			if err != nil {
				t.Fatal(err)
			}
			if text := allText(doc); !strings.Contains(text, tt.want) {
				t.Fatalf("text %q lacks %q", text, tt.want)
			}
		})
	}
}

func utf16le(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteByte(byte(r))
		b.WriteByte(byte(r >> 8))
	}
	return b.String()
}

func TestHTMLHostile(t *testing.T) {
	e := extractor(t, EnginePDFium)
	deep := strings.Repeat("<div>", 200_000) + "deep canary" + strings.Repeat("</div>", 200_000)
	wide := "<html><body>" + strings.Repeat("<p><a href='#'>x</a></p>", 150_000) + "<p>wide canary text at the end of the page</p></body></html>"
	tests := []struct {
		name    string
		body    string
		opts    Options
		wantErr error
	}{
		{name: "empty", body: "", wantErr: ErrEmpty},
		{name: "only markup", body: "<html><head><script>x()</script></head><body> </body></html>", wantErr: ErrEmpty},
		{name: "too large", body: strings.Repeat("<p>abc</p>", 200), opts: Options{MaxHTMLBytes: 1000}, wantErr: ErrTooLarge},
		{name: "text over cap", body: strings.Repeat("<p>abc def</p>", 200), opts: Options{MaxTextBytes: 100}, wantErr: ErrTooLarge},
		{name: "deep nesting", body: deep},
		{name: "many elements", body: wide},
		{name: "binary junk", body: string([]byte{0, 1, 2, 0xff, 0xfe, 0x80}) + "<p>junk canary</p>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := e
			if tt.opts != (Options{}) {
				ex = newExtractor(t, tt.opts)
			}
			doc, err := ex.ExtractHTML(t.Context(), []byte(tt.body), "", "")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil && !permanent(err) {
				t.Fatalf("err = %v, want a permanent error", err)
			}
			if err == nil && !strings.Contains(allText(doc), "canary") {
				t.Logf("no canary in %.80q", allText(doc))
			}
		})
	}
}
