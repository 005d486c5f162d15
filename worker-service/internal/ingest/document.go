// Package ingest holds the job handlers that turn documents and web pages into stored,
// embedded chunks: extract → chunk → embed (batched) → one PostgreSQL transaction.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/batch"
	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/shared/embed"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/taskstatus"
	"github.com/quirehq/quire/worker-service/internal/chunk"
	"github.com/quirehq/quire/worker-service/internal/extract"
	"github.com/quirehq/quire/worker-service/internal/webfetch"
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

// Pipeline holds what the handlers share.
type Pipeline struct {
	Docs      *docstore.Store
	Uploads   jetstream.ObjectStore
	Extractor *extract.Extractor
	Embedder  embed.Embedder
	Chunking  chunk.Options
	// BatchSize is the number of chunks per embeddings request (default 64).
	BatchSize int
	// MaxObjectBytes caps the bytes read from the object store (default 1 GiB).
	MaxObjectBytes int64
	Stages         StageObserver
	Logger         *slog.Logger

	// Fetcher fetches the pages of webpage jobs.
	Fetcher *webfetch.Fetcher
	// Crawler discovers the pages of crawl jobs.
	Crawler *webfetch.Crawler
	// Hosts spaces the fetches of crawled pages per host; share the Crawler's limiter. May be
	// nil (no spacing).
	Hosts *webfetch.HostLimiter
	// Jobs publishes the webpage jobs a crawl fans out.
	Jobs jetstream.Publisher
	// Statuses keeps the page counters of crawl tasks.
	Statuses *taskstatus.Store
	// Processing, if set, writes the processing marks of jobs on their first run in batches
	// (see begin); otherwise each run writes its own.
	Processing *batch.IDs
	// UploadDeletes, if set, deletes processed uploads in batches (write function
	// DeleteUploads); otherwise each job deletes its own before it ends. Either way a failed
	// delete leaves garbage bytes, never a wrong result.
	UploadDeletes *batch.Batcher[*jetstream.ObjectInfo]
	// Streams, if set, finds the stream behind Uploads, from which an upload of one chunk (any
	// upload up to 128 KiB) is read by direct get: its description, then its chunk. Without it
	// every read goes through Uploads.Get, which creates and deletes a consumer per read.
	Streams jetstream.StreamManager

	// NoUsage turns usage metering off (USAGE_METERING=off): commits record no usage events.
	// For benchmarks that price metering; usage reports and quotas then miss this worker's work.
	NoUsage bool

	prefetchMu sync.Mutex
	prefetches map[string]*prefetched // by task id

	uploadsMu     sync.Mutex
	uploadsStream jetstream.Stream
}

// JobFailed implements worker.FailureRecorder: the document is marked failed with the reason.
// A dead-lettered page of a crawl counts as failed in its crawl's counters.
func (p *Pipeline) JobFailed(ctx context.Context, j *job.Job, reason string) error {
	p.countCrawlPage(ctx, j, false)
	if j.DocumentID == 0 {
		return nil
	}
	return p.Docs.Fail(ctx, j.DocumentID, reason)
}

// Document handles a document job: the uploaded bytes are read from the UPLOADS object store.
func (p *Pipeline) Document(ctx context.Context, j *job.Job) error {
	rep := worker.ReporterFrom(ctx)
	if done, err := p.begin(ctx, j); done || err != nil {
		return err
	}
	if j.Reindex {
		return p.reindex(ctx, j)
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
	p.stage("read", start)
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
	p.stage("extract", start)
	return p.store(ctx, j, doc, info, int64(len(data)))
}

// store chunks, embeds and stores an extracted document. upload describes the uploaded bytes
// it was extracted from, which are deleted once the results are committed (nil: none, or not
// known); size is the bytes ingested (the upload's, or the fetched page's), metered with the
// commit.
func (p *Pipeline) store(ctx context.Context, j *job.Job, doc *extract.Document, upload *jetstream.ObjectInfo, size int64) error {
	rep := worker.ReporterFrom(ctx)
	if err := rep.Progress(ctx, progressChunk, "chunking"); err != nil {
		return err
	}
	start := time.Now()
	chunks := chunk.Split(doc, p.Chunking)
	p.stage("chunk", start)
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
	p.stage("embed", start)
	rows := make([]docstore.Chunk, len(chunks))
	for i, c := range chunks {
		rows[i] = docstore.Chunk{Ordinal: c.Ordinal, Content: c.Content, TokenCount: c.TokenCount, Page: c.Page, Heading: c.Heading, Embedding: vectors[i]}
	}
	start = time.Now()
	if err := p.Docs.Complete(ctx, j.DocumentID, docstore.Completion{Title: doc.Title, EmbeddingModel: p.Embedder.Model(), Chunks: rows,
		Usage: p.usage(j, doc, chunks, size)}); err != nil {
		return mapStoreError(err)
	}
	p.stage("store", start)
	rep.Result(func(st *job.Status) {
		st.DocumentID, st.ChunkCount = j.DocumentID, len(rows)
	})
	if j.Object != "" {
		// The bytes are no longer needed once the chunks are committed. A failure here only
		// leaves garbage, never a wrong result.
		if p.UploadDeletes != nil && upload != nil && upload.Name == j.Object {
			p.UploadDeletes.Add(upload)
		} else if err := p.deleteUpload(context.WithoutCancel(ctx), j.Object, upload); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			p.Logger.Warn("could not remove uploaded bytes", "task_id", j.TaskID, "err", err)
		}
	}
	return nil
}

