// Package ingest holds the job handlers that turn documents and web pages into stored,
// embedded chunks: extract → chunk → embed (batched) → one PostgreSQL transaction.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/batch"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/metrics"
	"github.com/quirehq/quire/shared/upload"
	"github.com/quirehq/quire/worker-service/internal/chunk"
	"github.com/quirehq/quire/worker-service/internal/extract"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// Progress bands of a document job (DESIGN §3).
const (
	progressExtract = 20
	progressChunk   = 50
	progressEmbed   = 80
	progressDone    = 100
)

// StageObserver is told how long each pipeline stage took, for metrics. May be nil.
type StageObserver interface {
	StageDone(stage string, d time.Duration)
}

// CountedEmbedder is an embedder that can be told how many tokens its texts hold, for callers
// that counted them already (a chunk carries its exact count), so it need not count again.
type CountedEmbedder interface {
	embed.Embedder
	EmbedCounted(ctx context.Context, texts []string, tokens int) ([][]float32, error)
}

// Records writes the document rows of a kind's jobs: the processing mark at the start of a
// run, the failure of a dead-lettered one. Every ingestion handler has one.
type Records struct {
	Docs *docstore.Store
	// Processing, if set, writes the processing marks of jobs on their first run in batches
	// (see begin); otherwise each run writes its own.
	Processing *batch.IDs
	Logger     *slog.Logger
}

// JobFailed implements worker.FailureRecorder: the job's document, if it has one, is marked
// failed with the reason.
func (p *Records) JobFailed(ctx context.Context, j *job.Job, reason string) error {
	if j.DocumentID == 0 {
		return nil
	}
	return p.Docs.Fail(ctx, j.DocumentID, reason)
}

// Indexer chunks, embeds and commits extracted text: what the document, webpage and reindex
// handlers share.
type Indexer struct {
	*Records
	Embedder embed.Embedder
	Chunking chunk.Options
	// BatchSize is the number of chunks per embeddings request (default 64).
	BatchSize int
	Stages    StageObserver
	// NoUsage turns usage metering off (USAGE_METERING=off): commits record no usage events.
	// For benchmarks that price metering; usage reports and quotas then miss this worker's work.
	NoUsage bool
}

// DocumentHandler handles document jobs: the uploaded bytes are read from the UPLOADS object
// store, extracted, then indexed.
type DocumentHandler struct {
	*Indexer
	// Uploads holds the uploaded bytes.
	Uploads   *upload.Store
	Extractor *extract.Extractor
	// UploadDeletes, if set, deletes processed uploads in batches (write function
	// Uploads.DeleteMany); otherwise each job deletes its own before it ends. Either way a
	// failed delete leaves garbage bytes, never a wrong result.
	UploadDeletes *batch.Batcher[*jetstream.ObjectInfo]

	prefetchMu sync.Mutex
	prefetches map[string]*prefetched // by task id
}

// ReindexHandler handles reindex jobs: it re-embeds a completed document's stored chunks with
// the current embeddings model, keeping the extracted text and the chunking as they are.
type ReindexHandler struct {
	*Indexer
}

// Handle implements worker.Handler.
func (p *ReindexHandler) Handle(ctx context.Context, j *job.Job) error {
	if done, err := p.begin(ctx, j); done || err != nil {
		return err
	}
	return p.reindex(ctx, j)
}

// Handle implements worker.Handler.
func (p *DocumentHandler) Handle(ctx context.Context, j *job.Job) error {
	rep := worker.ReporterFrom(ctx)
	if done, err := p.begin(ctx, j); done || err != nil {
		return err
	}
	start := time.Now()
	data, info, err := p.upload(ctx, j)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		// The bytes are gone: if an earlier delivery committed the results, report them.
		if done, berr := p.beginNow(ctx, j); done || berr != nil {
			return berr
		}
	}
	if err != nil {
		return err
	}
	p.stage(metrics.StageRead, start)
	if err := rep.Progress(ctx, progressExtract, "extracting text"); err != nil {
		return err
	}
	t, err := doctype.Sniff(data, j.Filename)
	if err != nil {
		return worker.Permanent(fmt.Errorf("ingest: %w", err))
	}
	start = time.Now()
	last := -1
	doc, err := p.Extractor.Extract(ctx, bytes.NewReader(data), int64(len(data)), t, func(done, total int) {
		if total <= 0 {
			return
		}
		// One status write per percent, not per page: a 5,000-page PDF moves 30 times.
		cur := min(progressExtract+(progressChunk-progressExtract)*done/total, progressChunk-1)
		if cur == last {
			return
		}
		last = cur
		_ = rep.Progress(ctx, cur, fmt.Sprintf("extracting text (%d/%d)", done, total))
	})
	if err != nil {
		return extractError(ctx, err)
	}
	p.stage(metrics.StageExtract, start)
	if err := p.store(ctx, j, doc, int64(len(data))); err != nil {
		return err
	}
	p.dropUpload(ctx, j, info)
	return nil
}

