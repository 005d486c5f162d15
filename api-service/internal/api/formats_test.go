package api_test

import (
	"archive/zip"
	"bytes"
	"net/http"
	"testing"

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
