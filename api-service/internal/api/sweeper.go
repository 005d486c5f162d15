package api

import (
	"context"
	"errors"
	"time"

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
	docs, err := s.docs.Unpublished(ctx, minAge, 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range docs {
		p, err := job.ParsePriority(d.Priority)
		if err != nil {
			p = job.PriorityHigh
		}
		j := &job.Job{
			TaskID: d.TaskID, Kind: d.Kind, TenantID: d.TenantID, AgentID: d.AgentID, DocumentID: d.ID,
			Priority: p, Filename: d.Filename, ContentType: d.ContentType, URL: d.URL, EnqueuedAt: s.now().UTC(),
		}
		if d.Kind == job.KindDocument {
			j.Object = d.TaskID
		}
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
