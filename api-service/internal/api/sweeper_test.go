package api_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/quiretest"
)

func TestSweeperPublishesTheRecordedJob(t *testing.T) {
	e := newEnv(t, 0)
	recorded := &job.Job{
		V: job.Version, TaskID: "crawl-orphan", Kind: job.KindCrawl, TenantID: "acme", AgentID: "7",
		Priority: job.PriorityLow, URL: "https://example.com/docs/", MaxPages: 7, MaxDepth: 3,
	}
	payload, err := json.Marshal(recorded)
	if err != nil {
		t.Fatal(err)
	}
	d := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindCrawl, URL: recorded.URL, TaskID: recorded.TaskID, Priority: "low", Job: payload}
	if err := e.docs.InsertDocument(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if n, err := e.api.Sweep(t.Context(), 0); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	st, err := e.js.Stream(t.Context(), "JOBS_LOW")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := job.Decode(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "jobs.low.crawl" || got.MaxPages != 7 || got.MaxDepth != 3 || got.DocumentID != d.ID || m.Header.Get("Nats-Msg-Id") != "crawl-orphan" {
		t.Fatalf("re-published %s %+v (Nats-Msg-Id %q); want the recorded crawl job with document id %d",
			m.Subject, got, m.Header.Get("Nats-Msg-Id"), d.ID)
	}
}

func TestUploadMarksItsOutboxRowPublished(t *testing.T) {
	e := newEnv(t, 0)
	for i := range 3 {
		if resp, body := e.upload(t, tokenAcme, "7", "a.txt", []byte("hello "+strconv.Itoa(i)), nil); resp.StatusCode != 202 {
			t.Fatalf("upload = %d %v", resp.StatusCode, body)
		}
	}
	// The marks are written in a batch shortly after the uploads, without a sweep.
	deadline := time.Now().Add(5 * time.Second)
	for {
		un, err := e.docs.Unpublished(t.Context(), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(un) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d uploads still unpublished", len(un))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A sweep right after an upload finds no orphan: it writes the pending marks first.
	if resp, body := e.upload(t, tokenAcme, "7", "b.txt", []byte("hello again"), nil); resp.StatusCode != 202 {
		t.Fatalf("upload = %d %v", resp.StatusCode, body)
	}
	if n, err := e.api.Sweep(t.Context(), 0); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want 0", n, err)
	}
	if got := quiretest.StreamMsgs(t, e.js, "JOBS_HIGH"); got != 4 {
		t.Fatalf("JOBS_HIGH holds %d jobs, want 4", got)
	}
}
