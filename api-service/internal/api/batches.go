package api

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
)

// Limits of a batch (DESIGN §13).
const (
	// defaultMaxBatchItems is MAX_BATCH_ITEMS' default: items (files, archive entries, URLs)
	// in one batch, accepted and rejected together.
	defaultMaxBatchItems = 1000
	// maxBatchBytes caps a batch request's body, and the bytes extracted from a .zip.
	maxBatchBytes = 1 << 30
	// maxZipRatio caps an archive entry's uncompressed size over its compressed size.
	maxZipRatio = 100
	// maxMetadataBytes caps a batch's metadata (a JSON object).
	maxMetadataBytes = 8 << 10
	// maxBatchJSONBytes caps a JSON batch ({"urls"}).
	maxBatchJSONBytes = 16 << 20
	// batchPublishers is how many of a batch's jobs are published at once.
	batchPublishers = 16
	// discardRetryFor is how long the objects of a refused batch are retried for removal
	// while NATS is unreachable.
	discardRetryFor = 5 * time.Minute
)

// batchTask is an accepted item of a batch.
type batchTask struct {
	ID       int64  `json:"id"`
	TaskID   string `json:"task_id"`
	Filename string `json:"filename,omitempty"`
	URL      string `json:"url,omitempty"`
}

// batchRejection is an item refused, with the error its own submission would have had.
type batchRejection struct {
	Filename string `json:"filename,omitempty"`
	URL      string `json:"url,omitempty"`
	Error    struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type batchResponse struct {
	BatchID  string           `json:"batch_id"`
	Tasks    []batchTask      `json:"tasks"`
	Rejected []batchRejection `json:"rejected"`
}

// batchBuild gathers the items of one batch request.
type batchBuild struct {
	s        *Server
	tenant   string
	agent    string
	max      int
	docs     []*docstore.Document
	jobs     []*job.Job
	uploads  []*storedUpload // of file items, for the cleanup
	rejected []batchRejection
	// Options, from form fields or the JSON body.
	priority, callback, metadata string
}

func (b *batchBuild) items() int { return len(b.docs) + len(b.rejected) }

func (b *batchBuild) full() error {
	if b.items() >= b.max {
		return errBadRequest(fmt.Sprintf("a batch holds at most %d items (MAX_BATCH_ITEMS)", b.max))
	}
	return nil
}

func (b *batchBuild) reject(filename, url string, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = errBadRequest(err.Error()).(*httpError)
	}
	r := batchRejection{Filename: filename, URL: url}
	r.Error.Code, r.Error.Message = he.code, he.msg
	b.rejected = append(b.rejected, r)
}

// addFile stores one file item; a file its own upload would refuse (4xx) is rejected, a
// failure to store it (503) fails the batch.
func (b *batchBuild) addFile(ctx context.Context, filename string, r io.Reader) error {
	if err := b.full(); err != nil {
		return err
	}
	if !b.s.nc.IsConnected() {
		return errUnavailable
	}
	taskID := uuid.Must(uuid.NewV7()).String()
	up, err := b.s.storeFile(ctx, taskID, filename, r)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && he.status < 500 {
			b.reject(SanitizeFilename(filename), "", err)
			return nil
		}
		return err
	}
	b.uploads = append(b.uploads, up)
	b.docs = append(b.docs, &docstore.Document{
		TenantID: b.tenant, AgentID: b.agent, Kind: job.KindDocument, Filename: up.filename,
		ContentType: up.typ.ContentType(), SizeBytes: up.size, SHA256: up.sha256, TaskID: taskID,
	})
	b.jobs = append(b.jobs, &job.Job{
		TaskID: taskID, Kind: job.KindDocument, TenantID: b.tenant, AgentID: b.agent,
		Object: taskID, Filename: up.filename, ContentType: up.typ.ContentType(), Upload: up.ref,
		// A batch is one submission: every item runs, even one whose bytes the agent has.
		Force: true,
	})
	return nil
}

