package extract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"

	"golang.org/x/text/encoding/htmlindex"
)

// Limits of the e-mail reader.
const (
	// maxMIMEDepth caps the nesting of multipart bodies and attached messages.
	maxMIMEDepth = 16
	// maxMIMEParts caps the parts of a message, counted over every level.
	maxMIMEParts = 1000
	// maxMailHeaderBytes caps the header block of a message or part.
	maxMailHeaderBytes = 1 << 20
)

// eml reads an RFC 822 / MIME e-mail message: the From, To, Cc, Date and Subject headers
// (RFC 2047 encoded words decoded), then the body: text/plain, or text/html through the HTML
// reader when there is no plain alternative; nested multiparts and attached messages
// (message/rfc822) in order. The subject is the title and every section's heading.
//
// Attachments are not ingested: each is listed in the text as "Attachment report.pdf
// (application/pdf, 12 KB) not ingested: ..." so that the user sees what was left out.
func (e *Extractor) eml(ctx context.Context, r io.ReaderAt, size int64, lim *limiter) (*Document, error) {
	m := &mailReader{e: e, ctx: ctx, lim: lim, w: &paraWriter{lim: lim}}
	title, err := m.message(io.NewSectionReader(r, 0, size), 0)
	if err != nil {
		return nil, err
	}
	return &Document{Title: title, Sections: m.w.finish()}, nil
}

type mailReader struct {
	e     *Extractor
	ctx   context.Context
	lim   *limiter
	w     *paraWriter
	parts int
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(label string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(label)
	if err != nil {
		return nil, fmt.Errorf("unknown charset %q", label)
	}
	return enc.NewDecoder().Reader(r), nil
}}

func decodeHeader(v string) string {
	if s, err := wordDecoder.DecodeHeader(v); err == nil {
		v = s
	}
	return strings.Join(strings.Fields(v), " ")
}

// message reads one message (the top level or an attached one) and returns its subject.
func (m *mailReader) message(r io.Reader, depth int) (string, error) {
	hl := &headerLimit{r: r, left: maxMailHeaderBytes}
	msg, err := mail.ReadMessage(bufio.NewReader(hl))
	if hl.tripped {
		return "", errf(ErrTooLarge, "eml", "a header block of more than %d bytes", maxMailHeaderBytes)
	}
	if err != nil {
		return "", errf(ErrCorrupt, "eml", "message header: %v", err)
	}
	hl.left = math.MaxInt64 // the body is bounded by the file and the text limits
	body := msg.Body
	subject := decodeHeader(msg.Header.Get("Subject"))
	if depth == 0 {
		m.w.heading(1, subject)
	}
	var head []string
	for _, k := range []string{"From", "To", "Cc", "Date", "Subject"} {
		if v := msg.Header.Get(k); v != "" {
			head = append(head, k+": "+decodeHeader(v))
		}
	}
	if depth > 0 {
		if err := m.w.para("Attached message:"); err != nil {
			return "", err
		}
	}
	if err := m.w.para(strings.Join(head, "\n")); err != nil {
		return "", err
	}
	if err := m.entity(textproto.MIMEHeader(msg.Header), body, depth); err != nil {
		return "", err
	}
	return subject, nil
}

// entity reads a body (of a message or a part) by its content type.
func (m *mailReader) entity(h textproto.MIMEHeader, body io.Reader, depth int) error {
	if err := m.ctx.Err(); err != nil {
		return err
	}
	if m.parts++; m.parts > maxMIMEParts {
		return errf(ErrTooLarge, "eml", "more than %d MIME parts", maxMIMEParts)
	}
	if depth > maxMIMEDepth {
		return errf(ErrTooLarge, "eml", "MIME parts nested more than %d deep", maxMIMEDepth)
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mediaType, params = "text/plain", nil
	}
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	filename := decodeHeader(dparams["filename"])
	if filename == "" {
		filename = decodeHeader(params["name"])
	}
	switch {
	case strings.HasPrefix(mediaType, "multipart/"):
		return m.multipart(mediaType, params["boundary"], body, depth)
	case disp == "attachment" || (filename != "" && !strings.HasPrefix(mediaType, "text/")):
		return m.attachment(filename, mediaType, h, body)
	case mediaType == "message/rfc822":
		_, err := m.message(transferDecoded(h, body), depth+1)
		return err
	case mediaType == "text/plain", mediaType == "text/html":
		text, err := m.text(h, body, params["charset"])
		if err != nil {
			return err
		}
		if mediaType == "text/html" {
			// The HTML reader counts its text against a limiter of its own: m.w counts it
			// once, as it is written.
			doc, err := m.e.html(m.ctx, []byte(text), "text/html; charset=utf-8", "", &limiter{max: m.lim.max})
			if err != nil {
				if errors.Is(err, ErrEmpty) {
					return nil
				}
				return err
			}
			for _, s := range doc.Sections {
				if err := m.w.para(s.Text); err != nil {
					return err
				}
			}
			return nil
		}
		for p := range strings.SplitSeq(normalizeNewlines(text), "\n\n") {
			if err := m.w.para(p); err != nil {
				return err
			}
		}
		return nil
	case strings.HasPrefix(mediaType, "text/"):
		return m.attachment(filename, mediaType, h, body)
	}
	return m.attachment(filename, mediaType, h, body)
}

