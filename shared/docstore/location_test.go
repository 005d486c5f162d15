package docstore_test

import (
	"encoding/json"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
)

func TestChunkLocationsAreStoredAndReturned(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	d := newDoc("acme")
	if err := s.InsertDocument(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.StartProcessing(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	sheet := json.RawMessage(`{"sheet":"Sales","row_start":2,"row_end":41}`)
	err := s.Complete(ctx, d.ID, docstore.Completion{Chunks: []docstore.Chunk{
		{Ordinal: 0, Content: "Region: North; Units: 120", TokenCount: 5, Heading: "Sales", Location: sheet},
		{Ordinal: 1, Content: "no position here", TokenCount: 3},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.Chunks(ctx, "acme", d.ID, -1, 10)
	if err != nil || len(rows) != 2 {
		t.Fatalf("Chunks = %v, %v", rows, err)
	}
	var got map[string]any
	if err := json.Unmarshal(rows[0].Location, &got); err != nil {
		t.Fatalf("location %q: %v", rows[0].Location, err)
	}
	if got["sheet"] != "Sales" || got["row_start"] != 2.0 || got["row_end"] != 41.0 {
		t.Fatalf("location read back = %v", got)
	}
	if rows[1].Location != nil {
		t.Fatalf("chunk without a location read back %q, want nil", rows[1].Location)
	}
	b, _ := json.Marshal(rows[1])
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if v, ok := m["location"]; !ok || v != nil {
		t.Fatalf("JSON of a chunk without location: %s (want \"location\": null)", b)
	}

	hits, err := s.Search(ctx, docstore.SearchQuery{TenantID: "acme", AgentID: "7", Text: "north units", K: 5})
	if err != nil || len(hits) != 1 {
		t.Fatalf("Search = %+v, %v", hits, err)
	}
	if string(hits[0].Location) != string(rows[0].Location) {
		t.Fatalf("search hit location %s, want %s", hits[0].Location, rows[0].Location)
	}
}
