package docstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

type batchStatus struct {
	BatchID    string         `json:"batch_id"`
	State      string         `json:"state"`
	Total      int            `json:"total"`
	Counts     map[string]int `json:"counts"`
	Progress   int            `json:"progress"`
	FinishedAt *string        `json:"finished_at"`
}

func getBatch(t *testing.T, s *docstore.Store, id string) batchStatus {
	t.Helper()
	raw, err := s.BatchStatus(t.Context(), "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	var st batchStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func insertBatch(t *testing.T, s *docstore.Store, id string, n int) []*docstore.Document {
	t.Helper()
	docs := make([]*docstore.Document, n)
	for i := range docs {
		docs[i] = &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindDocument, Filename: fmt.Sprintf("f%d.txt", i),
			TaskID: fmt.Sprintf("%s-task-%d", id, i), Priority: "medium"}
	}
	if err := s.InsertBatch(t.Context(), &docstore.Batch{ID: id, TenantID: "acme", AgentID: "7", CallbackURL: "https://client.example.com/batch"}, docs); err != nil {
		t.Fatal(err)
	}
	return docs
}

// A batch's status is derived from its tasks' records, and the task that ends it records
// batch.completed once, with the final status, however its tasks' ends interleave.
func TestBatchStatusIsDerivedFromItsTasksAndItsEndIsRecordedOnce(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	docs := insertBatch(t, s, "b1", 12)
	if st := getBatch(t, s, "b1"); st.State != "PENDING" || st.Total != 12 || st.Counts["PENDING"] != 12 || st.Progress != 0 || st.FinishedAt != nil {
		t.Fatalf("new batch = %+v", st)
	}
	for i, d := range docs {
		if d.ID == 0 || getTask(t, s, d.TaskID).BatchID != "b1" {
			t.Fatalf("document %d = %+v, not recorded in the batch", i, d)
		}
	}
	if _, err := s.BatchStatus(ctx, "other", "b1"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("another tenant's batch: %v", err)
	}
	if err := s.FinishTask(ctx, docs[0].TaskID, job.StateSuccess, 1, ""); err != nil {
		t.Fatal(err)
	}
	if st := getBatch(t, s, "b1"); st.State != "PROGRESS" || st.Counts["SUCCESS"] != 1 || st.Progress != 8 {
		t.Fatalf("batch after one end = %+v", st)
	}
	if got := deliveries(t, s); len(got) != 0 {
		t.Fatalf("deliveries before the batch ended: %+v", got)
	}
	// The other eleven end concurrently: two fail.
	var wg sync.WaitGroup
	for i, d := range docs[1:] {
		state := job.StateSuccess
		if i < 2 {
			state = job.StateFailure
		}
		wg.Go(func() {
			if err := s.FinishTask(ctx, d.TaskID, state, 1, "bad"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st := getBatch(t, s, "b1")
	if st.State != "PARTIAL" || st.Counts["SUCCESS"] != 10 || st.Counts["FAILURE"] != 2 || st.Progress != 100 || st.FinishedAt == nil {
		t.Fatalf("ended batch = %+v", st)
	}
	got := deliveries(t, s)
	cb, ok := got["https://client.example.com/batch"]
	if len(got) != 1 || !ok || cb.Event.Type != "batch.completed" || cb.Event.Data["state"] != "PARTIAL" || cb.Event.Data["batch_id"] != "b1" {
		t.Fatalf("deliveries after the end = %+v, want one batch.completed to the callback", got)
	}
	failed, err := s.BatchTasks(ctx, "acme", "b1", job.StateFailure)
	if err != nil || len(failed) != 2 {
		t.Fatalf("failed tasks = %d, %v", len(failed), err)
	}
	if _, err := s.BatchTasks(ctx, "other", "b1"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("another tenant's batch tasks: %v", err)
	}
}

// One statement ending every task of a batch (the worker records outcomes in batches) records
// batch.completed once; a retried batch that ends again records it again.
func TestBatchEndedByOneStatementRecordsItsEndOnce(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	docs := insertBatch(t, s, "b-one", 4)
	outcomes := make([]docstore.TaskOutcome, len(docs))
	for i, d := range docs {
		outcomes[i] = docstore.TaskOutcome{TaskID: d.TaskID, State: job.StateFailure, Attempts: 1, Error: "bad"}
	}
	if err := s.FinishTasks(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	if got := deliveries(t, s); len(got) != 1 {
		t.Fatalf("deliveries = %+v, want one batch.completed", got)
	}
	if err := s.RequeueTask(ctx, "acme", docs[0].TaskID); err != nil {
		t.Fatal(err)
	}
	if st := getBatch(t, s, "b-one"); st.State != "PROGRESS" {
		t.Fatalf("batch after a retry = %+v", st)
	}
	if err := s.FinishTask(ctx, docs[0].TaskID, job.StateSuccess, 1, ""); err != nil {
		t.Fatal(err)
	}
	got := deliveries(t, s)
	if cb := got["https://client.example.com/batch"]; len(got) != 1 || cb.Event.Data["state"] != "PARTIAL" {
		t.Fatalf("deliveries after the retried batch ended = %+v, want one batch.completed PARTIAL", got)
	}
}

func TestBatchStates(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	for _, tt := range []struct {
		ends []job.State
		want string
	}{
		{[]job.State{job.StateSuccess, job.StateSuccess}, "SUCCESS"},
		{[]job.State{job.StateFailure, job.StateFailure}, "FAILURE"},
		{[]job.State{job.StateSuccess, job.StateRevoked}, "REVOKED"},
		{[]job.State{job.StateSuccess, job.StateFailure}, "PARTIAL"},
	} {
		id := fmt.Sprintf("b-%s", tt.want)
		docs := insertBatch(t, s, id, len(tt.ends))
		for i, d := range docs {
			if err := s.FinishTask(ctx, d.TaskID, tt.ends[i], 1, ""); err != nil {
				t.Fatal(err)
			}
		}
		if st := getBatch(t, s, id); st.State != tt.want {
			t.Errorf("batch ending %v = %s, want %s", tt.ends, st.State, tt.want)
		}
	}
}
