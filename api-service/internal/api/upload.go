package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/doctype"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/upload"
)

var agentIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

func agentID(c *gin.Context) (string, error) {
	id := c.Param("agent_id")
	if !agentIDPattern.MatchString(id) {
		return "", errBadRequest("agent_id must be 1-128 characters of A-Z a-z 0-9 _ . -")
	}
	return id, nil
}

// acceptedResponse is the 202 answer to a submitted document or web page.
type acceptedResponse struct {
	ID             int64  `json:"id"`
	TaskID         string `json:"task_id"`
	Status         string `json:"status"`
	Filename       string `json:"filename,omitempty"`
	URL            string `json:"url,omitempty"`
	Message        string `json:"message"`
	ProcessingNote string `json:"processing_note"`
	// DuplicateOf is the completed document with the same bytes that answered this upload.
	DuplicateOf int64 `json:"duplicate_of,omitempty"`
	// RunAt is when a job held by run_at is released to its queue.
	RunAt *time.Time `json:"run_at,omitempty"`
}

var (
	errTooLarge    = &httpError{http.StatusRequestEntityTooLarge, "payload_too_large", ""}
	errUnsupported = &httpError{http.StatusUnsupportedMediaType, "unsupported_media_type", ""}
)

// upload accepts a multipart upload (field "file", optional "priority"). The file streams
// into the UPLOADS object store while its type is sniffed and its size and SHA-256 counted;
// nothing is buffered whole in memory. Then the document row, the PENDING status and the job
// are written, the job's publish acknowledged, and 202 returned. If any step fails, the steps
// before it are undone and the answer is 503: nothing is left half-done.
func (s *Server) upload(c *gin.Context) {
	tenant := tenantOf(c)
	agent, err := agentID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	// A tenant over its quota is refused before a byte of the file is read or stored.
	if !s.checkQuota(c, tenant, 1) {
		return
	}
	// The whole request is bounded; the file part is bounded separately below.
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxUploadBytes+1<<20)
	if !s.nc.IsConnected() {
		s.fail(c, errUnavailable)
		return
	}
	mr, err := c.Request.MultipartReader()
	if err != nil {
		s.fail(c, errBadRequest("expected a multipart/form-data body with a file field"))
		return
	}
	taskID := uuid.Must(uuid.NewV7()).String()
	c.Set(ctxTaskID, taskID)
	ctx := c.Request.Context()

	var (
		up       *storedUpload
		priority = job.PriorityHigh
		force    bool
		runAt    time.Time
		metadata json.RawMessage
	)
	var callbackRaw string
	cleanup := func() {
		if up != nil {
			_, _ = up.put.Wait() // removed once stored, not while its messages are in flight
			s.removeObject(taskID)
		}
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cleanup()
			s.fail(c, bodyError(err, s.cfg.MaxUploadBytes))
			return
		}
		switch part.FormName() {
		case "file":
			if up != nil {
				cleanup()
				s.fail(c, errBadRequest("only one file per upload"))
				return
			}
			up, err = s.storeUpload(ctx, taskID, part)
			if err != nil {
				s.fail(c, err)
				return
			}
		case "priority":
			v, err := readField(part)
			if err == nil {
				priority, err = job.ParsePriority(v)
			}
			if err != nil {
				cleanup()
				s.fail(c, errBadRequest("priority must be high, medium or low"))
				return
			}
		case "callback_url":
			b, err := io.ReadAll(io.LimitReader(part, maxURLLength+1))
			if err != nil {
				cleanup()
				s.fail(c, bodyError(err, s.cfg.MaxUploadBytes))
				return
			}
			callbackRaw = string(b)
		case "run_at":
			v, err := readField(part)
			if err == nil {
				runAt, err = s.parseRunAt(v)
			}
			if err != nil {
				cleanup()
				s.fail(c, err)
				return
			}
		case "metadata":
			if metadata, err = readMetadataField(part); err != nil {
				cleanup()
				s.fail(c, err)
				return
			}
		case "force":
			v, err := readField(part)
			if err == nil {
				force, err = strconv.ParseBool(v)
			}
			if err != nil {
				cleanup()
				s.fail(c, errBadRequest("force must be true or false"))
				return
			}
		}
		_ = part.Close()
	}
	if up == nil {
		s.fail(c, errBadRequest("multipart field \"file\" is missing"))
		return
	}
	callback, err := s.checkCallbackURL(ctx, tenant, callbackRaw)
	if err != nil {
		cleanup()
		s.fail(c, err)
		return
	}
	doc := &docstore.Document{
		TenantID: tenant, AgentID: agent, Kind: job.KindDocument, Filename: up.filename,
		ContentType: up.typ.ContentType(), SizeBytes: up.size, SHA256: up.sha256, TaskID: taskID, Priority: string(priority),
		Metadata: metadata,
	}
	j := &job.Job{
		TaskID: taskID, Kind: job.KindDocument, TenantID: tenant, AgentID: agent, Priority: priority,
		Object: taskID, Filename: up.filename, ContentType: doc.ContentType, Upload: up.ref, CallbackURL: callback,
	}
	dupID, err := s.enqueueUpload(ctx, doc, j, !force, up.put, runAt)
	if err != nil {
		s.fail(c, err)
		return
	}
	if dupID != 0 {
		if dup, err := s.docs.GetDocument(ctx, tenant, dupID); err == nil {
			// Incremental ingestion: the same bytes were already extracted and embedded with the
			// current model; nothing is processed again.
			s.removeObject(taskID)
			c.JSON(http.StatusAccepted, acceptedResponse{
				ID: dup.ID, TaskID: dup.TaskID, Status: dup.Status, Filename: dup.Filename, DuplicateOf: dup.ID,
				Message:        "identical to a document already processed; nothing was re-processed",
				ProcessingNote: "send the form field force=true to process it again",
			})
			return
		}
		// The duplicate went away in between: the upload is processed as new.
		if _, err := s.enqueueUpload(ctx, doc, j, false, up.put, runAt); err != nil {
			s.fail(c, err)
			return
		}
	}
	c.JSON(http.StatusAccepted, acceptedResponse{
		ID: doc.ID, TaskID: taskID, Status: job.DocQueued, Filename: up.filename,
		Message:        "document accepted for processing" + heldNote(runAt),
		ProcessingNote: "poll GET /api/v1/tasks/" + taskID + " for progress",
		RunAt:          runAtOrNil(runAt),
	})
}

