package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/metrics"
	"github.com/quirehq/quire/shared/taskstatus"
	"github.com/quirehq/quire/worker-service/internal/extract"
	"github.com/quirehq/quire/worker-service/internal/webfetch"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// WebpageHandler handles webpage jobs.
type WebpageHandler struct {
	*Indexer
	Extractor *extract.Extractor
	// Fetcher fetches the pages.
	Fetcher *webfetch.Fetcher
	// Hosts spaces the fetches of crawled pages per host; share the Crawler's limiter. May be
	// nil (no spacing).
	Hosts *webfetch.HostLimiter
	// Statuses keeps the page counters of crawl tasks.
	Statuses *taskstatus.Store
}

// JobFailed implements worker.FailureRecorder: the page's document is marked failed, and a
// page of a crawl counts as failed in its crawl's counters.
func (p *WebpageHandler) JobFailed(ctx context.Context, j *job.Job, reason string) error {
	p.countCrawlPage(ctx, j, false)
	return p.Records.JobFailed(ctx, j, reason)
}

// Handle handles a webpage job: it fetches j.URL through the SSRF-guarded Fetcher (progress
// 0 "fetching"), extracts the page's main content and title (an HTML or XHTML page), its text
// (plain text, Markdown) or, for a PDF URL, the PDF's text (progress 20), then chunks, embeds
// and stores it like a document (the row's kind is webpage and its url recorded).
//
// When the extracted text (and title) hash to the documents row's sha256, the text the stored
// chunks were made from, the chunks are kept and nothing is embedded: a re-crawled page that did
// not change costs one fetch.
//
// Failures: a 404 or 410, any other non-retryable status, a blocked address, an invalid URL,
// too many redirects, an unsupported content type, a body over the size cap and a page without
// text are permanent (dead letter at once). Timeouts, connection errors, 408, 425, 429 and 5xx
// are retried with backoff, and a Retry-After longer than the backoff is honoured
// ([worker.RetryAfter]).
//
// A page of a crawl (j.ParentTaskID set) waits for its host's turn in Hosts, and when it is
// stored counts as done in its crawl's counters (dead-lettered, as failed: see
// [WebpageHandler.JobFailed]).
func (p *WebpageHandler) Handle(ctx context.Context, j *job.Job) error {
	rep := worker.ReporterFrom(ctx)
	if done, err := p.begin(ctx, j); done || err != nil {
		return err
	}
	if err := rep.Progress(ctx, 0, "fetching"); err != nil {
		return err
	}
	start := time.Now()
	page, err := p.fetchPage(ctx, j)
	if err != nil {
		return err
	}
	p.stage(metrics.StageRead, start)
	if err := rep.Progress(ctx, progressExtract, "extracting text"); err != nil {
		return err
	}
	start = time.Now()
	doc, err := p.extractPage(ctx, page)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, extract.ErrEngine) {
			return err // a deployment problem, not the page's: another worker may manage
		}
		return extractError(ctx, fmt.Errorf("ingest: extract %s: %w", page.URL, err))
	}

	p.stage(metrics.StageExtract, start)
	sum := textSHA256(doc)
	kept, err := p.keepUnchanged(ctx, j, doc, sum)
	if err != nil {
		return err
	}
	if !kept {
		if err := p.store(ctx, j, doc, int64(len(page.Body))); err != nil {
			return err
		}
		if err := p.Docs.RecordPageContent(context.WithoutCancel(ctx), j.DocumentID, sum, page.MediaType, int64(len(page.Body))); err != nil {
			// The chunks are committed; without the hash the next fetch only re-embeds.
			p.Logger.Warn("could not record the page's text hash", "task_id", j.TaskID, "document_id", j.DocumentID, "err", err)
		}
	}
	p.countCrawlPage(ctx, j, true)
	return nil
}

// fetchPage fetches j.URL, politely when it is a page of a crawl, and classifies failures.
func (p *WebpageHandler) fetchPage(ctx context.Context, j *job.Job) (*webfetch.Page, error) {
	if j.ParentTaskID != "" && p.Hosts != nil {
		if u, err := url.Parse(j.URL); err == nil && u.Host != "" {
			release, err := p.Hosts.Acquire(ctx, u.Host)
			if err != nil {
				return nil, fmt.Errorf("ingest: fetch %s: %w", j.URL, err)
			}
			defer release()
		}
	}
	page, err := p.Fetcher.Fetch(ctx, j.URL)
	if err != nil {
		return nil, fetchError(ctx, fmt.Errorf("ingest: fetch %s: %w", j.URL, err))
	}
	return page, nil
}

