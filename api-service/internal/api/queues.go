package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
)

// pausedUntil is the deadline POST /api/v1/queues/{priority}/pause gives the consumer: far
// enough ahead to mean "until resumed", and within the ~292 years a time.Duration spans, so that
// `nats consumer info JOBS_<PRIORITY> workers` shows the same date as its remaining time.
var pausedUntil = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// queueView is one priority in GET /api/v1/queues, read from the JetStream info of the durable
// consumer `workers` on its job stream.
type queueView struct {
	Priority string `json:"priority"`
	Stream   string `json:"stream"`
	// Pending jobs have not been delivered to any worker yet (num_pending).
	Pending uint64 `json:"pending"`
	// InFlight jobs were delivered and are not acknowledged yet: running, or waiting out a retry
	// backoff (num_ack_pending).
	InFlight int `json:"in_flight"`
	// Redelivered counts in-flight jobs delivered more than once (num_redelivered).
	Redelivered int `json:"redelivered"`
	// Consumers is the number of pull requests waiting for jobs (num_waiting): workers with a
	// free slot. 0 means no worker is asking (all busy, or none running).
	Consumers int `json:"consumers"`
	// OldestPendingAgeSeconds is the age of the oldest pending job; 0 when none is pending.
	OldestPendingAgeSeconds float64 `json:"oldest_pending_age_seconds"`
	// Paused is true while delivery is stopped by POST /api/v1/queues/{priority}/pause.
	Paused bool `json:"paused"`
	// DeadLetters is the number of this priority's jobs in JOBS_DLQ (subjects dlq.<priority>.>),
	// all tenants; null if it could not be read.
	DeadLetters *uint64 `json:"dead_letters"`
}

// queuesView is the body of GET /api/v1/queues.
type queuesView struct {
	Queues []queueView `json:"queues"`
	// DeadLetters is the number of messages in JOBS_DLQ, all priorities and tenants; null if it
	// could not be read.
	DeadLetters *uint64 `json:"dead_letters"`
	// ReadAt is when JetStream was read; readings are cached for a few seconds.
	ReadAt time.Time `json:"read_at"`
	// Unavailable names what could not be read (priorities, "dlq"); absent when all was read.
	Unavailable []string `json:"unavailable,omitempty"`
}

// pauseView is the body of POST /api/v1/queues/{priority}/pause and /resume.
type pauseView struct {
	Priority    string     `json:"priority"`
	Paused      bool       `json:"paused"`
	PausedUntil *time.Time `json:"paused_until,omitempty"`
}

// listQueues serves GET /api/v1/queues (admin): the `celery inspect` of Quire. The reading is
// shared with the quire_queue_* metrics and cached for a few seconds; a pause or resume through
// this API shows at once. It answers 503 only if nothing at all could be read.
func (s *Server) listQueues(c *gin.Context) {
	if s.queueStats == nil {
		s.fail(c, errUnavailable)
		return
	}
	r := s.queueStats.Read(c.Request.Context())
	if len(r.Queues) == 0 && !r.DLQRead {
		s.log.Error("queues: reading JetStream", "err", r.Err)
		s.fail(c, errUnavailable)
		return
	}
	view := queuesView{Queues: []queueView{}, ReadAt: r.At.UTC()}
	dead := s.deadLettersByPriority(c.Request.Context())
	read := map[job.Priority]bool{}
	for _, q := range r.Queues {
		read[q.Priority] = true
		age := 0.0
		if !q.OldestPending.IsZero() {
			age = max(s.now().Sub(q.OldestPending).Seconds(), 0)
		}
		view.Queues = append(view.Queues, queueView{
			Priority: string(q.Priority), Stream: q.Priority.Stream(),
			Pending: q.Pending, InFlight: q.AckPending, Redelivered: q.Redelivered, Consumers: q.Waiting,
			OldestPendingAgeSeconds: age, Paused: q.Paused, DeadLetters: dead[q.Priority],
		})
	}
	for _, p := range job.Priorities {
		if !read[p] {
			view.Unavailable = append(view.Unavailable, string(p))
		}
	}
	if r.DLQRead {
		n := r.DLQMessages
		view.DeadLetters = &n
	} else {
		view.Unavailable = append(view.Unavailable, "dlq")
	}
	c.JSON(http.StatusOK, view)
}

// deadLettersByPriority counts the dead letters of each priority from the subjects of
// JOBS_DLQ; nil entries if the stream could not be read.
func (s *Server) deadLettersByPriority(ctx context.Context) map[job.Priority]*uint64 {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, job.DLQStream)
	if err != nil {
		s.log.Warn("queues: dead letters by priority", "err", err)
		return nil
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(job.DLQSubjects))
	if err != nil {
		s.log.Warn("queues: dead letters by priority", "err", err)
		return nil
	}
	out := make(map[job.Priority]*uint64, len(job.Priorities))
	for _, p := range job.Priorities {
		var n uint64
		prefix := "dlq." + string(p) + "."
		for subj, count := range info.State.Subjects {
			if strings.HasPrefix(subj, prefix) {
				n += count
			}
		}
		out[p] = &n
	}
	return out
}

// pauseQueue serves POST /api/v1/queues/{priority}/pause (admin). It pauses the priority's
// consumer `workers` until resumed: workers keep running and pulling, and the server delivers
// them nothing from that priority; jobs already running finish. Jobs can still be queued. The
// pause lives in the consumer's configuration, so it survives worker and server restarts.
// Pausing a paused queue is a no-op.
func (s *Server) pauseQueue(c *gin.Context) {
	s.setPaused(c, true)
}

// resumeQueue serves POST /api/v1/queues/{priority}/resume (admin): delivery starts again at
// once. Resuming a running queue is a no-op.
func (s *Server) resumeQueue(c *gin.Context) {
	s.setPaused(c, false)
}

func (s *Server) setPaused(c *gin.Context, pause bool) {
	p, err := job.ParsePriority(c.Param("priority"))
	if err != nil {
		s.fail(c, errBadRequest("priority must be high, medium or low"))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 10*time.Second)
	defer cancel()
	if pause {
		_, err = s.js.PauseConsumer(ctx, p.Stream(), job.ConsumerName, pausedUntil)
	} else {
		_, err = s.js.ResumeConsumer(ctx, p.Stream(), job.ConsumerName)
	}
	if s.queueStats != nil {
		s.queueStats.Invalidate()
	}
	if err != nil {
		s.log.Error("queues: set pause", "queue", p, "pause", pause, "err", err)
		s.fail(c, errUnavailable)
		return
	}
	view := pauseView{Priority: string(p), Paused: pause}
	if pause {
		until := pausedUntil
		view.PausedUntil = &until
		s.log.Warn("queue paused: its jobs are not delivered until resumed", "queue", p)
	} else {
		s.log.Warn("queue resumed", "queue", p)
	}
	c.JSON(http.StatusOK, view)
}
