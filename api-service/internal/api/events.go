package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/quirehq/quire/shared/job"
)

// defaultEventKeepAlive is how often an idle event stream sends a comment, so that proxies and
// load balancers do not close it for silence.
const defaultEventKeepAlive = 15 * time.Second

// eventRetryMillis is the reconnection delay an event stream asks its clients for.
const eventRetryMillis = 2000

// eventStream writes Server-Sent Events (text/event-stream) on one response. Every write
// pushes the write deadline forward (http.Server.WriteTimeout would otherwise cut a long
// stream) by twice the keep-alive interval, so a client that stops reading is dropped.
type eventStream struct {
	w         gin.ResponseWriter
	rc        *http.ResponseController
	keepAlive time.Duration
	last      []byte // data of the last event sent, to skip an unchanged repeat
}

// startEvents answers c with the headers of an event stream.
func (s *Server) startEvents(c *gin.Context) *eventStream {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	// Proxies such as nginx buffer responses unless told not to.
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	es := &eventStream{w: c.Writer, rc: http.NewResponseController(c.Writer), keepAlive: s.cfg.EventKeepAlive}
	// The request is read: http.Server.ReadTimeout must not end the stream (its background
	// read would cancel the request's context when the deadline passes).
	_ = es.rc.SetReadDeadline(time.Time{})
	_ = es.write([]byte("retry: " + strconv.Itoa(eventRetryMillis) + "\n\n"))
	return es
}

func (es *eventStream) write(b []byte) error {
	// Not every writer supports deadlines (a test recorder does not); the stream works without.
	_ = es.rc.SetWriteDeadline(time.Now().Add(2*es.keepAlive + 10*time.Second))
	if _, err := es.w.Write(b); err != nil {
		return fmt.Errorf("api: event stream write: %w", err)
	}
	if err := es.rc.Flush(); err != nil {
		return fmt.Errorf("api: event stream flush: %w", err)
	}
	return nil
}

// send writes one event named event with v as its JSON data and id as its id (none if empty).
// An event whose data equals the previous event's is not sent again.
func (es *eventStream) send(event, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("api: encode event: %w", err)
	}
	if bytes.Equal(data, es.last) {
		return nil
	}
	es.last = data
	var b bytes.Buffer
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + event + "\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	return es.write(b.Bytes())
}

// comment writes an SSE comment, which clients ignore: the keep-alive.
func (es *eventStream) comment(text string) error {
	return es.write([]byte(": " + text + "\n\n"))
}

// taskEvents serves GET /api/v1/tasks/{task_id}/events: the task's status as Server-Sent
// Events, `event: status` with the status JSON of GET /api/v1/tasks/{task_id}, first the
// current status, then one event on every change, read from a watch of the task's key in the
// TASKS bucket. A comment every EventKeepAlive keeps an idle stream open. The stream ends after
// the first terminal status (SUCCESS, FAILURE, REVOKED), when the client leaves, or when the
// server shuts down; a client reconnecting (with Last-Event-ID or not) gets the current status
// first, so it misses no final state. A task whose live status has expired is answered from
// its record: one event, then the end. Another tenant's task, or none: 404 before the stream.
func (s *Server) taskEvents(c *gin.Context) {
	s.streamTask(c, tenantOf(c), c.Param("task_id"))
}

