package docstore_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// BenchmarkComplete stores the results of one 10 KB text document (four chunks of about 2.5 KB
// with 384-dimension local embeddings), a job of the worker's drain, without usage metering.
func BenchmarkComplete(b *testing.B) { benchmarkComplete(b, docstore.Usage{}) }

// BenchmarkCompleteMetered is BenchmarkComplete with the document's usage metered in the
// transaction, as the worker does unless USAGE_METERING=off.
func BenchmarkCompleteMetered(b *testing.B) {
	benchmarkComplete(b, docstore.Usage{Pages: 1, Bytes: 10 << 10, EmbeddingTokens: 2400})
}

func benchmarkComplete(b *testing.B, usage docstore.Usage) {
	s, _ := open(b)
	ctx := b.Context()
	vec := localVec(b)
	chunks := make([]docstore.Chunk, 4)
	for i := range chunks {
		var sb strings.Builder
		for w := 0; sb.Len() < 2500; w++ {
			fmt.Fprintf(&sb, "word%d chunk%d text%d ", w*7%97, i, w%13)
		}
		chunks[i] = docstore.Chunk{Ordinal: i, Content: sb.String(), TokenCount: 600, Embedding: vec(sb.String())}
	}
	ids := make([]int64, b.N)
	for i := range ids {
		d := &docstore.Document{TenantID: "acme", AgentID: "7", Kind: job.KindDocument, Filename: "a.txt",
			TaskID: fmt.Sprintf("bench-%d", i), Priority: "high"}
		if err := s.InsertDocument(ctx, d); err != nil {
			b.Fatal(err)
		}
		ids[i] = d.ID
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.StartProcessing(ctx, ids[i]); err != nil {
			b.Fatal(err)
		}
		if err := s.Complete(ctx, ids[i], docstore.Completion{Title: "t", EmbeddingModel: "m", Chunks: chunks, Usage: usage}); err != nil {
			b.Fatal(err)
		}
	}
}