// usage is what storing doc, split into chunks, is metered as: its pages (a web page is one),
// size bytes ingested and the chunks' tokens, which are what the embeddings requests carry
// (the provider's tokenizer, cl100k_base, counts them). Nothing with NoUsage.
func (p *Pipeline) usage(j *job.Job, doc *extract.Document, chunks []chunk.Chunk, size int64) docstore.Usage {
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

// DeleteUploads deletes processed uploads, described by what their reads returned, all at
// once: the requests of a batch share the connection's writes and the server's replies (the
// write function of UploadDeletes).
func (p *Pipeline) DeleteUploads(ctx context.Context, uploads []*jetstream.ObjectInfo) error {
	errs := make([]error, len(uploads))
	var wg sync.WaitGroup
	for i, info := range uploads {
		wg.Go(func() {
			if err := p.deleteUpload(ctx, info.Name, info); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reindex re-embeds the stored chunks of a completed document with the current model, keeping
// the extracted text and the chunking as they are.
func (p *Pipeline) reindex(ctx context.Context, j *job.Job) error {
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
	p.stage("embed", start)
	start = time.Now()
	if err := p.Docs.ReplaceEmbeddings(ctx, j.DocumentID, p.Embedder.Model(), ordinals, vectors); err != nil {
		return mapStoreError(err)
	}
	p.stage("store", start)
	rep.Result(func(st *job.Status) { st.DocumentID, st.ChunkCount = j.DocumentID, len(stored) })
	return nil
}

// embed embeds chunk texts in batches, moving progress through the 80→100 band per batch.
func (p *Pipeline) embed(ctx context.Context, chunks []chunk.Chunk) ([][]float32, error) {
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
func (p *Pipeline) Prefetch(ctx context.Context, j *job.Job) (discard func()) {
	if j.Kind != job.KindDocument || j.Object == "" || j.Reindex {
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
func (p *Pipeline) upload(ctx context.Context, j *job.Job) ([]byte, *jetstream.ObjectInfo, error) {
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

// objectStall is how long a read of uploaded bytes may make no progress before it is abandoned
// (and the job retried): a broker restart mid-transfer must not hang the job until JOB_TIMEOUT.
const objectStall = 10 * time.Second

// readObject reads upload name, which ref describes if it is not nil, and returns its bytes
// and its description.
func (p *Pipeline) readObject(ctx context.Context, name string, ref *job.UploadRef) ([]byte, *jetstream.ObjectInfo, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The watchdog covers the lookup too: a request lost in a broker restart never answers.
	sr := &stallReader{}
	sr.last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(objectStall / 10)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				if now.Sub(time.Unix(0, sr.last.Load())) > objectStall {
					cancel(fmt.Errorf("ingest: read upload %s: no progress for %v", name, objectStall))
					return
				}
			}
		}
	}()
	stalled := func(err error) error {
		if cause := context.Cause(rctx); cause != nil && ctx.Err() == nil {
			return cause
		}
		return fmt.Errorf("ingest: read upload %s: %w", name, err)
	}
	gone := func(err error) error {
		return worker.Permanent(fmt.Errorf("ingest: uploaded bytes %s are gone: %w", name, err))
	}
	limit := p.MaxObjectBytes
	if limit <= 0 {
		limit = 1 << 30
	}
	if st := p.uploadStream(rctx); st != nil {
		data, info, ok, err := readChunk(rctx, p.Uploads, st, name, ref, limit)
		switch {
		case errors.Is(err, jetstream.ErrObjectNotFound):
			return nil, nil, gone(err)
		case errors.Is(err, errTooLarge):
			return nil, nil, worker.Permanent(fmt.Errorf("ingest: upload %s exceeds %d bytes", name, limit))
		case err != nil:
			return nil, nil, stalled(err)
		case ok:
			sr.last.Store(time.Now().UnixNano())
			return data, info, nil
		}
	}
	r, err := p.Uploads.Get(rctx, name)
	if err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil, nil, gone(err)
		}
		return nil, nil, stalled(err)
	}
	defer func() { _ = r.Close() }()
	sr.r = io.LimitReader(r, limit+1)
	data, err := io.ReadAll(sr)
	if err != nil {
		return nil, nil, stalled(err)
	}
	if int64(len(data)) > limit {
		return nil, nil, worker.Permanent(fmt.Errorf("ingest: upload %s exceeds %d bytes", name, limit))
	}
	info, err := r.Info()
	if err != nil {
		info = nil // deleted by name then
	}
	return data, info, nil
}

var errTooLarge = errors.New("ingest: upload too large")

// uploadStream returns the stream behind Uploads, looked up through p.Streams once; nil
// without p.Streams or when the look-up fails (it is tried again on the next read).
func (p *Pipeline) uploadStream(ctx context.Context) jetstream.Stream {
	if p.Streams == nil {
		return nil
	}
	p.uploadsMu.Lock()
	defer p.uploadsMu.Unlock()
	if p.uploadsStream == nil {
		status, err := p.Uploads.Status(ctx)
		var st jetstream.Stream
		if err == nil {
			st, err = p.Streams.Stream(ctx, "OBJ_"+status.Bucket()) // the object store's naming of its stream
		}
		if err != nil {
			p.Logger.Warn("cannot read uploads by direct get", "err", err)
			return nil
		}
		p.uploadsStream = st
	}
	return p.uploadsStream
}

// readChunk reads object name of obs, whose stream is st, by direct get when it is stored as
// one chunk, checking its size and digest as Get does. ref, the description the job carries,
// spares the look-up of the object store's; when the chunk it names is not found or does not
// match, the object store's description is read after all. ok is false for an object it
// leaves to Get (more chunks, or a link); errTooLarge if the object is over limit.
func readChunk(ctx context.Context, obs jetstream.ObjectStore, st jetstream.Stream, name string, ref *job.UploadRef, limit int64) (data []byte, info *jetstream.ObjectInfo, ok bool, err error) {
	if ref != nil && ref.Chunks == 1 && ref.NUID != "" && int64(ref.Size) <= limit {
		info = &jetstream.ObjectInfo{ObjectMeta: jetstream.ObjectMeta{Name: name},
			Bucket: strings.TrimPrefix(st.CachedInfo().Config.Name, "OBJ_"), NUID: ref.NUID, Size: ref.Size, Chunks: 1, Digest: ref.Digest}
		if data, err := getChunk(ctx, st, info); err == nil {
			return data, info, true, nil
		} else if ctx.Err() != nil {
			return nil, nil, false, err
		}
	}
	info, err = obs.GetInfo(ctx, name)
	if err != nil {
		return nil, nil, false, err
	}
	if info.Opts != nil && info.Opts.Link != nil || info.Chunks > 1 {
		return nil, nil, false, nil
	}
	if int64(info.Size) > limit {
		return nil, nil, false, errTooLarge
	}
	if info.Size == 0 {
		return []byte{}, info, true, nil
	}
	data, err = getChunk(ctx, st, info)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// A direct get may be answered by a replica that has not caught up yet: leave the
		// read to Get, which reads through the stream's leader.
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("ingest: upload %s: %w", name, err)
	}
	return data, info, true, nil
}

// getChunk reads the one chunk of the object info describes by direct get and checks it
// against info's size and digest.
func getChunk(ctx context.Context, st jetstream.Stream, info *jetstream.ObjectInfo) ([]byte, error) {
	m, err := st.GetLastMsgForSubject(ctx, "$O."+info.Bucket+".C."+info.NUID)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(m.Data)
	if uint64(len(m.Data)) != info.Size || jetstream.GetObjectDigestValue(h) != info.Digest {
		return nil, jetstream.ErrDigestMismatch
	}
	return m.Data, nil
}

// deleteUpload deletes upload name, described by info when it is known: then without looking
// its description up again (jobqueue.DeleteObject).
func (p *Pipeline) deleteUpload(ctx context.Context, name string, info *jetstream.ObjectInfo) error {
	if info != nil && info.Name == name && p.Jobs != nil {
		if st := p.uploadStream(ctx); st != nil {
			return jobqueue.DeleteObject(ctx, p.Jobs, st, info)
		}
	}
	return p.Uploads.Delete(ctx, name)
}

// stallReader records when it last returned data.
type stallReader struct {
	r    io.Reader
	last atomic.Int64
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (p *Pipeline) stage(name string, start time.Time) {
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
func (p *Pipeline) begin(ctx context.Context, j *job.Job) (done bool, err error) {
	if p.Processing != nil && worker.ReporterFrom(ctx).Attempt() == 1 {
		p.Processing.Add(j.DocumentID)
		return false, nil
	}
	return p.beginNow(ctx, j)
}

// beginNow is begin's mark written at once, which tells a document whose results are
// committed.
func (p *Pipeline) beginNow(ctx context.Context, j *job.Job) (done bool, err error) {
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