// fetchError classifies a fetch failure for the runtime: permanent ones are dead-lettered,
// a server's Retry-After stretches the backoff, anything else is retried. The job's own
// cancellation or timeout is returned as it is.
func fetchError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	if webfetch.Permanent(err) {
		return worker.Permanent(err)
	}
	if he, ok := errors.AsType[*webfetch.HTTPError](err); ok && he.RetryAfter > 0 {
		return worker.RetryAfter(err, he.RetryAfter)
	}
	return err
}

// extractPage extracts a fetched page by its media type.
func (p *WebpageHandler) extractPage(ctx context.Context, page *webfetch.Page) (*extract.Document, error) {
	var t doctype.Type
	switch page.MediaType {
	case "text/html", "application/xhtml+xml":
		return p.Extractor.ExtractHTML(ctx, page.Body, page.ContentType, page.URL)
	case "application/pdf":
		t = doctype.PDF
	case "text/markdown":
		t = doctype.Markdown
	case "text/plain":
		t = doctype.Text
	default:
		// Fetch returns only the media types above.
		return nil, fmt.Errorf("%w: media type %q", extract.ErrUnsupported, page.MediaType)
	}
	rep := worker.ReporterFrom(ctx)
	return p.Extractor.Extract(ctx, bytes.NewReader(page.Body), int64(len(page.Body)), t, func(done, total int) {
		if total > 0 {
			cur := progressExtract + (progressChunk-progressExtract)*done/total
			_ = rep.Progress(ctx, min(cur, progressChunk-1), fmt.Sprintf("extracting text (%d/%d)", done, total))
		}
	})
}

// keepUnchanged marks the page completed with its stored chunks, and reports true, when its
// text hashes to what they were made from with the current embedding model.
func (p *WebpageHandler) keepUnchanged(ctx context.Context, j *job.Job, doc *extract.Document, sum string) (bool, error) {
	cur, err := p.Docs.GetDocument(ctx, j.TenantID, j.DocumentID)
	if err != nil {
		return false, mapStoreError(err)
	}
	if cur.SHA256 != sum || cur.ChunkCount == 0 || cur.EmbeddingModel != p.Embedder.Model() {
		return false, nil
	}
	if err := p.Docs.KeepPage(ctx, j.DocumentID, doc.Title); err != nil {
		return false, mapStoreError(err)
	}
	rep := worker.ReporterFrom(ctx)
	rep.Result(func(st *job.Status) {
		st.DocumentID, st.ChunkCount = j.DocumentID, cur.ChunkCount
		st.Status = "completed: page unchanged, chunks kept"
	})
	return true, nil
}

// textSHA256 is the hex SHA-256 of what a page's chunks are made from: its title and its
// sections' headings, pages and text.
func textSHA256(doc *extract.Document) string {
	h := sha256.New()
	field := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	field(doc.Title)
	for _, s := range doc.Sections {
		field(s.Heading)
		field(strconv.Itoa(s.Page))
		field(s.Text)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// countCrawlPage counts a finished page of a crawl in its crawl task's counters: done, or
// failed. It is best effort (the page's own result is already recorded): a crawl status that
// expired or belongs to another tenant is left alone, and a failure is logged. A page whose
// success could not be recorded and that is therefore run again may be counted twice.
func (p *WebpageHandler) countCrawlPage(ctx context.Context, j *job.Job, done bool) {
	if j.ParentTaskID == "" || p.Statuses == nil {
		return
	}
	_, err := p.Statuses.Update(context.WithoutCancel(ctx), j.ParentTaskID, func(st *job.Status) error {
		if st.TenantID != j.TenantID || st.Kind != job.KindCrawl {
			return errNotCrawl
		}
		c := job.CrawlCounts{}
		if st.Crawl != nil {
			c = *st.Crawl
		}
		if done {
			c.Done++
		} else {
			c.Failed++
		}
		st.Crawl = &c
		return nil
	})
	switch {
	case err == nil, errors.Is(err, job.ErrNotFound):
	case errors.Is(err, errNotCrawl):
		p.Logger.Warn("page's parent task is not a crawl of its tenant; not counted", "task_id", j.TaskID, "parent_task_id", j.ParentTaskID)
	default:
		p.Logger.Warn("could not count the page in its crawl", "task_id", j.TaskID, "parent_task_id", j.ParentTaskID, "err", err)
	}
}

var errNotCrawl = errors.New("ingest: parent task is not a crawl of this tenant")
