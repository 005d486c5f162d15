package extract

import (
	"strings"

	"github.com/quirehq/quire/shared/doctype"
)

// textDocument decodes plain text or Markdown. Markdown keeps its text as written, split into
// sections at its headings (ATX "# Title" and setext underlines), each with its heading path.
func textDocument(data []byte, t doctype.Type, lim *limiter) (*Document, error) {
	s, _ := decodeText(data)
	s = normalizeNewlines(s)
	if err := lim.add(len(s)); err != nil {
		return nil, err
	}
	doc := &Document{Type: t}
	if t == doctype.Markdown {
		doc.Sections = markdownSections(s)
		for _, sec := range doc.Sections {
			if sec.Heading != "" {
				doc.Title, _, _ = strings.Cut(sec.Heading, " > ")
				break
			}
		}
	} else {
		doc.Sections = []Section{{Text: s}}
	}
	return doc, nil
}

// normalizeNewlines turns CRLF and CR line ends into LF and drops NUL bytes.
func normalizeNewlines(s string) string {
	if strings.ContainsAny(s, "\r\x00") {
		s = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\x00", "").Replace(s)
	}
	return s
}

// markdownSections splits Markdown at headings outside code fences, keeping each section's
// heading path ("Install > Linux").
func markdownSections(s string) []Section {
	var (
		out   []Section
		path  []string
		cur   strings.Builder
		fence string
		prev  string // the previous line, a setext heading candidate
	)
	flush := func() {
		if strings.TrimSpace(cur.String()) != "" {
			out = append(out, Section{Text: cur.String(), Heading: headingPath(path)})
		}
		cur.Reset()
	}
	setHeading := func(level int, title string) {
		if level-1 < len(path) {
			path = path[:level-1]
		}
		for len(path) < level-1 {
			path = append(path, "")
		}
		path = append(path, title)
	}
	for line := range strings.Lines(s) {
		trim := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trim, fence) {
				fence = ""
			}
			cur.WriteString(line)
			prev = ""
			continue
		}
		if strings.HasPrefix(trim, "```") || strings.HasPrefix(trim, "~~~") {
			fence = trim[:3]
			cur.WriteString(line)
			prev = ""
			continue
		}
		if level, title, ok := atxHeading(line); ok {
			flush()
			setHeading(level, title)
			cur.WriteString(line)
			prev = ""
			continue
		}
		if level := setextLevel(trim); level > 0 && prev != "" && !strings.HasPrefix(prev, "#") {
			// The previous line is the heading: move it into a section of its own.
			text := cur.String()
			head := strings.TrimSuffix(text, prevLine(text))
			cur.Reset()
			cur.WriteString(head)
			flush()
			setHeading(level, prev)
			cur.WriteString(prevLine(text))
			cur.WriteString(line)
			prev = ""
			continue
		}
		cur.WriteString(line)
		prev = trim
	}
	flush()
	return out
}

func headingPath(path []string) string {
	var names []string
	for _, h := range path {
		if h != "" {
			names = append(names, h)
		}
	}
	return strings.Join(names, " > ")
}

// atxHeading parses "## Title ##" (at most three spaces of indent).
func atxHeading(line string) (int, string, bool) {
	l := strings.TrimRight(line, "\r\n")
	indent := len(l) - len(strings.TrimLeft(l, " "))
	if indent > 3 {
		return 0, "", false
	}
	l = l[indent:]
	level := len(l) - len(strings.TrimLeft(l, "#"))
	if level < 1 || level > 6 || (len(l) > level && l[level] != ' ' && l[level] != '\t') {
		return 0, "", false
	}
	title := strings.TrimSpace(strings.TrimRight(strings.TrimSpace(l[level:]), "#"))
	if title == "" {
		return 0, "", false
	}
	return level, title, true
}

// setextLevel reports 1 for a "===" underline and 2 for a "---" one.
func setextLevel(trim string) int {
	if len(trim) < 2 {
		return 0
	}
	switch {
	case strings.Trim(trim, "=") == "":
		return 1
	case strings.Trim(trim, "-") == "" && len(trim) >= 3:
		return 2
	}
	return 0
}

// prevLine returns the last line of text (with its newline).
func prevLine(text string) string {
	t := strings.TrimSuffix(text, "\n")
	i := strings.LastIndexByte(t, '\n')
	return text[i+1:]
}
