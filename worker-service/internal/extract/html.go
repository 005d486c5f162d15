package extract

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"codeberg.org/readeck/go-readability/v2"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/quirehq/quire/shared/doctype"
)

const (
	// readabilityMinShare: readability's article is used unless it keeps less than this share
	// of the text of the page stripped of its boilerplate (long documentation pages, where it
	// keeps one section). Measured in the project's extraction evaluation.
	readabilityMinShare = 0.6
	// readabilityMaxElems and readabilityMaxDepth bound readability's work, which cannot be
	// interrupted and grows faster than the page (20,000 paragraphs under one parent take it
	// about 2 s on one core); larger pages use the boilerplate-stripped page. Real articles and
	// documentation pages have a few thousand elements, under 40 deep.
	readabilityMaxElems = 20_000
	readabilityMaxDepth = 128
	// htmlMaxDepth bounds the element nesting walked (hostile pages nest a million divs; deeper
	// text is dropped rather than recursing without end).
	htmlMaxDepth = 512
)

// html extracts the main content of an HTML page: go-readability's article, or, when that
// keeps too little of the page, the whole page without navigation, headers, footers, asides
// and forms. Headings (h1–h6) become section heading paths; tables come out row by row.
func (e *Extractor) html(ctx context.Context, data []byte, contentType, pageURL string, lim *limiter) (*Document, error) {
	text, _ := decodeHTML(data, contentType)
	page, err := html.Parse(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("%w: html: %v", ErrCorrupt, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doc := &Document{Type: doctype.HTML, Title: pageTitle(page)}
	depth, elems := treeShape(page)

	sections := htmlSections(boilerplateFree(page)) // the fallback: the page minus boilerplate
	whole := textSize(sections)
	if depth <= readabilityMaxDepth && elems <= readabilityMaxElems {
		// readability rewrites the tree it is given, so it gets its own copy.
		if cp, err := html.Parse(strings.NewReader(text)); err == nil {
			var u *url.URL
			if pu, err := url.Parse(pageURL); err == nil && pu.IsAbs() {
				u = pu
			}
			p := readability.NewParser()
			p.MaxElemsToParse = readabilityMaxElems
			if art, err := p.ParseDocument(cp, u); err == nil && art.Node != nil {
				if t := strings.TrimSpace(art.Title()); t != "" {
					doc.Title = t
				}
				stripBoilerplate(art.Node) // readability keeps the whole body of short pages
				main := htmlSections(art.Node)
				if float64(textSize(main)) >= readabilityMinShare*float64(whole) {
					sections = main
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doc.Sections = sections
	if err := lim.add(doc.Len()); err != nil {
		return nil, err
	}
	if doc.Title == "" {
		for _, s := range doc.Sections {
			if s.Heading != "" {
				doc.Title, _, _ = strings.Cut(s.Heading, " > ")
				break
			}
		}
	}
	return doc, nil
}

// textSize counts the non-space characters of sections.
func textSize(secs []Section) int {
	n := 0
	for _, s := range secs {
		for _, r := range s.Text {
			if !unicode.IsSpace(r) {
				n++
			}
		}
	}
	return n
}

// treeShape returns the deepest element nesting and the element count, without recursion.
func treeShape(root *html.Node) (depth, elems int) {
	type item struct {
		n *html.Node
		d int
	}
	stack := []item{{root, 0}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.n.Type == html.ElementNode {
			elems++
		}
		depth = max(depth, it.d)
		for c := it.n.FirstChild; c != nil; c = c.NextSibling {
			stack = append(stack, item{c, it.d + 1})
		}
	}
	return depth, elems
}

func pageTitle(root *html.Node) string {
	var find func(n *html.Node, d int) string
	find = func(n *html.Node, d int) string {
		if d > htmlMaxDepth {
			return ""
		}
		if n.Type == html.ElementNode && n.DataAtom == atom.Title {
			return strings.Join(strings.Fields(nodeText(n)), " ")
		}
		if n.Type == html.ElementNode && n.DataAtom == atom.Body {
			return ""
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if t := find(c, d+1); t != "" {
				return t
			}
		}
		return ""
	}
	return find(root, 0)
}

func nodeText(n *html.Node) string {
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}

// boilerplateFree returns the page's single <main> (or role=main) element if it has one,
// otherwise its body, after detaching boilerplate (see stripBoilerplate).
func boilerplateFree(root *html.Node) *html.Node {
	var (
		body  *html.Node
		mains []*html.Node
	)
	var walk func(n *html.Node, d int)
	walk = func(n *html.Node, d int) {
		if d > htmlMaxDepth {
			return
		}
		if n.Type == html.ElementNode {
			switch {
			case n.DataAtom == atom.Body && body == nil:
				body = n
			case n.DataAtom == atom.Main || getAttr(n, "role") == "main":
				mains = append(mains, n)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, d+1)
		}
	}
	stripBoilerplate(root)
	walk(root, 0)
	if len(mains) == 1 {
		return mains[0]
	}
	if body != nil {
		return body
	}
	return root
}

// stripBoilerplate detaches navigation, asides, forms, hidden elements, and the page-level
// header and footer (banner and contentinfo: a header or footer inside an article, section
// or main belongs to that content and stays).
func stripBoilerplate(root *html.Node) {
	var drop []*html.Node
	var walk func(n *html.Node, d int, inContent bool)
	walk = func(n *html.Node, d int, inContent bool) {
		if d > htmlMaxDepth {
			return
		}
		if n.Type == html.ElementNode {
			if isBoilerplate(n, inContent) {
				drop = append(drop, n)
				return
			}
			switch n.DataAtom {
			case atom.Article, atom.Section, atom.Main:
				inContent = true
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, d+1, inContent)
		}
	}
	walk(root, 0, false)
	for _, n := range drop {
		if n.Parent != nil {
			n.Parent.RemoveChild(n)
		}
	}
}

func isBoilerplate(n *html.Node, inContent bool) bool {
	switch n.DataAtom {
	case atom.Nav, atom.Aside, atom.Form:
		return true
	case atom.Header, atom.Footer:
		return !inContent
	}
	switch getAttr(n, "role") {
	case "navigation", "banner", "contentinfo", "search", "complementary":
		return true
	}
	return getAttr(n, "aria-hidden") == "true" || hasAttr(n, "hidden")
}

func getAttr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return strings.ToLower(strings.TrimSpace(a.Val))
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// htmlSections renders the text under root, one section per heading.
func htmlSections(root *html.Node) []Section {
	w := &htmlWriter{}
	w.walk(root, 0, false)
	w.endBlock()
	w.flush()
	return w.secs
}

type htmlWriter struct {
	secs  []Section
	path  []string
	body  strings.Builder // finished paragraphs of the current section
	para  strings.Builder // the paragraph being written
	space bool            // a space is pending before the next word
	cells int             // cells written in the current table row
}

var skipAtoms = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Template: true,
	atom.Svg: true, atom.Iframe: true, atom.Object: true, atom.Embed: true, atom.Canvas: true,
	atom.Button: true, atom.Select: true, atom.Textarea: true, atom.Input: true, atom.Head: true,
}

var blockAtoms = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Section: true, atom.Article: true, atom.Main: true,
	atom.Ul: true, atom.Ol: true, atom.Li: true, atom.Dl: true, atom.Dt: true, atom.Dd: true,
	atom.Blockquote: true, atom.Pre: true, atom.Table: true, atom.Tr: true, atom.Thead: true,
	atom.Tbody: true, atom.Tfoot: true, atom.Caption: true, atom.Figure: true,
	atom.Figcaption: true, atom.Hr: true, atom.Address: true, atom.Details: true,
	atom.Summary: true, atom.Center: true, atom.Fieldset: true, atom.Body: true,
	atom.Header: true, atom.Footer: true, atom.Nav: true, atom.Aside: true, atom.Form: true,
}

func headingAtom(a atom.Atom) int {
	switch a {
	case atom.H1:
		return 1
	case atom.H2:
		return 2
	case atom.H3:
		return 3
	case atom.H4:
		return 4
	case atom.H5:
		return 5
	case atom.H6:
		return 6
	}
	return 0
}

func (w *htmlWriter) walk(n *html.Node, d int, pre bool) {
	if d > htmlMaxDepth {
		return
	}
	switch n.Type {
	case html.TextNode:
		w.text(n.Data, pre)
		return
	case html.ElementNode:
	case html.DocumentNode:
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			w.walk(c, d+1, pre)
		}
		return
	default:
		return
	}
	if skipAtoms[n.DataAtom] || getAttr(n, "aria-hidden") == "true" {
		return
	}
	if lvl := headingAtom(n.DataAtom); lvl > 0 {
		w.endBlock()
		var hb htmlWriter
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			hb.walk(c, d+1, false)
		}
		hb.endBlock()
		title := strings.Join(strings.Fields(hb.body.String()), " ")
		if title != "" {
			w.heading(lvl, title)
			w.para.WriteString(title)
			w.endBlock()
		}
		return
	}
	switch n.DataAtom {
	case atom.Br:
		w.para.WriteByte('\n')
		w.space = false
		return
	case atom.Td, atom.Th:
		if w.cells > 0 {
			w.para.WriteString(" | ")
		}
		w.cells++
		w.space = false
	case atom.Img:
		return
	}
	block := blockAtoms[n.DataAtom]
	if block {
		w.endBlock()
	}
	if n.DataAtom == atom.Tr {
		w.cells = 0
	}
	if n.DataAtom == atom.Li {
		w.para.WriteString("- ")
	}
	isPre := pre || n.DataAtom == atom.Pre || n.DataAtom == atom.Textarea
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c, d+1, isPre)
	}
	if block {
		w.endBlock()
	}
}

