package ingest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/shared/job"
)

// An uploaded CSV goes through the whole pipeline: sniffed by its extension, each row written
// as "header: value" pairs, and every stored chunk located by its row range.
func TestCSVUploadStoresChunksWithRowLocations(t *testing.T) {
	e := newEnv(t, envOptions{})
	var b strings.Builder
	b.WriteString("region,product,units\n")
	for i := 2; i <= 400; i++ {
		fmt.Fprintf(&b, "North %d,Pump model %d,%d\n", i, i, i*3)
	}
	j := &job.Job{Kind: job.KindDocument, Filename: "sales.csv", ContentType: doctype.CSV.ContentType(), TaskID: "csv-1"}
	j.Object = j.TaskID
	if _, err := e.documents.Uploads.Objects().PutBytes(t.Context(), j.Object, []byte(b.String())); err != nil {
		t.Fatal(err)
	}
	e.submit(t, j)
	st := e.waitState(t, j.TaskID, job.StateSuccess)
	rows := e.chunks(t, j.DocumentID)
	if len(rows) < 2 || st.ChunkCount != len(rows) {
		t.Fatalf("%d chunks stored (status says %d), want several", len(rows), st.ChunkCount)
	}
	next := 2
	for _, r := range rows {
		var loc doctype.Location
		if err := json.Unmarshal(r.Location, &loc); err != nil {
			t.Fatalf("chunk %d location %q: %v", r.Ordinal, r.Location, err)
		}
		if loc.RowStart > next || loc.RowEnd < loc.RowStart || loc.Sheet != "" {
			t.Fatalf("chunk %d location %+v, want rows from at most %d", r.Ordinal, loc, next)
		}
		if want := fmt.Sprintf("region: North %d; product: Pump model %d; units: %d", loc.RowEnd, loc.RowEnd, loc.RowEnd*3); !strings.Contains(r.Content, want) {
			t.Fatalf("chunk %d (rows %d-%d) lacks its last row %q: %q", r.Ordinal, loc.RowStart, loc.RowEnd, want, r.Content)
		}
		next = loc.RowEnd + 1
	}
	if next != 401 {
		t.Fatalf("the chunks cover rows up to %d, want 400", next-1)
	}
}
