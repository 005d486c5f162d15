package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
)

// send makes a request with an optional body and content type as tenant acme.
func (e *env) send(t *testing.T, method, path, ctype string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+tokenAcme)
	return doRaw(t, req)
}

// wantError checks an answer is status with the JSON error shape; never a 5xx.
func wantError(t *testing.T, what string, resp *http.Response, raw []byte, status int) {
	t.Helper()
	if resp.StatusCode >= 500 {
		t.Errorf("%s: %d %s: a client's input must never cause a 5xx", what, resp.StatusCode, raw)
		return
	}
	if resp.StatusCode != status {
		t.Errorf("%s: %d %s, want %d", what, resp.StatusCode, raw, status)
		return
	}
	if status < 400 {
		return
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Errorf("%s: error body %s is not {\"error\":{\"code\",\"message\"}}", what, raw)
	}
}

// partUpload builds a multipart upload whose file part has the given filename and claimed
// Content-Type.
func partUpload(t *testing.T, filename, claimed string, content []byte) (*bytes.Buffer, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(filename)+`"`)
	if claimed != "" {
		h.Set("Content-Type", claimed)
	}
	pw, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &body, mw.FormDataContentType()
}

const minimalPDF = "%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"

func TestHostileUploads(t *testing.T) {
	const limit = 4096
	e := newEnv(t, limit)
	const uploadPath = "/api/v1/documents/agent/7/upload"

	t.Run("path traversal filenames are stored as their base name", func(t *testing.T) {
		for name, want := range map[string]string{
			"../../etc/passwd":                   "passwd",
			`..\..\windows\system32\drivers.txt`: "drivers.txt",
			"/var/lib/quire/../../root/.ssh/id":  "id",
			"a/b/../../../notes.txt":             "notes.txt",
			"..":                                 "upload",
			"name\u200b with spaces .txt ":       "name\u200b with spaces .txt",
			strings.Repeat("é", 300) + ".txt":    strings.Repeat("é", 125) + ".txt",
		} {
			body, ctype := partUpload(t, name, "text/plain", []byte("hello\n"))
			resp, raw := e.send(t, http.MethodPost, uploadPath, ctype, body)
			wantError(t, "upload "+name, resp, raw, http.StatusAccepted)
			var out struct {
				ID       int64
				Filename string
				TaskID   string `json:"task_id"`
			}
			_ = json.Unmarshal(raw, &out)
			if out.Filename != want {
				t.Errorf("filename %q stored as %q, want %q", name, out.Filename, want)
			}
			doc, err := e.docs.GetDocument(t.Context(), "acme", out.ID)
			if err != nil || doc.Filename != want {
				t.Errorf("document of %q: %+v, %v", name, doc, err)
			}
		}
	})

	t.Run("control characters through RFC 2231 are removed", func(t *testing.T) {
		body := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''..%2F..%2Fevil%1B%5B31m%0D%0A%7Fname%00.txt\r\n\r\nhello\r\n--b--\r\n"
		resp, raw := e.send(t, http.MethodPost, uploadPath, "multipart/form-data; boundary=b", strings.NewReader(body))
		wantError(t, "RFC 2231 filename", resp, raw, http.StatusAccepted)
		var out struct{ Filename string }
		_ = json.Unmarshal(raw, &out)
		if out.Filename != "evil[31mname.txt" {
			t.Errorf("RFC 2231 filename stored as %q, want %q", out.Filename, "evil[31mname.txt")
		}
	})

	t.Run("empty file", func(t *testing.T) {
		body, ctype := partUpload(t, "empty.txt", "text/plain", nil)
		resp, raw := e.send(t, http.MethodPost, uploadPath, ctype, body)
		wantError(t, "0-byte file", resp, raw, http.StatusBadRequest)
	})

	t.Run("size limit", func(t *testing.T) {
		body, ctype := partUpload(t, "limit.txt", "", bytes.Repeat([]byte("a"), limit))
		resp, raw := e.send(t, http.MethodPost, uploadPath, ctype, body)
		wantError(t, "exactly MAX_UPLOAD_BYTES", resp, raw, http.StatusAccepted)
		body, ctype = partUpload(t, "over.txt", "", bytes.Repeat([]byte("a"), limit+1))
		resp, raw = e.send(t, http.MethodPost, uploadPath, ctype, body)
		wantError(t, "MAX_UPLOAD_BYTES + 1", resp, raw, http.StatusRequestEntityTooLarge)
		// Far over, without a Content-Length: refused while streaming.
		big := io.MultiReader(strings.NewReader("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\r\n"),
			io.LimitReader(repeatReader('a'), 64<<20))
		resp, raw = e.send(t, http.MethodPost, uploadPath, "multipart/form-data; boundary=b", big)
		wantError(t, "64 MiB streamed", resp, raw, http.StatusRequestEntityTooLarge)
	})

	t.Run("claimed content types are not trusted", func(t *testing.T) {
		body, ctype := partUpload(t, "report.txt", "text/plain", []byte(minimalPDF))
		resp, raw := e.send(t, http.MethodPost, uploadPath, ctype, body)
		wantError(t, "PDF claimed as text/plain", resp, raw, http.StatusAccepted)
		var out struct{ ID int64 }
		_ = json.Unmarshal(raw, &out)
		if doc, err := e.docs.GetDocument(t.Context(), "acme", out.ID); err != nil || doc.ContentType != "application/pdf" {
			t.Errorf("PDF claimed as text: document %+v, %v; want content_type application/pdf", doc, err)
		}
		png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{0, 1, 2, 3}, 64)...)
		body, ctype = partUpload(t, "scan.pdf", "application/pdf", png)
		resp, raw = e.send(t, http.MethodPost, uploadPath, ctype, body)
		wantError(t, "PNG claimed as application/pdf", resp, raw, http.StatusAccepted)
		out.ID = 0
		_ = json.Unmarshal(raw, &out)
		if doc, err := e.docs.GetDocument(t.Context(), "acme", out.ID); err != nil || doc.ContentType != "image/png" {
			t.Errorf("PNG claimed as PDF: document %+v, %v; want content_type image/png (read by OCR)", doc, err)
		}
		exe := append([]byte("MZ\x90\x00\x03\x00\x00\x00"), bytes.Repeat([]byte{0}, 200)...)
		body, ctype = partUpload(t, "manual.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", exe)
		resp, raw = e.send(t, http.MethodPost, uploadPath, ctype, body)
		wantError(t, "executable claimed as .docx", resp, raw, http.StatusUnsupportedMediaType)
	})

	t.Run("malformed bodies", func(t *testing.T) {
		for _, tc := range []struct {
			name, ctype, body string
		}{
			{"JSON instead of multipart", "application/json", `{"file":"x"}`},
			{"no boundary", "multipart/form-data", "--x\r\n"},
			{"truncated", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello"},
			{"no file part", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n"},
			{"two files", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.txt\"\r\n\r\nworld\r\n--b--\r\n"},
			{"invalid UTF-8 priority", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"priority\"\r\n\r\nhi\xffgh\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--b--\r\n"},
			{"huge priority field", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"priority\"\r\n\r\n" + strings.Repeat("high", 2000) + "\r\n--b--\r\n"},
			{"empty body", "multipart/form-data; boundary=b", ""},
		} {
			resp, raw := e.send(t, http.MethodPost, uploadPath, tc.ctype, strings.NewReader(tc.body))
			wantError(t, tc.name, resp, raw, http.StatusBadRequest)
		}
	})
}

// repeatReader reads c forever.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestHostileJSONBodies(t *testing.T) {
	e := newEnv(t, 0)
	for _, route := range []string{"/api/v1/documents/agent/7/webpage", "/api/v1/documents/agent/7/crawl"} {
		tests := []struct {
			name   string
			body   io.Reader
			status int
		}{
			{"invalid UTF-8 in the url", strings.NewReader("{\"url\":\"https://example.com/\xff\xfe\"}"), http.StatusBadRequest},
			{"invalid UTF-8 in a key", strings.NewReader("{\"url\":\"https://example.com/\",\"\xc3\x28\":1}"), http.StatusBadRequest},
			{"invalid UTF-8 in the priority", strings.NewReader("{\"url\":\"https://example.com/\",\"priority\":\"hi\xffgh\"}"), http.StatusBadRequest},
			{"huge JSON", io.MultiReader(strings.NewReader(`{"url":"https://example.com/","pad":"`), io.LimitReader(repeatReader('a'), 32<<20), strings.NewReader(`"}`)), http.StatusRequestEntityTooLarge},
			{"deeply nested", strings.NewReader(strings.Repeat("[", 30000) + strings.Repeat("]", 30000)), http.StatusBadRequest},
			{"deeply nested without end", strings.NewReader(strings.Repeat("[", 100000)), http.StatusBadRequest},
			{"not an object", strings.NewReader(`"https://example.com/"`), http.StatusBadRequest},
			{"two objects", strings.NewReader(`{"url":"https://example.com/"}{"url":"https://example.org/"}`), http.StatusBadRequest},
			{"NUL in the url", strings.NewReader(`{"url":"https://example.com/\u0000x"}`), http.StatusBadRequest},
			{"javascript URL", strings.NewReader(`{"url":"javascript:alert(1)"}`), http.StatusBadRequest},
			{"file URL", strings.NewReader(`{"url":"file:///etc/passwd"}`), http.StatusBadRequest},
			{"credentials", strings.NewReader(`{"url":"https://user:pw@example.com/"}`), http.StatusBadRequest},
			{"number for the url", strings.NewReader(`{"url":12}`), http.StatusBadRequest},
			{"empty body", strings.NewReader(``), http.StatusBadRequest},
		}
		for _, tt := range tests {
			resp, raw := e.send(t, http.MethodPost, route, "application/json", tt.body)
			wantError(t, route+" "+tt.name, resp, raw, tt.status)
		}
	}
	// Nothing was queued by any of them.
	docs, err := e.docs.ListDocuments(t.Context(), docstore.ListFilter{TenantID: "acme", AgentID: "7"})
	if err != nil || len(docs) != 0 {
		t.Fatalf("documents after rejected requests: %v, %v", docs, err)
	}
}