// dropUpload deletes the uploaded bytes of j, described by info (nil: not known), once its
// chunks are committed. A failure here only leaves garbage, never a wrong result.
func (p *DocumentHandler) dropUpload(ctx context.Context, j *job.Job, info *jetstream.ObjectInfo) {
	if j.Object == "" {
		return
	}
	if p.UploadDeletes != nil && info != nil && info.Name == j.Object {
		p.UploadDeletes.Add(info)
	} else if err := p.Uploads.Delete(context.WithoutCancel(ctx), j.Object, info); err != nil {
		p.Logger.Warn("could not remove uploaded bytes", "task_id", j.TaskID, "err", err)
	}
}

// store chunks, embeds and stores an extracted document; size is the bytes ingested (the
// upload's, or the fetched page's), metered with the commit.
func (p *Indexer) store(ctx context.Context, j *job.Job, doc *extract.Document, size int64) error {
	rep := worker.ReporterFrom(ctx)
	if err := rep.Progress(ctx, progressChunk, "chunking"); err != nil {
		return err
	}
	start := time.Now()
	chunks := chunk.Split(doc, p.Chunking)
	p.stage(metrics.StageChunk, start)
	if len(chunks) == 0 {
		return worker.Permanent(fmt.Errorf("ingest: %w", extract.ErrEmpty))
	}
	if err := rep.Progress(ctx, progressEmbed, fmt.Sprintf("embedding %d chunks", len(chunks))); err != nil {
		return err
	}
	start = time.Now()
	vectors, err := p.embed(ctx, chunks)
	if err != nil {
		return err
	}
	p.stage(metrics.StageEmbed, start)
	rows := make([]docstore.Chunk, len(chunks))
	for i, c := range chunks {
		rows[i] = docstore.Chunk{Ordinal: c.Ordinal, Content: c.Content, TokenCount: c.TokenCount, Page: c.Page, Heading: c.Heading, Location: c.Location.JSON(), Embedding: vectors[i]}
	}
	start = time.Now()
	if err := p.Docs.Complete(ctx, j.DocumentID, docstore.Completion{Title: doc.Title, EmbeddingModel: p.Embedder.Model(), Chunks: rows,
		Usage: p.usage(j, doc, chunks, size)}); err != nil {
		return mapStoreError(err)
	}
	p.stage(metrics.StageStore, start)
	rep.Result(func(st *job.Status) {
		st.DocumentID, st.ChunkCount = j.DocumentID, len(rows)
	})
	return nil
}

// usage is what storing doc, split into chunks, is metered as: its pages (a web page is one),
// size bytes ingested and the chunks' tokens, which are what the embeddings requests carry
// (the provider's tokenizer, cl100k_base, counts them). Nothing with NoUsage.
func (p *Indexer) usage(j *job.Job, doc *extract.Document, chunks []chunk.Chunk, size int64) docstore.Usage {
	if p.NoUsage {
		return docstore.Usage{}
	}
	u := docstore.Usage{Pages: doc.Pages, Bytes: size}
	if j.Kind == job.KindWebpage {
		u.Pages = 1
	}
	for _, c := range chunks {
		u.EmbeddingTokens += c.TokenCount
	}
	return u
}

