package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/quirehq/quire/api-service/internal/api"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/pgtest"
	"github.com/quirehq/quire/shared/taskstatus"
)

// fuzzUploadLimit is MAX_UPLOAD_BYTES in FuzzUpload: small, so the fuzzer reaches it.
const fuzzUploadLimit = 2048

// newFuzzServer is the API over a real in-process NATS server and a real PostgreSQL database,
// made once per fuzz process: every input runs through the whole upload path.
func newFuzzServer(tb testing.TB) http.Handler {
	ns := natstest.Run(tb)
	nc, js := natstest.Connect(tb, ns)
	top, err := jobqueue.Ensure(tb.Context(), js, jobqueue.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	docs, err := docstore.Open(tb.Context(), pgtest.NewDB(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(docs.Close)
	a := api.New(api.Config{Tokens: map[string]string{tokenAcme: "acme"}, MaxUploadBytes: fuzzUploadLimit}, api.Deps{
		NATS: nc, JetStream: js, Uploads: top.Uploads, Statuses: taskstatus.New(top.Tasks, js, time.Hour),
		Docs: docs, Idempotency: top.Idempotency, Logger: slog.New(slog.DiscardHandler),
	})
	tb.Cleanup(func() { a.Close(context.Background()) }) // before docs.Close
	return a.Handler()
}

// FuzzUpload sends fuzzed uploads through the real gin engine, NATS object store, KV, stream
// and PostgreSQL. With raw empty, a well-formed multipart body is built from filename,
// claimed content type, content and priority; otherwise raw is the body itself (boundary
// "qb"), to exercise the multipart parser. Invariants: never a 5xx or a panic, errors in the
// JSON shape, and an accepted file is stored under its sanitised base name with the type its
// bytes show and its exact size.
func FuzzUpload(f *testing.F) {
	f.Add("notes.txt", "text/plain", []byte("hello quire\n"), "", []byte(nil))
	f.Add("../../etc/passwd", "application/pdf", []byte(minimalPDF), "low", []byte(nil))
	f.Add(`C:\Users\x\report.docx`, "", []byte("PK\x03\x04\x14\x00\x06\x00word/document.xml"), "MEDIUM", []byte(nil))
	f.Add("page.html", "text/html", []byte("<!doctype html><title>x</title>"), "urgent", []byte(nil))
	f.Add("a.md", "", []byte("\xef\xbb\xbf# Title\n"), " high ", []byte(nil))
	f.Add("x.doc", "", []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest"), "", []byte(nil))
	f.Add("empty.txt", "", []byte{}, "", []byte(nil))
	f.Add("big.txt", "", bytes.Repeat([]byte("a"), fuzzUploadLimit+1), "", []byte(nil))
	f.Add("u16.txt", "", []byte("\xff\xfeh\x00i\x00"), "", []byte(nil))
	f.Add("", "", []byte(nil), "", []byte("--qb\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%2E%2E%2Fa%00.txt\r\n\r\nhi\r\n--qb--\r\n"))
	f.Add("", "", []byte(nil), "", []byte("--qb\r\nContent-Disposition: form-data; name=\"priority\"\r\n\r\nlow\r\n--qb\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: application/pdf\r\n\r\nhello\r\n--qb--\r\n"))
	f.Add("", "", []byte(nil), "", []byte("--qb\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nunterminated"))
	f.Add("", "", []byte(nil), "", []byte("--qb--\r\n"))

	h := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, filename, claimed string, content []byte, priority string, raw []byte) {
		body, ctype := raw, "multipart/form-data; boundary=qb"
		wellFormed := len(raw) == 0
		if wellFormed {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			if priority != "" {
				_ = mw.WriteField("priority", priority)
			}
			hdr := textproto.MIMEHeader{}
			hdr.Set("Content-Disposition", `form-data; name="file"; filename="`+strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", "", "\n", "").Replace(filename)+`"`)
			if claimed != "" {
				hdr.Set("Content-Type", strings.NewReplacer("\r", "", "\n", "").Replace(claimed))
			}
			pw, err := mw.CreatePart(hdr)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = pw.Write(content)
			_ = mw.Close()
			body, ctype = buf.Bytes(), mw.FormDataContentType()
		}
		req := httptest.NewRequest(http.MethodPost, "/api/v1/documents/agent/fuzz/upload", bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Bearer "+tokenAcme)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("status %d for a client's upload: %s", rec.Code, rec.Body)
		}
		if rec.Code != http.StatusAccepted {
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("status %d without the error shape: %q", rec.Code, rec.Body)
			}
			switch rec.Code {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			default:
				t.Fatalf("unexpected status %d: %s", rec.Code, rec.Body)
			}
			return
		}
		var out struct {
			ID       int64  `json:"id"`
			Filename string `json:"filename"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("202 body %q: %v", rec.Body, err)
		}
		checkStoredName(t, out.Filename)
		if !wellFormed {
			return
		}
		if want := api.SanitizeFilename(filename); out.Filename != want {
			t.Fatalf("filename %q stored as %q, want %q", filename, out.Filename, want)
		}
		typ, err := doctype.Sniff(content, out.Filename)
		if err != nil {
			t.Fatalf("accepted content that Sniff refuses (%v): %q", err, content)
		}
		if len(content) > fuzzUploadLimit {
			t.Fatalf("accepted %d bytes over the %d limit", len(content), fuzzUploadLimit)
		}
		get := httptest.NewRequest(http.MethodGet, "/api/v1/documents/"+strconv.FormatInt(out.ID, 10), nil)
		get.Header.Set("Authorization", "Bearer "+tokenAcme)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, get)
		var doc struct {
			Filename    string `json:"filename"`
			ContentType string `json:"content_type"`
			SizeBytes   int    `json:"size_bytes"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("GET the accepted document: %d %s", rec.Code, rec.Body)
		}
		if doc.Filename != out.Filename || doc.ContentType != typ.ContentType() || doc.SizeBytes != len(content) {
			t.Fatalf("stored %+v, want filename %q, type %s, %d bytes", doc, out.Filename, typ.ContentType(), len(content))
		}
	})
}

// checkStoredName: a stored filename is a non-empty base name of at most 255 bytes of valid
// UTF-8 without path separators or control characters.
func checkStoredName(t *testing.T, name string) {
	t.Helper()
	switch {
	case name == "" || len(name) > 255 || !utf8.ValidString(name):
		t.Fatalf("stored filename %q: empty, too long or not UTF-8", name)
	case strings.ContainsAny(name, `/\`) || path.Base(name) != name || name == "." || name == "..":
		t.Fatalf("stored filename %q is not a base name", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		t.Fatalf("stored filename %q has control characters", name)
	}
}