func (b *batchBuild) addURL(raw string) error {
	if err := b.full(); err != nil {
		return err
	}
	u, err := checkPageURL(raw)
	if err != nil {
		b.reject("", raw, err)
		return nil
	}
	taskID := uuid.Must(uuid.NewV7()).String()
	b.docs = append(b.docs, &docstore.Document{TenantID: b.tenant, AgentID: b.agent, Kind: job.KindWebpage, URL: u, TaskID: taskID})
	b.jobs = append(b.jobs, &job.Job{TaskID: taskID, Kind: job.KindWebpage, TenantID: b.tenant, AgentID: b.agent, URL: u})
	return nil
}

// discard removes the objects of a batch that is not recorded, each once its put has
// settled (not while its messages are in flight). While NATS is unreachable this happens in the
// background, for up to discardRetryFor (or until the server closes).
func (b *batchBuild) discard() {
	var names []string
	for _, j := range b.jobs {
		if j.Object != "" {
			names = append(names, j.Object)
		}
	}
	if len(names) == 0 {
		return
	}
	s := b.s
	if s.nc.IsConnected() {
		for _, up := range b.uploads {
			_, _ = up.put.Wait()
		}
		if names = s.removeObjects(names); len(names) == 0 {
			return
		}
	}
	uploads := b.uploads
	s.background.Go(func() {
		for _, up := range uploads {
			_, _ = up.put.Wait()
		}
		left := names
		deadline := time.Now().Add(discardRetryFor)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for len(left) > 0 && time.Now().Before(deadline) {
			select {
			case <-s.bgCtx.Done():
				return
			case <-t.C:
				if s.nc.IsConnected() {
					left = s.removeObjects(left)
				}
			}
		}
		if len(left) > 0 {
			s.log.Error("objects of a refused batch could not be removed", "count", len(left), "first", left[0])
		}
	})
}

// removeObjects removes names from UPLOADS and returns those it could not remove: from the
// first failure on, the rest are left for the next attempt.
func (s *Server) removeObjects(names []string) []string {
	for i, n := range names {
		ctx, cancel := context.WithTimeout(s.bgCtx, 5*time.Second)
		err := s.uploads.Delete(ctx, n, nil)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			s.log.Warn("could not remove an object of a refused batch; retrying", "object", n, "err", err)
			return names[i:]
		}
	}
	return nil
}

// submitBatch serves POST /api/v1/documents/agent/{agent_id}/batch: several files (multipart
// fields "file"), one .zip of files, or JSON {"urls": [...]}, with optional priority (default
// medium), metadata (a JSON object of at most 8 KB, kept with the batch) and callback_url (told
// batch.completed). Each item is checked as its own submission would be; a refused one is
// listed under "rejected" with its error. The accepted items are recorded together, in one
// transaction, and then published: every accepted item is queued, or none is (a failure before
// the record removes the stored files and answers 503; a publish that fails after it is left
// to the sweeper, the tasks table being the outbox). 202 with the batch id, the tasks and the
// rejected items; 400 when no item is acceptable.
func (s *Server) submitBatch(c *gin.Context) {
	tenant := tenantOf(c)
	agent, err := agentID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if !s.nc.IsConnected() {
		s.fail(c, errUnavailable)
		return
	}
	b := &batchBuild{s: s, tenant: tenant, agent: agent, max: s.cfg.MaxBatchItems}
	switch ct := c.ContentType(); {
	case ct == "application/json":
		err = s.readBatchJSON(c, b)
	case strings.HasPrefix(ct, "multipart/form-data"):
		err = s.readBatchForm(c, b)
	default:
		err = errBadRequest(`expected multipart/form-data ("file" fields, or one .zip) or application/json {"urls": [...]}`)
	}
	if err == nil {
		err = s.recordBatch(c, b)
	}
	if err != nil {
		b.discard()
		s.fail(c, err)
	}
}