func (w *htmlWriter) text(s string, pre bool) {
	if pre {
		w.para.WriteString(s)
		w.space = false
		return
	}
	for i, f := range strings.Fields(s) {
		if (i > 0 || w.space || startsWithSpace(s)) && w.para.Len() > 0 && !endsWithSpace(w.para.String()) {
			w.para.WriteByte(' ')
		}
		w.para.WriteString(f)
	}
	w.space = endsWithSpace(s)
}

func startsWithSpace(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

func endsWithSpace(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsSpace(r)
}

// endBlock finishes the paragraph being written.
func (w *htmlWriter) endBlock() {
	p := strings.TrimSpace(w.para.String())
	w.para.Reset()
	w.space = false
	if p == "" || p == "-" {
		return
	}
	if w.body.Len() > 0 {
		w.body.WriteString("\n\n")
	}
	w.body.WriteString(p)
}

func (w *htmlWriter) heading(level int, title string) {
	w.flush()
	if level-1 < len(w.path) {
		w.path = w.path[:level-1]
	}
	for len(w.path) < level-1 {
		w.path = append(w.path, "")
	}
	w.path = append(w.path, title)
}

func (w *htmlWriter) flush() {
	if strings.TrimSpace(w.body.String()) != "" {
		w.secs = append(w.secs, Section{Text: w.body.String(), Heading: headingPath(w.path)})
	}
	w.body.Reset()
}
