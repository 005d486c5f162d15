package docstore_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// BenchmarkInsertDocument records one upload as the API does (the documents row with its job,
// and its task in the same statement), then marks it published with the others of its batch of
// 32.
func BenchmarkInsertDocument(b *testing.B) {
	s, _ := open(b)
	ctx := b.Context()
	ids := make([]int64, 0, 32)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		taskID := fmt.Sprintf("bench-%d", i)
		payload, _ := json.Marshal(&job.Job{V: job.Version, TaskID: taskID, Kind: job.KindDocument, TenantID: "acme",
			AgentID: "7", Priority: job.PriorityHigh, Object: taskID, Filename: "a.txt", ContentType: "text/plain"})
		d := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindDocument, Filename: "a.txt",
			ContentType: "text/plain", SizeBytes: 1000, SHA256: fmt.Sprintf("%064d", i), TaskID: taskID, Priority: "high", Job: payload}
		if _, err := s.InsertUnlessDuplicate(ctx, d, "m"); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, d.ID)
		if len(ids) == cap(ids) || i == b.N-1 {
			if err := s.MarkPublishedMany(ctx, ids); err != nil {
				b.Fatal(err)
			}
			ids = ids[:0]
		}
	}
}