// streamTask answers c with the event stream of tenant's task taskID ([Server.taskEvents]);
// the operator dashboard's task page follows it too.
func (s *Server) streamTask(c *gin.Context, tenant, taskID string) {
	ctx := c.Request.Context()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The watch starts before the lookup, so a change between the two is not missed.
	changes, err := s.statuses.Watch(wctx, taskID)
	if err != nil {
		s.log.Error("task events: watch", "task_id", taskID, "err", err)
		s.fail(c, errUnavailable)
		return
	}
	st, err := s.lookupTask(ctx, tenant, taskID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxTaskID, taskID)
	es := s.startEvents(c)
	if _, _, err := s.statuses.Get(ctx, taskID); errors.Is(err, job.ErrNotFound) {
		// Answered from the record: the watch has nothing to send until a status is created.
		if es.send("status", "", taskFromStatus(st)) != nil || st.State.Terminal() {
			return
		}
	}
	tick := time.NewTicker(es.keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.streamsDone:
			return
		case <-tick.C:
			if es.comment("keep-alive") != nil {
				return
			}
		case ch, ok := <-changes:
			if !ok {
				// The watch failed (NATS gone): the client reconnects and gets the current status.
				return
			}
			if ch.Deleted {
				// Removed or expired: the record has the outcome.
				st, err := s.lookupTask(ctx, tenant, taskID)
				if err != nil {
					return
				}
				if es.send("status", "", taskFromStatus(st)) != nil || st.State.Terminal() {
					return
				}
				continue
			}
			if ch.Status.TenantID != tenant {
				return
			}
			if es.send("status", strconv.FormatUint(ch.Revision, 10), taskFromStatus(ch.Status)) != nil {
				return
			}
			if ch.Status.State.Terminal() {
				return
			}
		}
	}
}

// StopStreams ends every open event stream (clients reconnect, to another replica if this one
// is going away). Register it with http.Server.RegisterOnShutdown: Shutdown does not wait for
// streams that would otherwise never end. Safe to call more than once.
func (s *Server) StopStreams() { s.stopStreams.Do(func() { close(s.streamsDone) }) }

// batchFollow is how long a batch's stream keeps re-reading the batch's status after a change
// of one of its tasks' statuses: a task's record (which the batch's status derives from)
// follows its live status by moments.
const batchFollow = 5 * time.Second

// batchEvents serves GET /api/v1/batches/{batch_id}/events: the batch's status (the body of
// GET /api/v1/batches/{batch_id}) as Server-Sent Events, `event: status`, first the current
// one, then again whenever it changes. Changes are noticed by one watch of the batch's tasks'
// keys in the TASKS bucket; the status is then derived again from the tasks' records (it is
// never stored). Keep-alive comments as for a task's stream; the stream ends once the batch's
// state is final (SUCCESS, PARTIAL, FAILURE, REVOKED).
func (s *Server) batchEvents(c *gin.Context) {
	ctx := c.Request.Context()
	tenant, id := tenantOf(c), c.Param("batch_id")
	tasks, err := s.docs.BatchTasks(ctx, tenant, id)
	if err != nil {
		if !errors.Is(err, job.ErrNotFound) {
			s.log.Error("batch events: tasks", "batch_id", id, "err", err)
			err = errUnavailable
		}
		s.fail(c, storeError(err, "batch not found"))
		return
	}
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = t.TaskID
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes, err := s.statuses.WatchMany(wctx, ids)
	if err != nil {
		s.log.Error("batch events: watch", "batch_id", id, "err", err)
		s.fail(c, errUnavailable)
		return
	}
	es := s.startEvents(c)
	// send writes the current status; it reports whether the stream should go on.
	send := func() bool {
		raw, err := s.batchStatusOf(ctx, tenant, id)
		if err != nil {
			return false
		}
		var st struct {
			State string `json:"state"`
		}
		if json.Unmarshal(raw, &st) != nil || es.send("status", "", json.RawMessage(raw)) != nil {
			return false
		}
		switch job.State(st.State) {
		case job.StateSuccess, job.StateFailure, job.StateRevoked, "PARTIAL":
			return false
		}
		return true
	}
	if !send() {
		return
	}
	tick := time.NewTicker(es.keepAlive)
	defer tick.Stop()
	refresh := time.NewTimer(time.Hour)
	refresh.Stop()
	var followUntil time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.streamsDone:
			return
		case <-tick.C:
			if es.comment("keep-alive") != nil || !send() {
				return
			}
		case _, ok := <-changes:
			if !ok {
				return
			}
			if followUntil.IsZero() || time.Now().After(followUntil) {
				refresh.Reset(100 * time.Millisecond)
			}
			followUntil = time.Now().Add(batchFollow)
		case <-refresh.C:
			if !send() {
				return
			}
			if time.Now().Before(followUntil) {
				refresh.Reset(250 * time.Millisecond)
			}
		}
	}
}