func (s *Server) readBatchJSON(c *gin.Context, b *batchBuild) error {
	var req struct {
		URLs        []string        `json:"urls"`
		Priority    string          `json:"priority"`
		Metadata    json.RawMessage `json:"metadata"`
		CallbackURL string          `json:"callback_url"`
	}
	dec := json.NewDecoder(newUTF8Reader(http.MaxBytesReader(c.Writer, c.Request.Body, maxBatchJSONBytes)))
	if err := dec.Decode(&req); err != nil {
		return bodyError(err, maxBatchJSONBytes)
	}
	if len(req.URLs) == 0 {
		return errBadRequest(`urls: at least one URL is required`)
	}
	b.priority, b.callback = req.Priority, req.CallbackURL
	if len(req.Metadata) > 0 && string(req.Metadata) != "null" {
		b.metadata = string(req.Metadata)
	}
	for _, u := range req.URLs {
		if err := b.addURL(u); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) readBatchForm(c *gin.Context, b *batchBuild) error {
	ctx := c.Request.Context()
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBatchBytes)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return errBadRequest("expected a multipart/form-data body with file fields")
	}
	files := 0
	var archive *os.File
	defer func() {
		if archive != nil {
			archive.Close()
			os.Remove(archive.Name())
		}
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return bodyError(err, maxBatchBytes)
		}
		switch part.FormName() {
		case "file":
			files++
			if strings.EqualFold(path.Ext(part.FileName()), ".zip") {
				if files > 1 || archive != nil {
					return errBadRequest("a .zip must be the batch's only file")
				}
				if archive, err = spool(part); err != nil {
					return err
				}
				break
			}
			if archive != nil {
				return errBadRequest("a .zip must be the batch's only file")
			}
			if err := b.addFile(ctx, part.FileName(), part); err != nil {
				return err
			}
		case "priority", "callback_url", "metadata":
			v, err := io.ReadAll(io.LimitReader(part, maxURLLength+1))
			if err != nil {
				return bodyError(err, maxBatchBytes)
			}
			switch part.FormName() {
			case "priority":
				b.priority = string(v)
			case "callback_url":
				b.callback = string(v)
			default:
				b.metadata = string(v)
			}
		}
		_ = part.Close()
	}
	if archive != nil {
		return s.readZip(ctx, b, archive)
	}
	if files == 0 {
		return errBadRequest(`multipart field "file" is missing`)
	}
	return nil
}

// spool copies a .zip part to a temporary file, which archive/zip needs to read it.
func spool(part io.Reader) (*os.File, error) {
	f, err := os.CreateTemp("", "quire-batch-*.zip")
	if err != nil {
		return nil, fmt.Errorf("api: spool archive: %w", err)
	}
	if _, err := io.Copy(f, part); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, bodyError(err, maxBatchBytes)
	}
	return f, nil
}

