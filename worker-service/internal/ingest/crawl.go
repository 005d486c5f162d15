package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/taskstatus"
	"github.com/quirehq/quire/worker-service/internal/webfetch"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// Bounds of a crawl; the API applies the same ones.
const (
	DefaultCrawlPages = 50
	MaxCrawlPages     = 1000
	DefaultCrawlDepth = 2
	MaxCrawlDepth     = 10
)

// CrawlHandler handles crawl jobs.
type CrawlHandler struct {
	*Records
	// Crawler discovers the pages.
	Crawler *webfetch.Crawler
	// Enqueuer enqueues the webpage jobs a crawl fans out.
	Enqueuer *jobqueue.Enqueuer
	// Statuses keeps the page counters of crawl tasks.
	Statuses *taskstatus.Store
}

// Handle handles a crawl job. It discovers the pages of j.URL's site with the Crawler
// (robots.txt respected, sitemaps read, normalised URLs de-duplicated, per-host politeness,
// at most j.MaxPages pages within j.MaxDepth links; 0 means 50 pages and depth 2, capped at
// 1000 and 10) and fans out one webpage job per page on the low queue, each with its own
// documents row, PENDING status and ParentTaskID = the crawl's task id.
//
// A crawl keeps one document per page of the agent: a page already stored is handed to the new
// job (docstore.Store.RequeuePage), which replaces its chunks, or keeps them when the text did
// not change. A page with a job still queued or running is not queued again. Each page's job
// is published with Nats-Msg-Id = hex SHA-256 of tenant, agent and normalised URL, so a second
// crawl of the site within the stream's duplicate window enqueues nothing twice; the page's
// row and status are then given back.
//
// The crawl task's status counts its pages (job.Status.Crawl): discovered (pages found and
// fetched) and queued (webpage jobs enqueued) while it runs; done and failed as the page jobs
// finish. The crawl task itself ends SUCCESS as soon as the fan-out is complete, not when its
// pages are processed: its counters keep moving afterwards, and queued = done + failed once
// every page has finished (a cancelled page counts in neither). A page job that runs again
// after its success could not be recorded may be counted twice.
//
// A crawl with j.Sync (a scheduled re-crawl) also removes the agent's crawled pages of the
// site that are gone ([Pipeline.removeGonePages]): updated pages are refreshed as above,
// unchanged ones keep their chunks, and pages answering 404 or 410, or no longer reached,
// are deleted with their chunks.
//
// A redelivered crawl runs again without duplicating pages: a page's task id is derived from
// the crawl's task id and the page URL, so pages already fanned out are recognised.
func (p *CrawlHandler) Handle(ctx context.Context, j *job.Job) error {
	rep := worker.ReporterFrom(ctx)
	if done, err := p.begin(ctx, j); done || err != nil {
		return err
	}
	maxPages, maxDepth := crawlBounds(j)
	// A new attempt counts discovered and queued pages afresh; done and failed belong to the
	// pages' own jobs.
	if err := p.updateCrawl(ctx, j, func(c *job.CrawlCounts) { c.Discovered, c.Queued = 0, 0 }); err != nil {
		return err
	}
	if err := rep.Progress(ctx, 0, "crawling "+j.URL); err != nil {
		return err
	}
	var discovered, queued int
	visited := map[string]bool{}
	stats, err := p.Crawler.Discover(ctx, j.URL, maxPages, maxDepth, func(ctx context.Context, v webfetch.Visit) error {
		discovered++
		visited[v.URL] = true
		ok, err := p.enqueuePage(ctx, j, v)
		if err != nil {
			return err
		}
		if ok {
			queued++
		}
		msg := fmt.Sprintf("crawling: %d pages found, %d queued", discovered, queued)
		return rep.Progress(ctx, min(99, discovered*100/maxPages), msg)
	})
	if err != nil {
		return crawlError(ctx, err)
	}
	removed := 0
	if j.Sync {
		if removed, err = p.removeGonePages(ctx, j, visited, stats); err != nil {
			return err
		}
	}
	if err := p.Docs.Complete(ctx, j.DocumentID, docstore.Completion{}); err != nil {
		return mapStoreError(err)
	}
	p.Logger.Info("crawl fanned out", "task_id", j.TaskID, "url", j.URL, "discovered", discovered, "queued", queued,
		"disallowed", stats.Disallowed, "fetch_failed", stats.Failed, "skipped", stats.Skipped, "removed", removed)
	rep.Result(func(st *job.Status) {
		st.DocumentID = j.DocumentID
		st.Status = fmt.Sprintf("completed: %d pages found, %d queued on %s", discovered, queued, job.PriorityLow)
		if j.Sync {
			st.Status += fmt.Sprintf(", %d gone pages removed", removed)
		}
	})
	return nil
}