// enqueue records doc and publishes j for it: documents row and task row (the outbox) in one
// statement, then the PENDING status and the acknowledged publish together, then the task's
// mark as published queued for the next batch. If the row or the publish fails it undoes what
// it did and returns errUnavailable (the upload object is removed too); a status that cannot
// be stored once the job is queued is left to the worker.
func (s *Server) enqueue(ctx context.Context, doc *docstore.Document, j *job.Job) error {
	return s.enqueueAt(ctx, doc, j, time.Time{})
}

// enqueueAt is enqueue, but with runAt set the job is held until then (delayed.go).
func (s *Server) enqueueAt(ctx context.Context, doc *docstore.Document, j *job.Job, runAt time.Time) error {
	_, err := s.enqueueUpload(ctx, doc, j, false, nil, runAt)
	return err
}

// enqueueUpload is enqueue for an upload that, with unlessDuplicate, is neither recorded nor
// published if the agent has a completed document with the same bytes embedded with the model
// search uses now: then it returns that document's id (the row's insert and the look-up are
// one statement). The upload's object, if stored is not nil, is acknowledged while the row is
// written; nothing is published before it is. With runAt set, the job is held until then
// instead of published (delayed.go).
func (s *Server) enqueueUpload(ctx context.Context, doc *docstore.Document, j *job.Job, unlessDuplicate bool, stored *upload.Put, runAt time.Time) (int64, error) {
	undoCtx := context.WithoutCancel(ctx)
	objectErr := func() error {
		if stored == nil {
			return nil
		}
		_, err := stored.Wait()
		return err
	}
	// The row keeps the job (its document id is the row's) and the same statement records the
	// task with it, so that the sweeper can publish exactly this job if the API stops before
	// publishing it.
	if payload, err := json.Marshal(j); err == nil {
		doc.Job = payload
	}
	if unlessDuplicate {
		model := ""
		if s.embedder != nil {
			model = s.embedder.Model()
		}
		dupID, err := s.docs.InsertUnlessDuplicate(ctx, doc, model)
		if err != nil {
			s.log.Error("enqueue: insert document", "task_id", doc.TaskID, "err", err)
			_ = objectErr()
			s.removeObject(j.Object)
			return 0, errUnavailable
		}
		if dupID != 0 {
			if err := objectErr(); err != nil {
				s.log.Error("upload: store object", "task_id", doc.TaskID, "err", err)
				return 0, errUnavailable
			}
			return dupID, nil
		}
	} else if err := s.docs.InsertDocument(ctx, doc); err != nil {
		s.log.Error("enqueue: insert document", "task_id", doc.TaskID, "err", err)
		_ = objectErr()
		s.removeObject(j.Object)
		return 0, errUnavailable
	}
	// Removing the row removes its unpublished task too.
	undoRow := func(ctx context.Context) {
		if err := s.docs.DeleteDocument(ctx, doc.TenantID, doc.ID); err != nil {
			s.log.Error("enqueue: undo document row", "task_id", doc.TaskID, "err", err)
		}
	}
	if err := objectErr(); err != nil {
		// Nothing of the object is left; the row goes too.
		s.log.Error("upload: store object", "task_id", doc.TaskID, "err", err)
		undoRow(undoCtx)
		return 0, errUnavailable
	}
	j.DocumentID = doc.ID
	if !runAt.IsZero() {
		if err := s.hold(ctx, j, runAt); err != nil {
			s.log.Error("enqueue: hold job until run_at", "task_id", doc.TaskID, "err", err)
			undoRow(undoCtx)
			s.removeObject(j.Object)
			return 0, errUnavailable
		}
		s.log.Info("job held until run_at", "task_id", j.TaskID, "document_id", doc.ID, "run_at", runAt)
		return 0, nil
	}
	_, err := s.taskQueue.Enqueue(ctx, jobqueue.Enqueue{Job: j, Recorded: true, Undo: func(ctx context.Context) {
		undoRow(ctx)
		s.removeObject(j.Object)
	}})
	if err != nil {
		s.log.Error("enqueue: publish job", "task_id", doc.TaskID, "err", err)
		return 0, errUnavailable
	}
	s.log.Info("job enqueued", "task_id", j.TaskID, "document_id", doc.ID, "queue", j.Priority, "kind", j.Kind)
	return 0, nil
}