// reindex re-embeds the stored chunks of a completed document with the current model.
func (p *Indexer) reindex(ctx context.Context, j *job.Job) error {
	rep := worker.ReporterFrom(ctx)
	stored, err := p.Docs.ChunkTexts(ctx, j.DocumentID)
	if err != nil {
		return err
	}
	if len(stored) == 0 {
		return worker.Permanent(fmt.Errorf("ingest: reindex document %d: it has no chunks", j.DocumentID))
	}
	if err := rep.Progress(ctx, progressEmbed, fmt.Sprintf("re-embedding %d chunks with %s", len(stored), p.Embedder.Model())); err != nil {
		return err
	}
	chunks := make([]chunk.Chunk, len(stored))
	ordinals := make([]int, len(stored))
	for i, c := range stored {
		chunks[i] = chunk.Chunk{Ordinal: c.Ordinal, Content: c.Content}
		ordinals[i] = c.Ordinal
	}
	start := time.Now()
	vectors, err := p.embed(ctx, chunks)
	if err != nil {
		return err
	}
	p.stage(metrics.StageEmbed, start)
	start = time.Now()
	if err := p.Docs.ReplaceEmbeddings(ctx, j.DocumentID, p.Embedder.Model(), ordinals, vectors); err != nil {
		return mapStoreError(err)
	}
	p.stage(metrics.StageStore, start)
	rep.Result(func(st *job.Status) { st.DocumentID, st.ChunkCount = j.DocumentID, len(stored) })
	return nil
}