// maxSyncPages caps the crawled pages a syncing crawl looks at for removal.
const maxSyncPages = 10 * MaxCrawlPages

// removeGonePages is the removal step of a crawl that syncs (j.Sync, a scheduled re-crawl):
// it deletes, with their chunks, the agent's crawled pages on the crawl's site that are gone:
// pages that answered 404 or 410 to this crawl and, when the crawl covered everything it could
// reach (not stopped by max_pages or failures), pages it did not reach any more. A page with a
// job queued or running is left alone. It returns how many pages it removed.
func (p *CrawlHandler) removeGonePages(ctx context.Context, j *job.Job, visited map[string]bool, stats webfetch.CrawlStats) (int, error) {
	start, err := url.Parse(j.URL)
	if err != nil {
		return 0, nil
	}
	gone := map[string]bool{}
	for _, u := range stats.Gone {
		gone[u] = true
	}
	pages, err := p.Docs.CrawledPages(ctx, j.TenantID, j.AgentID, maxSyncPages)
	if err != nil {
		return 0, mapStoreError(err)
	}
	removed := 0
	for _, d := range pages {
		u, err := url.Parse(d.URL)
		if err != nil || !webfetch.SameSite(start, u) || visited[d.URL] || d.Status == job.DocQueued || d.Status == job.DocProcessing {
			continue
		}
		if !gone[d.URL] && !stats.Exhausted {
			continue
		}
		if err := p.Docs.DeleteDocument(ctx, d.TenantID, d.ID); err != nil && !errors.Is(err, job.ErrNotFound) {
			return removed, mapStoreError(err)
		}
		removed++
		p.Logger.Info("crawl removed a page gone from the site", "task_id", j.TaskID, "document_id", d.ID, "url", d.URL, "not_found", gone[d.URL])
	}
	return removed, nil
}

// crawlBounds returns the crawl's page and depth bounds with defaults and caps applied.
func crawlBounds(j *job.Job) (maxPages, maxDepth int) {
	maxPages, maxDepth = j.MaxPages, j.MaxDepth
	if maxPages <= 0 {
		maxPages = DefaultCrawlPages
	}
	if maxDepth <= 0 {
		maxDepth = DefaultCrawlDepth
	}
	return min(maxPages, MaxCrawlPages), min(maxDepth, MaxCrawlDepth)
}

// crawlError classifies a failed discovery: the start page's permanent failures (blocked,
// invalid, disallowed by robots.txt, 404, ...) are permanent, a Retry-After is honoured,
// anything else (including a failure to enqueue a page) is retried.
func crawlError(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, worker.ErrRevoked) {
		return err
	}
	return fetchError(ctx, fmt.Errorf("ingest: crawl: %w", err))
}

// enqueuePage fans out the webpage job of one discovered page and reports whether the page is
// queued by this crawl (now, or by an earlier attempt of it). The crawl's counters move with
// it: discovered and queued before the publish (so a fast page never shows done > queued),
// queued taken back if the page was not queued after all.
func (p *CrawlHandler) enqueuePage(ctx context.Context, crawl *job.Job, v webfetch.Visit) (bool, error) {
	if err := p.updateCrawl(ctx, crawl, func(c *job.CrawlCounts) { c.Discovered++; c.Queued++ }); err != nil {
		return false, err
	}
	ok, err := p.fanOut(ctx, crawl, v)
	if err == nil && ok {
		return true, nil
	}
	if uerr := p.updateCrawl(context.WithoutCancel(ctx), crawl, func(c *job.CrawlCounts) { c.Queued-- }); uerr != nil && err == nil {
		err = uerr
	}
	return false, err
}