// readZip adds each file of the archive as an item: directories and macOS resource forks are
// skipped; an entry whose path leaves the archive (absolute, or with ".."), larger than
// MAX_UPLOAD_BYTES or compressed more than 100:1 is rejected; more entries than
// MAX_BATCH_ITEMS, or more than 1 GiB of content, refuse the batch.
func (s *Server) readZip(ctx context.Context, b *batchBuild, f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("api: archive: %w", err)
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return errBadRequest("the .zip cannot be read: " + err.Error())
	}
	if len(zr.File) > b.max {
		return errBadRequest(fmt.Sprintf("the .zip has %d entries; a batch holds at most %d items (MAX_BATCH_ITEMS)", len(zr.File), b.max))
	}
	var total uint64
	for _, e := range zr.File {
		name := e.Name
		if e.FileInfo().IsDir() || strings.HasPrefix(name, "__MACOSX/") || strings.HasPrefix(path.Base(name), "._") {
			continue
		}
		base := path.Base(name)
		switch {
		case strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || hasDotDot(name):
			b.reject(name, "", errBadRequest("path outside the archive"))
			continue
		case e.UncompressedSize64 > uint64(s.cfg.MaxUploadBytes):
			b.reject(base, "", &httpError{errTooLarge.status, errTooLarge.code, fmt.Sprintf("file exceeds MAX_UPLOAD_BYTES (%d bytes)", s.cfg.MaxUploadBytes)})
			continue
		case e.UncompressedSize64 > maxZipRatio*max(e.CompressedSize64, 1) && e.UncompressedSize64 > 1<<20:
			b.reject(base, "", errBadRequest(fmt.Sprintf("compressed more than %d:1", maxZipRatio)))
			continue
		}
		total += e.UncompressedSize64
		if total > maxBatchBytes {
			return &httpError{errTooLarge.status, errTooLarge.code, "the .zip holds more than 1 GiB"}
		}
		rc, err := e.Open()
		if err != nil {
			b.reject(base, "", errBadRequest("the entry cannot be read: "+err.Error()))
			continue
		}
		// The header's sizes may lie: reading stops at what they promised (and the ratio).
		limit := min(int64(e.UncompressedSize64), int64(maxZipRatio*max(e.CompressedSize64, 1<<14)))
		err = b.addFile(ctx, base, io.LimitReader(rc, limit))
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func hasDotDot(name string) bool {
	for _, p := range strings.Split(name, "/") {
		if p == ".." {
			return true
		}
	}
	return false
}

// recordBatch checks the batch's options, records it and publishes its jobs.
func (s *Server) recordBatch(c *gin.Context, b *batchBuild) error {
	ctx := c.Request.Context()
	priority := job.PriorityMedium
	if strings.TrimSpace(b.priority) != "" {
		p, err := job.ParsePriority(strings.TrimSpace(b.priority))
		if err != nil {
			return errBadRequest("priority must be high, medium or low")
		}
		priority = p
	}
	var metadata []byte
	if m := strings.TrimSpace(b.metadata); m != "" {
		var obj map[string]any
		switch {
		case len(m) > maxMetadataBytes:
			return errBadRequest(fmt.Sprintf("metadata is larger than %d bytes", maxMetadataBytes))
		case json.Unmarshal([]byte(m), &obj) != nil || obj == nil:
			return errBadRequest("metadata must be a JSON object")
		}
		metadata = []byte(m)
	}
	callback, err := s.checkCallbackURL(ctx, b.tenant, b.callback)
	if err != nil {
		return err
	}
	if len(b.docs) == 0 {
		msg := "no item of the batch is acceptable"
		if len(b.rejected) > 0 {
			r := b.rejected[0]
			msg += fmt.Sprintf(" (first: %s%s: %s)", r.Filename, r.URL, r.Error.Message)
		}
		return errBadRequest(msg)
	}
	// Every file is stored before anything refers to it.
	for _, up := range b.uploads {
		if _, err := up.put.Wait(); err != nil {
			s.log.Error("batch: store object", "err", err)
			return errUnavailable
		}
	}
	batch := &docstore.Batch{ID: "bat_" + uuid.Must(uuid.NewV7()).String(), TenantID: b.tenant, AgentID: b.agent,
		CallbackURL: callback, Metadata: metadata}
	for i, d := range b.docs {
		d.Priority = string(priority)
		// Every item's document carries the batch's metadata.
		d.Metadata = metadata
		b.jobs[i].Priority = priority
		if payload, err := json.Marshal(b.jobs[i]); err == nil {
			d.Job = payload
		}
	}
	if err := s.docs.InsertBatch(ctx, batch, b.docs); err != nil {
		s.log.Error("batch: record", "items", len(b.docs), "err", err)
		return errUnavailable
	}
	c.Set(ctxTaskID, batch.ID)
	s.publishBatch(ctx, b)
	resp := batchResponse{BatchID: batch.ID, Tasks: make([]batchTask, len(b.docs)), Rejected: b.rejected}
	if resp.Rejected == nil {
		resp.Rejected = []batchRejection{}
	}
	for i, d := range b.docs {
		resp.Tasks[i] = batchTask{ID: d.ID, TaskID: d.TaskID, Filename: d.Filename, URL: d.URL}
	}
	s.log.Info("batch accepted", "batch_id", batch.ID, "tasks", len(b.docs), "rejected", len(b.rejected))
	c.JSON(http.StatusAccepted, resp)
	return nil
}

// publishBatch publishes the recorded jobs of b, batchPublishers at a time. A job that cannot
// be published stays recorded and unpublished, for the sweeper.
func (s *Server) publishBatch(ctx context.Context, b *batchBuild) {
	ctx = context.WithoutCancel(ctx)
	sem := make(chan struct{}, batchPublishers)
	var wg sync.WaitGroup
	var failed sync.Map
	for i, j := range b.jobs {
		j.DocumentID = b.docs[i].ID
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := s.taskQueue.Enqueue(ctx, jobqueue.Enqueue{Job: j, Recorded: true, CreatedAt: b.docs[i].CreatedAt}); err != nil {
				failed.Store(j.TaskID, err)
			}
		})
	}
	wg.Wait()
	failed.Range(func(k, v any) bool {
		s.log.Warn("batch: job not published; the sweeper will publish it", "task_id", k, "err", v)
		return true
	})
}

