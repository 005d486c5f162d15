package docstore_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/quirehq/quire/shared/docstore"
)

func TestMarkPublishedManyMarksOnlyTheGivenQueuedRows(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	var docs []*docstore.Document
	for i := range 3 {
		d := newDoc("acme")
		d.TaskID = fmt.Sprintf("outbox-task-%d", i)
		if err := s.InsertDocument(ctx, d); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	if err := s.MarkPublishedMany(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPublishedMany(ctx, []int64{docs[0].ID, docs[2].ID}); err != nil {
		t.Fatal(err)
	}
	un, err := s.Unpublished(ctx, 0, 10)
	if err != nil || len(un) != 1 || un[0].ID != docs[1].ID {
		t.Fatalf("Unpublished = %v, %v; want only document %d", un, err, docs[1].ID)
	}
}

// The duplicate lookup of an upload reads an index of completed uploads, not every document of
// the agent.
func TestFindCompletedBySHAUsesTheCompletedIndex(t *testing.T) {
	_, url := open(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `EXPLAIN SELECT id FROM documents
		WHERE tenant_id = 'acme' AND agent_id = '7' AND sha256 = 'ab' AND sha256 <> '' AND kind = 'document' AND status = 'completed'
		ORDER BY id DESC LIMIT 1`)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range plan {
		if strings.Contains(l, "documents_completed_sha_idx") {
			found = true
		}
	}
	if !found {
		t.Fatalf("plan does not use documents_completed_sha_idx:\n%v", plan)
	}
}
