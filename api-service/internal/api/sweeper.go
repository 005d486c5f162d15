package api

import (
	"context"
	"time"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/jobqueue"
)

// RunSweeper re-publishes, every interval until ctx ends, the jobs of tasks still PENDING but
// never acknowledged by a job stream minAge after they were recorded: the API stopped between
// recording a task and publishing its job. The tasks table is the outbox, for every kind; the
// task id as Nats-Msg-Id makes a double publish harmless.
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
	// This API's own enqueues whose mark is still pending are published, not orphans.
	s.marks.Flush(ctx)
	tasks, err := s.docs.UnpublishedTasks(ctx, minAge, 500)
	if err != nil {
		return 0, err
	}
	return s.publishRecorded(ctx, tasks, "outbox sweep: orphaned job re-published")
}

// publishRecorded publishes the jobs of recorded, unpublished tasks through the one enqueue
// path, logging each with msg, and returns how many it published. A task whose payload is not
// a valid job is skipped and logged: it cannot be published as it is.
func (s *Server) publishRecorded(ctx context.Context, tasks []*docstore.Task, msg string) (int, error) {
	n := 0
	for _, t := range tasks {
		j, err := t.Job()
		if err != nil {
			s.log.Error("recorded task cannot be published", "task_id", t.TaskID, "kind", t.Kind, "err", err)
			continue
		}
		if _, err := s.taskQueue.Enqueue(ctx, jobqueue.Enqueue{Job: j, Recorded: true, CreatedAt: t.CreatedAt}); err != nil {
			return n, err
		}
		s.log.Info(msg, "task_id", t.TaskID, "kind", t.Kind, "document_id", t.DocumentID)
		n++
	}
	s.marks.Flush(ctx)
	return n, nil
}