func (s *Server) removeObject(name string) {
	if name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.uploads.Delete(ctx, name, nil); err != nil {
		s.log.Warn("could not remove upload object", "object", name, "err", err)
	}
}

type storedUpload struct {
	filename string
	typ      doctype.Type
	size     int64
	sha256   string
	// put is the object being stored: its acknowledgement is awaited later (put.Wait).
	put *upload.Put
	ref *job.UploadRef
}

// storeUpload sniffs the part's type from its first bytes (415 when unsupported) and streams
// it into the object store under taskID (a new name), failing with 413 past MaxUploadBytes. A
// file of one chunk returns once it is sent, before the store acknowledges it.
func (s *Server) storeUpload(ctx context.Context, taskID string, part *multipart.Part) (*storedUpload, error) {
	return s.storeFile(ctx, taskID, part.FileName(), part)
}

// storeFile is storeUpload for the bytes r of a file named filename (a part, an archive entry).
func (s *Server) storeFile(ctx context.Context, taskID, filename string, r io.Reader) (*storedUpload, error) {
	name := SanitizeFilename(filename)
	br := bufio.NewReaderSize(r, doctype.SniffLen)
	head, err := br.Peek(doctype.SniffLen)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, bodyError(err, s.cfg.MaxUploadBytes)
	}
	typ, err := doctype.Sniff(head, name)
	if err != nil {
		if errors.Is(err, doctype.ErrEmpty) {
			return nil, errBadRequest("the uploaded file is empty")
		}
		return nil, &httpError{errUnsupported.status, errUnsupported.code, strings.TrimPrefix(err.Error(), "doctype: ") +
			" (supported: PDF, Word .docx, PowerPoint .pptx, Excel .xlsx, CSV, TSV, OpenDocument (.odt, .ods, .odp), EPUB, RTF, e-mail (.eml), plain text, Markdown, HTML, and images (PNG, JPEG, TIFF, WebP) for OCR)"}
	}
	lr := &limitedReader{r: br, left: s.cfg.MaxUploadBytes}
	// The object's digest is the SHA-256 of its bytes: the upload is hashed once, while stored.
	put, err := s.uploads.StartNew(ctx, jetstream.ObjectMeta{Name: taskID, Description: name}, lr)
	switch {
	case err == nil:
	case lr.exceeded:
		return nil, &httpError{errTooLarge.status, errTooLarge.code, fmt.Sprintf("file exceeds MAX_UPLOAD_BYTES (%d bytes)", s.cfg.MaxUploadBytes)}
	case lr.readErr != nil:
		return nil, bodyError(lr.readErr, s.cfg.MaxUploadBytes)
	default:
		s.log.Error("upload: store object", "task_id", taskID, "err", err)
		return nil, errUnavailable
	}
	info := put.Info()
	sum, err := upload.DigestHex(info)
	if err != nil {
		s.log.Error("upload: store object", "task_id", taskID, "err", err)
		_, _ = put.Wait()
		s.removeObject(taskID)
		return nil, errUnavailable
	}
	ref := &job.UploadRef{NUID: info.NUID, Size: info.Size, Chunks: info.Chunks, Digest: info.Digest}
	return &storedUpload{filename: name, typ: typ, size: int64(info.Size), sha256: sum, put: put, ref: ref}, nil
}

// limitedReader fails once more than left bytes were read, and remembers whether reading the
// client's body failed (a client error) as opposed to storing it (a server error).
type limitedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
	readErr  error
}

var errLimit = errors.New("upload exceeds the size limit")

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		l.readErr = err
	}
	l.left -= int64(n)
	if l.left < 0 {
		l.exceeded = true
		return n, errLimit
	}
	return n, err
}

// bodyError maps a request body read error to 413 (too large) or 400 (malformed).
func bodyError(err error, limit int64) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, errLimit) {
		return &httpError{errTooLarge.status, errTooLarge.code, fmt.Sprintf("request exceeds MAX_UPLOAD_BYTES (%d bytes)", limit)}
	}
	return errBadRequest("malformed multipart body: " + err.Error())
}

func readField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, 1024))
	return strings.TrimSpace(string(b)), err
}

// SanitizeFilename keeps only the base name of a client's filename, without control or
// path characters, at most 255 bytes, never empty. It is stored as metadata only.
func SanitizeFilename(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(name)
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '/' || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if name == "." || name == ".." || name == "" {
		name = "upload"
	}
	for len(name) > 255 {
		ext := path.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		r := []rune(strings.TrimSuffix(name, ext))
		name = string(r[:len(r)-1]) + ext
	}
	return name
}

func parseInt64(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
