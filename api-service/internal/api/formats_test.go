package api_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/shared/job"
)

// The office, e-book, mail and table formats are sniffed and queued like the others, with
// their canonical content type on the job.
func TestUploadAcceptsOfficeMailAndTableFormats(t *testing.T) {
	e := newEnv(t, 0)
	pkg := func(first, content string, names ...string) []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: first, Method: zip.Store})
		w.Write([]byte(content))
		for _, n := range names {
			w, _ := zw.Create(n)
			w.Write([]byte("<x/>"))
		}
		zw.Close()
		return b.Bytes()
	}
	tests := []struct {
		file    string
		content []byte
		want    doctype.Type
	}{
		{"deck.pptx", pkg("[Content_Types].xml", "<Types/>", "ppt/presentation.xml"), doctype.PPTX},
		{"book.xlsx", pkg("[Content_Types].xml", "<Types/>", "xl/workbook.xml"), doctype.XLSX},
		{"notes.odt", pkg("mimetype", "application/vnd.oasis.opendocument.text", "content.xml"), doctype.ODT},
		{"novel.epub", pkg("mimetype", "application/epub+zip", "META-INF/container.xml"), doctype.EPUB},
		{"letter.rtf", []byte(`{\rtf1\ansi Dear reader,\par}`), doctype.RTF},
		{"mail.eml", []byte("From: a@example.com\r\nTo: b@example.com\r\nSubject: Hi\r\n\r\nHello.\r\n"), doctype.EML},
		{"sales.csv", []byte("region,units\nNorth,12\n"), doctype.CSV},
		{"sales.tsv", []byte("region\tunits\nNorth\t12\n"), doctype.TSV},
	}
	for i, tt := range tests {
		resp, body := e.upload(t, tokenAcme, "7", tt.file, tt.content, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: status %d, want 202 (%v)", tt.file, resp.StatusCode, body)
		}
		stream, err := e.js.Stream(t.Context(), "JOBS_HIGH")
		if err != nil {
			t.Fatal(err)
		}
		msg, err := stream.GetMsg(t.Context(), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		j, err := job.Decode(msg.Data)
		if err != nil || j.ContentType != tt.want.ContentType() {
			t.Fatalf("%s: job content type %q (%v), want %q", tt.file, j.ContentType, err, tt.want.ContentType())
		}
	}
}

// A chunk's location comes back with it from the chunks route, the search API and the
// dashboard's search page.
func TestChunkLocationInChunksSearchAndDashboard(t *testing.T) {
	e := newEnv(t, 0)
	d := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindDocument, Filename: "sales.xlsx", TaskID: "loc-1", Priority: "high"}
	if err := e.docs.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	loc := `{"sheet":"Sales","row_start":2,"row_end":41}`
	err := e.docs.Complete(t.Context(), d.ID, docstore.Completion{Chunks: []docstore.Chunk{
		{Ordinal: 0, Content: "region: North; units: 120", TokenCount: 5, Heading: "Sales", Location: json.RawMessage(loc)},
		{Ordinal: 1, Content: "no position", TokenCount: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := e.get(t, tokenAcme, fmt.Sprintf("/api/v1/documents/%d/chunks", d.ID))
	chunks, _ := body["chunks"].([]any)
	if resp.StatusCode != 200 || len(chunks) != 2 {
		t.Fatalf("chunks = %d %v", resp.StatusCode, body)
	}
	if got, _ := json.Marshal(chunks[0].(map[string]any)["location"]); string(got) != `{"row_end":41,"row_start":2,"sheet":"Sales"}` {
		t.Fatalf("chunk 0 location %s", got)
	}
	if v, ok := chunks[1].(map[string]any)["location"]; !ok || v != nil {
		t.Fatalf("chunk 1 location %v (present %v), want null", v, ok)
	}
	resp, body = e.get(t, tokenAcme, searchPath("7", "north units"))
	results, _ := body["results"].([]any)
	if resp.StatusCode != 200 || len(results) != 1 {
		t.Fatalf("search = %d %v", resp.StatusCode, body)
	}
	if got, _ := json.Marshal(results[0].(map[string]any)["location"]); string(got) != `{"row_end":41,"row_start":2,"sheet":"Sales"}` {
		t.Fatalf("search result location %s", got)
	}
	b := e.browser(t)
	b.signIn()
	resp, page := b.get("/ui/search?" + url.Values{"tenant": {"acme"}, "agent": {"7"}, "q": {"north units"}}.Encode())
	wantStatus(t, resp, page, http.StatusOK)
	if !strings.Contains(page, "sheet Sales, rows 2–41 · Sales") {
		t.Fatalf("dashboard search results lack the location:\n%s", page)
	}
}
