// Package job is the wire contract between the api-service and the worker-service: job kinds,
// priorities, task states, the versioned job message and the names of every NATS stream,
// subject, consumer and bucket. It imports nothing but the standard library.
package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Version is the job message format version written by this code. Decode rejects other versions
// so that an old worker never half-understands a newer message.
const Version = 1

// Kind is what a job does; it is the last token of the job subject. Which kinds exist is
// up to the worker's handlers: a job of a kind no worker handles is dead-lettered there.
type Kind string

// The job kinds of Quire's ingestion (DESIGN §10).
const (
	KindDocument Kind = "document"
	KindWebpage  Kind = "webpage"
	KindCrawl    Kind = "crawl"
	// KindReindex re-embeds a completed document's stored chunks with the current embeddings
	// model, without extracting it again (POST /api/v1/documents/{id}/reindex).
	KindReindex Kind = "reindex"
	// KindWebhook delivers one event to one webhook endpoint (always on medium).
	KindWebhook Kind = "webhook"
	// KindUsageRollup rolls usage events up into hourly totals (DESIGN §12); a system task,
	// of tenant [SystemTenant], on the medium queue.
	KindUsageRollup Kind = "usage_rollup"
)

// SystemTenant is the tenant of the tasks Quire runs for itself, such as usage roll-ups.
const SystemTenant = "_system"

// MaxKindLen is the longest valid kind.
const MaxKindLen = 64

// ErrInvalidKind is the reason a kind is not [Kind.Valid].
var ErrInvalidKind = errors.New("job: invalid kind (want 1-64 of [a-z0-9_], starting with a letter)")