// embed embeds chunk texts in batches, moving progress through the 80→100 band per batch.
func (p *Indexer) embed(ctx context.Context, chunks []chunk.Chunk) ([][]float32, error) {
	rep := worker.ReporterFrom(ctx)
	size := p.BatchSize
	if size <= 0 {
		size = 64
	}
	out := make([][]float32, 0, len(chunks))
	for i := 0; i < len(chunks); i += size {
		end := min(i+size, len(chunks))
		texts := make([]string, 0, end-i)
		tokens := 0
		for _, c := range chunks[i:end] {
			texts = append(texts, c.Content)
			if tokens >= 0 && c.TokenCount > 0 {
				tokens += c.TokenCount
			} else {
				tokens = -1 // a chunk without its count (a stored chunk being re-embedded)
			}
		}
		var vecs [][]float32
		var err error
		if ce, ok := p.Embedder.(CountedEmbedder); ok && tokens >= 0 {
			vecs, err = ce.EmbedCounted(ctx, texts, tokens)
		} else {
			vecs, err = p.Embedder.Embed(ctx, texts)
		}
		if err != nil {
			return nil, embedError(fmt.Errorf("ingest: embed chunks %d-%d: %w", i, end-1, err))
		}
		if len(vecs) != len(texts) {
			return nil, fmt.Errorf("ingest: embed chunks %d-%d: got %d vectors for %d texts", i, end-1, len(vecs), len(texts))
		}
		out = append(out, vecs...)
		if end < len(chunks) {
			cur := progressEmbed + (progressDone-progressEmbed)*end/len(chunks)
			if err := rep.Progress(ctx, min(cur, progressDone-1), fmt.Sprintf("embedding (%d/%d chunks)", end, len(chunks))); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// prefetched is an upload being read ahead of its job's run.
type prefetched struct {
	done chan struct{}
	data []byte
	info *jetstream.ObjectInfo
	err  error
}

// Prefetch starts reading the upload of a document job while the worker reads the job's
// status (worker.Prefetcher): the read Document makes first, overlapped with the status read.
// Document takes what was read; discard drops it when the job does not run.
func (p *DocumentHandler) Prefetch(ctx context.Context, j *job.Job) (discard func()) {
	if j.Kind != job.KindDocument || j.Object == "" {
		return func() {}
	}
	f := &prefetched{done: make(chan struct{})}
	p.prefetchMu.Lock()
	if _, dup := p.prefetches[j.TaskID]; dup {
		p.prefetchMu.Unlock()
		return func() {} // another delivery of the job is in this process: it reads its own
	}
	if p.prefetches == nil {
		p.prefetches = map[string]*prefetched{}
	}
	p.prefetches[j.TaskID] = f
	p.prefetchMu.Unlock()
	rctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(f.done)
		f.data, f.info, f.err = p.readObject(rctx, j.Object, j.Upload)
	}()
	return func() {
		cancel() // a read still going on is of no use any more
		p.prefetchMu.Lock()
		defer p.prefetchMu.Unlock()
		if p.prefetches[j.TaskID] == f {
			delete(p.prefetches, j.TaskID)
		}
	}
}

// upload returns the bytes and description of j's upload: those Prefetch read, or read now.
func (p *DocumentHandler) upload(ctx context.Context, j *job.Job) ([]byte, *jetstream.ObjectInfo, error) {
	p.prefetchMu.Lock()
	f := p.prefetches[j.TaskID]
	delete(p.prefetches, j.TaskID)
	p.prefetchMu.Unlock()
	if f == nil {
		return p.readObject(ctx, j.Object, j.Upload)
	}
	select {
	case <-f.done:
		return f.data, f.info, f.err
	case <-ctx.Done():
		return nil, nil, context.Cause(ctx)
	}
}

// readObject reads upload name, which ref describes if it is not nil, and returns its bytes
// and its description. An upload that is gone or too large fails the job permanently.
func (p *DocumentHandler) readObject(ctx context.Context, name string, ref *job.UploadRef) ([]byte, *jetstream.ObjectInfo, error) {
	data, info, err := p.Uploads.Read(ctx, name, ref)
	if errors.Is(err, jetstream.ErrObjectNotFound) || errors.Is(err, upload.ErrTooLarge) {
		return nil, nil, worker.Permanent(fmt.Errorf("ingest: %w", err))
	}
	return data, info, err
}

func (p *Indexer) stage(name string, start time.Time) {
	if p.Stages != nil {
		p.Stages.StageDone(name, time.Since(start))
	}
}

// begin moves the job's document to processing. done is true when an earlier delivery of the
// job already committed its results (its ack or final status was lost): the job then reports
// those results and ends, rather than failing on bytes that are gone.
//
// On a job's first run nothing of it can be committed yet, so with p.Processing the mark is
// queued to be written with others in one statement instead of costing the run a round trip
// and a commit of its own. A document cancelled or deleted meanwhile is then found by
// Complete, which writes nothing for it.
func (p *Records) begin(ctx context.Context, j *job.Job) (done bool, err error) {
	if p.Processing != nil && worker.ReporterFrom(ctx).Attempt() == 1 {
		p.Processing.Add(j.DocumentID)
		return false, nil
	}
	return p.beginNow(ctx, j)
}

// beginNow is begin's mark written at once, which tells a document whose results are
// committed.
func (p *Records) beginNow(ctx context.Context, j *job.Job) (done bool, err error) {
	err = p.Docs.StartProcessing(ctx, j.DocumentID)
	var completed *docstore.CompletedError
	if errors.As(err, &completed) {
		p.Logger.Info("results already committed by an earlier delivery", "task_id", j.TaskID, "document_id", j.DocumentID)
		worker.ReporterFrom(ctx).Result(func(st *job.Status) {
			st.DocumentID, st.ChunkCount = j.DocumentID, completed.ChunkCount
		})
		return true, nil
	}
	if err != nil {
		return false, mapStoreError(err)
	}
	return false, nil
}

// mapStoreError turns a cancelled document into ErrRevoked and a deleted one into a permanent
// error; anything else (PostgreSQL down) is retried.
func mapStoreError(err error) error {
	switch {
	case errors.Is(err, job.ErrConflict):
		return fmt.Errorf("%w: %w", worker.ErrRevoked, err)
	case errors.Is(err, job.ErrNotFound):
		return worker.Permanent(fmt.Errorf("ingest: document deleted: %w", err))
	}
	return err
}

// embedError makes an input or model the endpoint refused permanent and passes on a server's
// request to wait; anything else (endpoint down, retries exhausted) is retried.
func embedError(err error) error {
	if errors.Is(err, embed.ErrPermanent) {
		return worker.Permanent(err)
	}
	if ra, ok := errors.AsType[*embed.RetryLaterError](err); ok {
		return worker.RetryAfter(err, ra.After)
	}
	return err
}

// extractError makes extraction failures permanent: retrying the same bytes cannot help.
// Not so a cancelled or expired context, an extraction engine that failed to start
// (extract.ErrEngine) or a read error of the bytes themselves (no extract sentinel): those
// are retried.
func extractError(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, extract.ErrEngine) || !isDocumentError(err) {
		return err
	}
	return worker.Permanent(err)
}

// isDocumentError reports whether err says something about the document itself.
func isDocumentError(err error) bool {
	for _, e := range []error{extract.ErrUnsupported, extract.ErrCorrupt, extract.ErrEncrypted,
		extract.ErrNeedsOCR, extract.ErrTooLarge, extract.ErrEmpty} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