// fanOut records and publishes the webpage job of page v through the one enqueue path: a
// documents row (new, or the agent's existing row for the URL handed to this job) recorded
// with its task, a PENDING status and the job on low. It reports false, having undone its
// writes, when a job is already on the page or the publish was a duplicate within the window.
func (p *CrawlHandler) fanOut(ctx context.Context, crawl *job.Job, v webfetch.Visit) (bool, error) {
	taskID := pageTaskID(crawl.TaskID, v.URL)
	child := &job.Job{
		TaskID: taskID, Kind: job.KindWebpage, TenantID: crawl.TenantID, AgentID: crawl.AgentID,
		Priority: job.PriorityLow, URL: v.URL, Depth: v.Depth, ParentTaskID: crawl.TaskID,
	}
	// Another crawl that queued this page within the duplicate window leaves this one
	// nothing to do.
	q := jobqueue.Enqueue{Job: child, Recorded: true, MsgID: pageMsgID(crawl.TenantID, crawl.AgentID, v.URL), DropDuplicate: true}
	// The crawl's metadata becomes its pages'.
	var metadata json.RawMessage
	if crawl.Metadata != "" {
		metadata = json.RawMessage(crawl.Metadata)
	}
	ours := false
	prev, err := p.Docs.LatestPage(ctx, crawl.TenantID, crawl.AgentID, v.URL)
	switch {
	case errors.Is(err, job.ErrNotFound):
		d := &docstore.Document{
			TenantID: crawl.TenantID, AgentID: crawl.AgentID, Kind: job.KindWebpage, URL: v.URL,
			TaskID: taskID, Priority: string(job.PriorityLow), Metadata: metadata,
		}
		// The row and its task keep the job for the API's outbox sweeper (parent crawl included).
		if payload, err := json.Marshal(child); err == nil {
			d.Job = payload
		}
		if err := p.Docs.InsertDocument(ctx, d); err != nil {
			return false, fmt.Errorf("ingest: crawl page %s: %w", v.URL, err)
		}
		child.DocumentID = d.ID
		q.Undo = func(ctx context.Context) {
			if err := p.Docs.DeleteDocument(ctx, d.TenantID, d.ID); err != nil {
				p.Logger.Warn("could not remove an unpublished page's row", "task_id", taskID, "document_id", d.ID, "err", err)
			}
		}
	case err != nil:
		return false, fmt.Errorf("ingest: crawl page %s: %w", v.URL, err)
	case prev.TaskID == taskID:
		// An earlier attempt of this crawl recorded the page; a duplicate is its own publish.
		child.DocumentID, ours = prev.ID, true
		if prev.PublishedAt != nil {
			return true, nil
		}
		q.DropDuplicate = false
	default:
		if metadata != nil {
			if _, err := p.Docs.SetMetadata(ctx, prev.TenantID, prev.ID, metadata); err != nil {
				return false, fmt.Errorf("ingest: crawl page %s: %w", v.URL, err)
			}
		}
		err := p.Docs.RequeuePageJob(ctx, prev, child)
		if errors.Is(err, job.ErrConflict) {
			return false, nil // a job is on the page already
		}
		if err != nil {
			return false, fmt.Errorf("ingest: crawl page %s: %w", v.URL, err)
		}
		child.DocumentID = prev.ID
		q.Undo = func(ctx context.Context) {
			if err := p.Docs.RestorePage(ctx, prev, taskID); err != nil {
				p.Logger.Warn("could not give a page's row back", "task_id", taskID, "document_id", prev.ID, "err", err)
			}
		}
	}
	res, err := p.Enqueuer.Enqueue(ctx, q)
	if err != nil {
		return false, fmt.Errorf("ingest: crawl page %s: %w", v.URL, err)
	}
	return !res.Duplicate || ours, nil
}

// updateCrawl applies fn to the crawl task's page counters.
func (p *CrawlHandler) updateCrawl(ctx context.Context, crawl *job.Job, fn func(c *job.CrawlCounts)) error {
	_, err := p.Statuses.Update(ctx, crawl.TaskID, func(st *job.Status) error {
		if st.State == job.StateRevoked {
			return worker.ErrRevoked
		}
		c := job.CrawlCounts{}
		if st.Crawl != nil {
			c = *st.Crawl
		}
		fn(&c)
		st.Crawl = &c
		return nil
	})
	if err != nil {
		return fmt.Errorf("ingest: crawl counters: %w", err)
	}
	return nil
}

// pageMsgID is the Nats-Msg-Id of a crawled page's job: the same page of the same agent is
// published once per duplicate window, whichever crawl finds it.
func pageMsgID(tenantID, agentID, pageURL string) string {
	h := sha256.New()
	for _, s := range []string{tenantID, agentID, pageURL} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pageTaskID is the task id of a page of a crawl: a UUIDv8 (RFC 9562) made from the SHA-256
// of the crawl's task id and the page URL, so every attempt of a crawl gives a page the same
// task.
func pageTaskID(crawlTaskID, pageURL string) string {
	sum := sha256.Sum256([]byte(crawlTaskID + "\x00" + pageURL))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
