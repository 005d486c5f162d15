package api

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// RunSweeper re-publishes, every interval until ctx ends, the jobs of documents still queued
// but never acknowledged by a job stream minAge after their creation: the API stopped between
// recording a document and publishing its job. The documents row is the outbox; the task id
// as Nats-Msg-Id makes a double publish harmless.
func (s *Server) RunSweeper(ctx context.Context, interval, minAge time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Sweep(ctx, minAge); err != nil {
				s.log.Warn("outbox sweep failed", "err", err)
			} else if n > 0 {
				s.log.Info("outbox sweep re-published orphaned jobs", "count", n)
			}
		}
	}
}

// Sweep runs one pass of the sweeper and returns how many jobs it re-published.
func (s *Server) Sweep(ctx context.Context, minAge time.Duration) (int, error) {
	// This API's own uploads whose mark is still pending are published, not orphans.
	s.marks.Flush(ctx)
	docs, err := s.docs.Unpublished(ctx, minAge, 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range docs {
		j := outboxJob(d)
		j.EnqueuedAt = s.now().UTC()
		p := j.Priority
		st := &job.Status{
			TaskID: d.TaskID, State: job.StatePending, Status: "queued", Total: 100, DocumentID: d.ID,
			Queue: p, Kind: d.Kind, TenantID: d.TenantID, AgentID: d.AgentID, URL: d.URL, CreatedAt: d.CreatedAt,
		}
		if err := s.statuses.Create(ctx, st); err != nil && !errors.Is(err, job.ErrConflict) {
			return n, err
		}
		if err := s.publisher.Publish(ctx, j, j.TaskID); err != nil {
			return n, err
		}
		if err := s.docs.MarkPublished(ctx, d.ID); err != nil {
			return n, err
		}
		s.log.Info("orphaned job re-published", "task_id", d.TaskID, "document_id", d.ID)
		n++
	}
	return n, nil
}

// outboxJob is the job a documents row stands for: the one recorded in the row, or, for rows
// written before jobs were recorded, one rebuilt from the row's columns.
func outboxJob(d *docstore.Document) *job.Job {
	var j job.Job
	if len(d.Job) > 0 && json.Unmarshal(d.Job, &j) == nil && j.TaskID == d.TaskID {
		j.V, j.DocumentID = job.Version, d.ID
		return &j
	}
	p, err := job.ParsePriority(d.Priority)
	if err != nil {
		p = job.PriorityHigh
	}
	j = job.Job{
		V: job.Version, TaskID: d.TaskID, Kind: d.Kind, TenantID: d.TenantID, AgentID: d.AgentID, DocumentID: d.ID,
		Priority: p, Filename: d.Filename, ContentType: d.ContentType, URL: d.URL,
	}
	if d.Kind == job.KindDocument {
		j.Object = d.TaskID
	}
	return &j
}