// batchStatusOf answers the status of tenant's batch id, as JSON.
func (s *Server) batchStatusOf(ctx context.Context, tenant, id string) (json.RawMessage, error) {
	st, err := s.docs.BatchStatus(ctx, tenant, id)
	switch {
	case errors.Is(err, job.ErrNotFound):
		return nil, errNotFound("batch not found")
	case err != nil:
		s.log.Error("batch status", "batch_id", id, "err", err)
		return nil, errUnavailable
	}
	var out bytes.Buffer
	if err := json.Compact(&out, st); err != nil {
		return nil, fmt.Errorf("api: batch %s status: %w", id, err)
	}
	return out.Bytes(), nil
}

// getBatch serves GET /api/v1/batches/{id}: {"batch_id","state","total","counts","progress",
// "created_at","finished_at"}, derived from the batch's tasks.
func (s *Server) getBatch(c *gin.Context) {
	st, err := s.batchStatusOf(c.Request.Context(), tenantOf(c), c.Param("batch_id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", st)
}

// cancelBatch serves DELETE /api/v1/batches/{id}: every unfinished task of the batch is
// cancelled through the one cancel path; the answer is the batch's status after it, with
// "cancelled", the number of tasks cancelled.
func (s *Server) cancelBatch(c *gin.Context) {
	ctx := c.Request.Context()
	tenant, id := tenantOf(c), c.Param("batch_id")
	open, err := s.docs.BatchTasks(ctx, tenant, id, job.StatePending, job.StateProgress, job.StateRetry)
	if err != nil {
		s.fail(c, storeError(err, "batch not found"))
		return
	}
	n := 0
	for _, t := range open {
		err := s.cancelTaskOf(ctx, tenant, t.TaskID)
		var he *httpError
		switch {
		case err == nil:
			n++
		case errors.As(err, &he) && he.status == http.StatusConflict:
			// It finished meanwhile.
		default:
			s.fail(c, err)
			return
		}
	}
	s.answerBatch(c, http.StatusOK, tenant, id, gin.H{"cancelled": n})
}

// retryBatch serves POST /api/v1/batches/{id}/retry: its FAILURE tasks are re-queued with
// their attempts reset, as a dead letter's retry does; "retried" is how many.
func (s *Server) retryBatch(c *gin.Context) {
	ctx := c.Request.Context()
	tenant, id := tenantOf(c), c.Param("batch_id")
	failed, err := s.docs.BatchTasks(ctx, tenant, id, job.StateFailure)
	if err != nil {
		s.fail(c, storeError(err, "batch not found"))
		return
	}
	n := 0
	for _, t := range failed {
		j, err := t.Job()
		if err != nil {
			s.log.Error("batch retry: task cannot be re-published", "task_id", t.TaskID, "err", err)
			continue
		}
		if err := s.docs.RequeueTask(ctx, tenant, t.TaskID); err != nil {
			if errors.Is(err, job.ErrConflict) {
				continue // its document was deleted
			}
			s.fail(c, storeError(err, "batch not found"))
			return
		}
		if _, err := s.taskQueue.Enqueue(ctx, jobqueue.Enqueue{
			Job: j, Recorded: true, MsgID: j.TaskID + ":b" + strconv.FormatInt(s.now().UnixNano(), 36),
			Message: "re-queued with its batch", Replace: true,
		}); err != nil {
			// Recorded as PENDING and unpublished: the sweeper publishes it.
			s.log.Warn("batch retry: publish", "task_id", t.TaskID, "err", err)
		}
		n++
	}
	s.answerBatch(c, http.StatusAccepted, tenant, id, gin.H{"retried": n})
}

// answerBatch answers the batch's status with extra fields.
func (s *Server) answerBatch(c *gin.Context, status int, tenant, id string, extra gin.H) {
	raw, err := s.batchStatusOf(c.Request.Context(), tenant, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		s.fail(c, err)
		return
	}
	for k, v := range extra {
		st[k] = v
	}
	c.JSON(status, st)
}