// TestHostileParameters sends SQL metacharacters and bad numbers in every path and query
// parameter: each answer is the right 400 or 404, never a 5xx, and the tables are intact.
func TestHostileParameters(t *testing.T) {
	agentPattern := regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	e := newEnv(t, 0)
	doc := storeDoc(t, e.docs, "acme", "7", "pumps.txt", "The cooling pump must be inspected every week.")
	sqls := []string{
		"' OR '1'='1", "1; DROP TABLE documents; --", `"; DELETE FROM chunks; --`, "1 UNION SELECT * FROM documents",
		"%", "_", `\`, "$1", "1)--", "'||pg_sleep(5)||'", "*", ">", "..", "\x00",
	}
	q := url.PathEscape
	type probe struct {
		method, path string
		status       int
	}
	var probes []probe
	for _, s := range sqls {
		// "_" and ".." are agent ids by the contract's pattern: their (empty) lists are right.
		searchStatus := 200
		if strings.ContainsRune(s, 0) {
			searchStatus = 400 // PostgreSQL text cannot hold NUL
		}
		agentStatus, listStatus := 400, 400
		if agentPattern.MatchString(s) {
			agentStatus, listStatus = 200, 200
		}
		probes = append(probes,
			probe{"GET", "/api/v1/documents/agent/" + q(s), listStatus},
			probe{"POST", "/api/v1/documents/agent/" + q(s) + "/webpage", 400},
			probe{"POST", "/api/v1/documents/agent/" + q(s) + "/upload", 400},
			probe{"GET", "/api/v1/documents/" + q(s), 400},
			probe{"DELETE", "/api/v1/documents/" + q(s), 400},
			probe{"GET", "/api/v1/documents/" + q(s) + "/chunks", 400},
			probe{"GET", "/api/v1/tasks/" + q(s), 404},
			probe{"DELETE", "/api/v1/tasks/" + q(s), 404},
			probe{"POST", "/api/v1/dlq/" + q(s) + "/retry", 400},
			probe{"DELETE", "/api/v1/dlq/" + q(s), 400},
			probe{"GET", "/api/v1/agents/" + q(s) + "/search?q=pump", agentStatus},
			probe{"GET", "/api/v1/agents/7/search?q=" + url.QueryEscape(s), searchStatus},
			probe{"GET", "/api/v1/documents/agent/7?status=" + url.QueryEscape(s), 400},
			probe{"GET", "/api/v1/documents/agent/7?cursor=" + url.QueryEscape(s), 400},
			probe{"GET", "/api/v1/documents/agent/7?limit=" + url.QueryEscape(s), 400},
			probe{"GET", fmt.Sprintf("/api/v1/documents/%d/chunks?cursor=%s", doc.ID, url.QueryEscape(s)), 400},
			probe{"GET", fmt.Sprintf("/api/v1/documents/%d/chunks?limit=%s", doc.ID, url.QueryEscape(s)), 400},
			probe{"GET", "/api/v1/dlq?cursor=" + url.QueryEscape(s), 400},
			probe{"GET", "/api/v1/dlq?limit=" + url.QueryEscape(s), 400},
			probe{"GET", "/api/v1/agents/7/search?q=pump&k=" + url.QueryEscape(s), 400},
		)
	}
	// Bad numbers for ids, cursors and limits.
	for _, n := range []string{"0", "-1", "1.5", "1e3", "0x10", "9223372036854775808", "99999999999999999999999", " 5", "5 ", "٥"} {
		probes = append(probes,
			probe{"GET", "/api/v1/documents/agent/7?limit=" + url.QueryEscape(n), 400},
			probe{"GET", "/api/v1/dlq?limit=" + url.QueryEscape(n), 400},
			probe{"GET", "/api/v1/agents/7/search?q=pump&k=" + url.QueryEscape(n), 400},
		)
		if n != "0" {
			probes = append(probes,
				probe{"GET", "/api/v1/documents/" + q(n), 400},
				probe{"GET", "/api/v1/documents/agent/7?cursor=" + url.QueryEscape(n), 400},
				probe{"GET", fmt.Sprintf("/api/v1/documents/%d/chunks?cursor=%s", doc.ID, url.QueryEscape(n)), 400},
			)
		}
		if n != "0" && n != "9223372036854775808" { // dead-letter ids are uint64 sequences
			probes = append(probes, probe{"DELETE", "/api/v1/dlq/" + q(n), 400})
		}
	}
	probes = append(probes,
		probe{"GET", "/api/v1/documents/0", 400},
		probe{"GET", "/api/v1/documents/agent/7?cursor=0", 400},
		probe{"GET", "/api/v1/documents/agent/" + strings.Repeat("a", 129), 400},
		probe{"GET", "/api/v1/documents/agent/" + strings.Repeat("a", 128), 200},
		probe{"GET", "/api/v1/documents/9223372036854775807", 404},
		probe{"GET", "/api/v1/dlq/18446744073709551615", 405},
		probe{"DELETE", "/api/v1/dlq/18446744073709551615", 404},
		probe{"DELETE", "/api/v1/dlq/18446744073709551616", 400},
		probe{"GET", "/api/v1/dlq?cursor=18446744073709551615", 200},
		probe{"GET", "/api/v1/tasks/" + strings.Repeat("t", 4000), 404},
		probe{"GET", "/api/v1/agents/7/search?q=" + url.QueryEscape("pump & | ! ( ) : * <-> \\ 'x'"), 200},
		probe{"GET", "/api/v1/agents/7/search?q=" + url.QueryEscape("\xff\xfe"), 400},
		probe{"GET", "/api/v1/tasks/%ff%fe", 404},
		probe{"DELETE", "/api/v1/tasks/%00", 404},
		probe{"PUT", "/api/v1/documents/1", 405},
		probe{"PATCH", "/api/v1/tasks/x", 405},
		probe{"GET", "/api/v1/nope", 404},
	)
	for _, p := range probes {
		resp, raw := e.send(t, p.method, p.path, "", nil)
		wantError(t, p.method+" "+p.path, resp, raw, p.status)
	}
	// The tables are intact and the tenant's data unchanged.
	if got, err := e.docs.GetDocument(t.Context(), "acme", doc.ID); err != nil || got.ChunkCount != 1 {
		t.Fatalf("document after the probes: %+v, %v", got, err)
	}
	resp, raw := e.send(t, http.MethodGet, "/api/v1/agents/7/search?q=cooling+pump", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), "inspected every week") {
		t.Fatalf("search after the probes: %d %s", resp.StatusCode, raw)
	}
}

// TestWrongMethodAndUnknownRoute: a known path with another method is 405 with Allow and the
// error shape; an unknown path is 404 with the error shape, token or not.
func TestWrongMethodAndUnknownRoute(t *testing.T) {
	e := newEnv(t, 0)
	resp, raw := e.send(t, http.MethodPut, "/api/v1/documents/1", "application/json", strings.NewReader(`{}`))
	wantError(t, "PUT a document", resp, raw, http.StatusMethodNotAllowed)
	allow := resp.Header.Get("Allow")
	if !strings.Contains(allow, "GET") || !strings.Contains(allow, "DELETE") {
		t.Errorf("405 Allow = %q, want GET and DELETE", allow)
	}
	if !strings.Contains(string(raw), `"method_not_allowed"`) {
		t.Errorf("405 body = %s", raw)
	}
	for _, p := range []string{"/api/v1/nope", "/api/v2/documents/1", "/api/v1/documents/agent/7/upload/extra"} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+p, nil)
		resp, raw := doRaw(t, req)
		wantError(t, "GET "+p+" without a token", resp, raw, http.StatusNotFound)
	}
}
