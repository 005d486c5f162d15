package job

import (
	"errors"
	"time"
)

// State is a task's state. The names are Celery's, so existing clients keep working.
type State string

// Task states.
const (
	StatePending  State = "PENDING"  // queued, not started
	StateProgress State = "PROGRESS" // running
	StateRetry    State = "RETRY"    // waiting for a backoff after a failed attempt
	StateSuccess  State = "SUCCESS"
	StateFailure  State = "FAILURE"
	StateRevoked  State = "REVOKED" // cancelled
)

// Terminal reports whether s is a final state.
func (s State) Terminal() bool {
	return s == StateSuccess || s == StateFailure || s == StateRevoked
}

// Status is the live status of a task as stored in the TASKS bucket and served by
// GET /api/v1/tasks/{task_id}.
type Status struct {
	TaskID     string    `json:"task_id"`
	State      State     `json:"state"`
	Status     string    `json:"status"`
	Current    int       `json:"current"`
	Total      int       `json:"total"`
	DocumentID int64     `json:"document_id,omitempty"`
	ChunkCount int       `json:"chunk_count"`
	Attempts   int       `json:"attempts"`
	Queue      Priority  `json:"queue"`
	Kind       Kind      `json:"kind,omitempty"`
	Error      string    `json:"error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`

	// TenantID scopes the task; it is never shown to clients of other tenants.
	TenantID string `json:"tenant_id"`
	AgentID  string `json:"agent_id,omitempty"`
	URL      string `json:"url,omitempty"`
	// Crawl counters, for crawl tasks.
	Crawl *CrawlCounts `json:"crawl,omitempty"`
}

// PendingStatus is the first status of the task of j, queued: state PENDING with message
// (default "queued"), progress 0 of 100, and the task's queue, kind, tenant, agent, document and
// URL from j.
func PendingStatus(j *Job, message string) *Status {
	if message == "" {
		message = "queued"
	}
	return &Status{
		TaskID: j.TaskID, State: StatePending, Status: message, Total: 100, DocumentID: j.DocumentID,
		Queue: j.Priority, Kind: j.Kind, TenantID: j.TenantID, AgentID: j.AgentID, URL: j.URL,
	}
}

// CrawlCounts tracks the pages of a crawl task.
type CrawlCounts struct {
	Discovered int `json:"discovered"`
	Queued     int `json:"queued"`
	Done       int `json:"done"`
	Failed     int `json:"failed"`
}

// Document statuses, the permanent record in PostgreSQL.
const (
	DocQueued     = "queued"
	DocProcessing = "processing"
	DocCompleted  = "completed"
	DocFailed     = "failed"
	DocCancelled  = "cancelled"
)

// StateOfDocument derives a task state from a document status, for tasks whose live status
// has expired.
func StateOfDocument(status string) State {
	switch status {
	case DocProcessing:
		return StateProgress
	case DocCompleted:
		return StateSuccess
	case DocFailed:
		return StateFailure
	case DocCancelled:
		return StateRevoked
	}
	return StatePending
}

// Errors shared by every store; the API maps them to 404 and 409 in one place.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)