// Valid reports whether k is well-formed: 1 to [MaxKindLen] lower-case letters, digits and
// underscores, starting with a letter, so that it is one token of a NATS subject.
func (k Kind) Valid() bool {
	if len(k) == 0 || len(k) > MaxKindLen || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := range len(k) {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Priority selects the stream a job is published to. Each priority has its own stream, consumer
// and worker slots, so a flood on one never delays another.
type Priority string

// The priorities, highest first.
const (
	PriorityHigh   Priority = "high"
	PriorityMedium Priority = "medium"
	PriorityLow    Priority = "low"
)

// Priorities lists every priority, highest first.
var Priorities = []Priority{PriorityHigh, PriorityMedium, PriorityLow}

// ErrInvalidPriority is returned by [ParsePriority] for an unknown name.
var ErrInvalidPriority = errors.New("job: invalid priority (want high, medium or low)")

// ParsePriority parses "high", "medium" or "low" (case-insensitive, surrounding space ignored).
func ParsePriority(s string) (Priority, error) {
	p := Priority(strings.ToLower(strings.TrimSpace(s)))
	switch p {
	case PriorityHigh, PriorityMedium, PriorityLow:
		return p, nil
	}
	return "", fmt.Errorf("%w: %q", ErrInvalidPriority, s)
}

// Stream is the name of the job stream of p, e.g. JOBS_HIGH.
func (p Priority) Stream() string { return "JOBS_" + strings.ToUpper(string(p)) }

// Subjects is the subject filter of p's job stream, e.g. jobs.high.>.
func (p Priority) Subjects() string { return "jobs." + string(p) + ".>" }

// Subject is the subject a job of kind k is published to on priority p, e.g. jobs.high.document.
func Subject(p Priority, k Kind) string { return "jobs." + string(p) + "." + string(k) }

// DLQSubject is the subject of a dead letter of kind k that came from priority p.
func DLQSubject(p Priority, k Kind) string { return "dlq." + string(p) + "." + string(k) }

// NATS names fixed by the design contract; operators and dashboards rely on them.
const (
	// ConsumerName is the durable pull consumer on every job stream.
	ConsumerName = "workers"
	// DLQStream holds dead letters on subjects dlq.<priority>.<kind>.
	DLQStream = "JOBS_DLQ"
	// DLQSubjects is the subject filter of DLQStream.
	DLQSubjects = "dlq.>"
	// TasksBucket is the KV bucket of task statuses, keyed by task id.
	TasksBucket = "TASKS"
	// UploadsBucket is the Object Store bucket of uploaded bytes, named by task id.
	UploadsBucket = "UPLOADS"
	// IdempotencyBucket is the KV bucket remembering the first response to a POST with an
	// Idempotency-Key header, for IdempotencyTTL.
	IdempotencyBucket = "IDEMPOTENCY"
)

// Schedules (DESIGN §11): the stream SCHEDULES holds each schedule's definition, a message
// schedule on schedules.def.<schedule id>, and the fires the server makes of it on
// schedules.fire.<schedule id>; the durable consumer materializer, pulled by every API
// replica, turns each fire into a task. Definitions never go to a JOBS_* stream, whose
// consumers have no subject filter.
const (
	ScheduleStream       = "SCHEDULES"
	ScheduleDefPrefix    = "schedules.def."
	ScheduleFirePrefix   = "schedules.fire."
	ScheduleDefSubjects  = "schedules.def.*"
	ScheduleFireSubjects = "schedules.fire.*"
	MaterializerConsumer = "materializer"
	// MaterializerFilter is the subject filter of the materializer consumer.
	MaterializerFilter    = "schedules.fire.>"
	HeaderScheduleID      = "Quire-Schedule-Id"
	HeaderScheduleVersion = "Quire-Schedule-Version"
	// HeaderFireTime, on a fire published by the API (a trigger or a delayed job), is the
	// fire's time in RFC 3339; a fire made by the server has its stored time instead.
	HeaderFireTime = "Quire-Fire-Time"
)

// ScheduleDefSubject is the subject of schedule id's definition.
func ScheduleDefSubject(id string) string { return ScheduleDefPrefix + id }

// ScheduleFireSubject is the subject schedule id fires on.
func ScheduleFireSubject(id string) string { return ScheduleFirePrefix + id }

// Headers on job messages and dead letters.
const (
	HeaderMsgID           = "Nats-Msg-Id"
	HeaderError           = "Quire-Error"
	HeaderAttempts        = "Quire-Attempts"
	HeaderOriginalSubject = "Quire-Original-Subject"
	HeaderTaskID          = "Quire-Task-Id"
	HeaderTenantID        = "Quire-Tenant-Id"
	HeaderDeadLetteredAt  = "Quire-Dead-Lettered-At"
)

// Job is the body of a job message. Documents carry their bytes in the UPLOADS object store
// under Object; web pages and crawls carry a URL.
type Job struct {
	V           int       `json:"v"`
	TaskID      string    `json:"task_id"`
	Kind        Kind      `json:"kind"`
	TenantID    string    `json:"tenant_id"`
	AgentID     string    `json:"agent_id"`
	DocumentID  int64     `json:"document_id,omitempty"`
	Priority    Priority  `json:"priority"`
	Object      string    `json:"object,omitempty"`
	Filename    string    `json:"filename,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	URL         string    `json:"url,omitempty"`
	EnqueuedAt  time.Time `json:"enqueued_at"`
	// MaxPages and MaxDepth bound a crawl.
	MaxPages int `json:"max_pages,omitempty"`
	MaxDepth int `json:"max_depth,omitempty"`
	// Depth is how many links a crawled page is away from the crawl's start URL.
	Depth int `json:"depth,omitempty"`
	// ParentTaskID is the crawl task that discovered this page.
	ParentTaskID string `json:"parent_task_id,omitempty"`
	// Force re-processes a document even when an identical one exists.
	Force bool `json:"force,omitempty"`
	// Sync, on a crawl (a scheduled re-crawl), also removes the agent's crawled pages of the
	// site that are gone: answering 404 or 410, or no longer linked when the crawl covered
	// the whole site.
	Sync bool `json:"sync,omitempty"`
	// Reindex marks a document job written before reindex became its own kind
	// ([KindReindex]); workers still run such jobs as reindex jobs.
	Reindex bool `json:"reindex,omitempty"`
	// CallbackURL, if set, receives the task's final event (task.succeeded, task.failed,
	// task.revoked) as a webhook delivery.
	CallbackURL string `json:"callback_url,omitempty"`
	// Args is the payload of a kind whose fields are not the ones above: a JSON value the
	// kind's handler decodes into its own type.
	Args json.RawMessage `json:"args,omitempty"`
	// Upload describes the stored upload (Object), so that a worker reads an upload of one
	// chunk without looking up its description first. Optional: without it, or when it no
	// longer matches, the worker reads the object store's description.
	Upload *UploadRef `json:"upload,omitempty"`
	// Metadata is the JSON object a crawl's pages inherit as their documents' metadata.
	Metadata Metadata `json:"metadata,omitempty"`
}

// UploadRef is where and what an upload is in the UPLOADS object store, as the object store
// describes it.
type UploadRef struct {
	NUID   string `json:"nuid"`
	Size   uint64 `json:"size"`
	Chunks uint32 `json:"chunks"`
	Digest string `json:"digest"` // "SHA-256=" and the base64url SHA-256 of the bytes
}

// Subject is the subject j is published to.
func (j *Job) Subject() string { return Subject(j.Priority, j.Kind) }

// ErrInvalidJob wraps every reason [Decode] and [Job.Validate] reject a message for.
var ErrInvalidJob = errors.New("job: invalid job message")

// Validate checks the fields every job needs.
func (j *Job) Validate() error {
	switch {
	case j.V != Version:
		return fmt.Errorf("%w: version %d, this build reads version %d", ErrInvalidJob, j.V, Version)
	case j.TaskID == "":
		return fmt.Errorf("%w: missing task_id", ErrInvalidJob)
	case !j.Kind.Valid():
		return fmt.Errorf("%w: unknown kind %q", ErrInvalidJob, j.Kind)
	case j.TenantID == "":
		return fmt.Errorf("%w: missing tenant_id", ErrInvalidJob)
	case j.AgentID == "":
		return fmt.Errorf("%w: missing agent_id", ErrInvalidJob)
	}
	if p, err := ParsePriority(string(j.Priority)); err != nil || p != j.Priority {
		return fmt.Errorf("%w: priority %q is not high, medium or low", ErrInvalidJob, j.Priority)
	}
	if j.Kind == KindDocument && (j.DocumentID == 0 || (j.Object == "" && !j.Reindex)) {
		return fmt.Errorf("%w: document job without object or document_id", ErrInvalidJob)
	}
	if j.Kind == KindReindex && j.DocumentID == 0 {
		return fmt.Errorf("%w: reindex job without document_id", ErrInvalidJob)
	}
	if (j.Kind == KindWebpage || j.Kind == KindCrawl) && j.URL == "" {
		return fmt.Errorf("%w: %s job without url", ErrInvalidJob, j.Kind)
	}
	return nil
}

// Encode sets the version and returns the JSON body of j.
func (j *Job) Encode() ([]byte, error) {
	j.V = Version
	if err := j.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("job: encode: %w", err)
	}
	return b, nil
}

// Decode parses and validates a job message body. A document job marked Reindex (written
// before [KindReindex] existed) is decoded as a reindex job.
func Decode(data []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	if j.Kind == KindDocument && j.Reindex {
		// Queued before reindex became its own kind.
		j.Kind = KindReindex
	}
	return &j, nil
}

// CancelSubjectPrefix starts the core NATS subject on which the API announces a cancelled
// task, quire.cancel.<task id>; a worker running that task cancels its context at once. The
// TASKS status (REVOKED) stays the source of truth: workers also check it at pick-up and on
// every heartbeat, so a lost announcement delays a cancellation by at most a heartbeat.
const CancelSubjectPrefix = "quire.cancel."

// CancelSubject is the subject announcing the cancellation of task taskID.
func CancelSubject(taskID string) string { return CancelSubjectPrefix + taskID }
