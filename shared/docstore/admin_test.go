package docstore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

func TestAdminCrossTenantReads(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	insert := func(tenant, agent, priority string) *docstore.Document {
		t.Helper()
		d := &docstore.Document{TenantID: tenant, AgentID: agent, Kind: job.KindDocument, Filename: "a.txt",
			TaskID: fmt.Sprintf("admin-task-%d", taskSeq.Add(1)), Priority: priority}
		if err := s.InsertDocument(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a1 := insert("acme", "7", "high")
	a2 := insert("acme", "7", "low")
	o1 := insert("other", "9", "high")
	a3 := insert("acme", "8", "high")
	if err := s.Complete(ctx, a1.ID, docstore.Completion{EmbeddingModel: "m", Chunks: []docstore.Chunk{{Content: "x", TokenCount: 1}, {Ordinal: 1, Content: "y", TokenCount: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Fail(ctx, a2.ID, "broken"); err != nil {
		t.Fatal(err)
	}

	ids := func(docs []*docstore.Document) []int64 {
		var out []int64
		for _, d := range docs {
			out = append(out, d.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    docstore.AdminFilter
		want []int64
	}{
		{"all, newest first", docstore.AdminFilter{}, []int64{a3.ID, o1.ID, a2.ID, a1.ID}},
		{"one tenant", docstore.AdminFilter{TenantID: "acme"}, []int64{a3.ID, a2.ID, a1.ID}},
		{"one agent of any tenant", docstore.AdminFilter{AgentID: "9"}, []int64{o1.ID}},
		{"statuses", docstore.AdminFilter{Statuses: []string{job.DocCompleted, job.DocFailed}}, []int64{a2.ID, a1.ID}},
		{"priority", docstore.AdminFilter{Priority: "low"}, []int64{a2.ID}},
		{"page", docstore.AdminFilter{Before: o1.ID, Limit: 1}, []int64{a2.ID}},
		{"nothing", docstore.AdminFilter{TenantID: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.RecentDocuments(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(tt.want) {
				t.Fatalf("RecentDocuments(%+v) = %v, want %v", tt.f, ids(got), tt.want)
			}
		})
	}

	d, err := s.FindTask(ctx, o1.TaskID)
	if err != nil || d.ID != o1.ID || d.TenantID != "other" {
		t.Fatalf("FindTask = %+v, %v", d, err)
	}
	if _, err := s.FindTask(ctx, "no-such-task"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("FindTask of a missing task = %v, want ErrNotFound", err)
	}

	sums, err := s.AgentSummaries(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 3 {
		t.Fatalf("AgentSummaries = %+v, want 3 agents", sums)
	}
	// Newest upload first: acme/8, then other/9, then acme/7.
	if sums[0].AgentID != "8" || sums[1].TenantID != "other" || sums[2].AgentID != "7" {
		t.Fatalf("AgentSummaries order = %+v", sums)
	}
	if a := sums[2]; a.Documents != 2 || a.Completed != 1 || a.Failed != 1 || a.Queued != 0 || a.Chunks != 2 {
		t.Fatalf("acme/7 summary = %+v", a)
	}
	if a := sums[0]; a.Documents != 1 || a.Queued != 1 {
		t.Fatalf("acme/8 summary = %+v", a)
	}
	only, err := s.AgentSummaries(ctx, "other", 10)
	if err != nil || len(only) != 1 || only[0].AgentID != "9" {
		t.Fatalf("AgentSummaries(other) = %+v, %v", only, err)
	}
}