// multipart reads the parts of a multipart body: of an alternative, the plain text when it has
// any (else the last readable alternative); of every other kind, each part in order.
func (m *mailReader) multipart(mediaType, boundary string, body io.Reader, depth int) error {
	if boundary == "" {
		return errf(ErrCorrupt, "eml", "%s without a boundary", mediaType)
	}
	mr := multipart.NewReader(body, boundary)
	type alt struct {
		h    textproto.MIMEHeader
		body []byte
	}
	var alts []alt
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errf(ErrCorrupt, "eml", "%s: %v", mediaType, err)
		}
		if mediaType != "multipart/alternative" {
			if err := m.entity(p.Header, p, depth+1); err != nil {
				return err
			}
			continue
		}
		if m.parts++; m.parts > maxMIMEParts {
			return errf(ErrTooLarge, "eml", "more than %d MIME parts", maxMIMEParts)
		}
		b, err := readCapped(p, int64(m.e.opts.MaxHTMLBytes))
		if err != nil {
			return err
		}
		alts = append(alts, alt{p.Header, b})
	}
	if len(alts) == 0 {
		return nil
	}
	pick := alts[len(alts)-1]
	for _, a := range alts {
		if mt, _, _ := mime.ParseMediaType(a.h.Get("Content-Type")); mt == "text/plain" && len(bytes.TrimSpace(a.body)) > 0 {
			pick = a
			break
		}
	}
	return m.entity(pick.h, bytes.NewReader(pick.body), depth+1)
}

// text reads a text part decoded (transfer encoding, then charset) to UTF-8.
func (m *mailReader) text(h textproto.MIMEHeader, body io.Reader, charset string) (string, error) {
	b, err := readCapped(transferDecoded(h, body), int64(m.e.opts.MaxHTMLBytes))
	if err != nil {
		return "", err
	}
	if charset != "" && !strings.EqualFold(charset, "utf-8") && !strings.EqualFold(charset, "us-ascii") {
		if enc, err := htmlindex.Get(charset); err == nil {
			if s, err := enc.NewDecoder().Bytes(b); err == nil {
				return string(s), nil
			}
		}
	}
	s, _ := decodeText(b)
	return s, nil
}

// attachment lists an attachment that is not ingested, with its size once decoded.
func (m *mailReader) attachment(filename, mediaType string, h textproto.MIMEHeader, body io.Reader) error {
	n, err := io.Copy(io.Discard, io.LimitReader(transferDecoded(h, body), 1<<30))
	if err != nil {
		return errf(ErrCorrupt, "eml", "attachment %q: %v", filename, err)
	}
	if filename == "" {
		filename = "(unnamed)"
	}
	return m.w.para(fmt.Sprintf("Attachment %s (%s, %s) not ingested: attachments are not extracted from e-mail yet; upload the file on its own to make it searchable.",
		filename, mediaType, humanSize(n)))
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", (n+512)>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// transferDecoded undoes a part's Content-Transfer-Encoding.
func transferDecoded(h textproto.MIMEHeader, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &base64Cleaner{r: r})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// readCapped reads r whole, failing with ErrTooLarge past limit bytes.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, errf(ErrCorrupt, "eml", "%v", err)
	}
	if int64(len(b)) > limit {
		return nil, errf(ErrTooLarge, "eml", "a text part of more than %d bytes", limit)
	}
	return b, nil
}

// base64Cleaner drops the line breaks and spaces inside base64 bodies.
type base64Cleaner struct{ r io.Reader }

func (c *base64Cleaner) Read(p []byte) (int, error) {
	for {
		n, err := c.r.Read(p)
		j := 0
		for _, b := range p[:n] {
			if b != '\r' && b != '\n' && b != ' ' && b != '\t' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// headerLimit fails reads past left bytes: it bounds the header block given to net/mail,
// which reads a header of any length.
type headerLimit struct {
	r       io.Reader
	left    int64
	tripped bool
}

func (h *headerLimit) Read(p []byte) (int, error) {
	if h.left <= 0 {
		h.tripped = true
		return 0, fmt.Errorf("%w: eml: a header block of more than %d bytes", ErrTooLarge, maxMailHeaderBytes)
	}
	if int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	h.left -= int64(n)
	return n, err
}
