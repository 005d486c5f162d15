package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/schedule"
)

// Schedules (DESIGN §11). PostgreSQL's schedules table is the source of truth; each enabled
// schedule has its definition, a JetStream message schedule, on schedules.def.<id> in the
// stream SCHEDULES, firing to schedules.fire.<id>. Every API replica pulls the fires from the
// durable consumer materializer and turns each into one task (materializer.go). There is no
// scheduler process and no leader of Quire's own: only the stream's leader fires.

const (
	maxScheduleNameLength = 200
	// maxSchedulesListed caps GET /api/v1/schedules.
	maxSchedulesListed = 1000
	defaultRunsListed  = 50
	maxRunsListed      = 500
)

// scheduleTask is a schedule's task template: the job each run makes.
type scheduleTask struct {
	Kind     job.Kind `json:"kind"`
	AgentID  string   `json:"agent_id"`
	URL      string   `json:"url"`
	MaxPages *int     `json:"max_pages,omitempty"`
	MaxDepth *int     `json:"max_depth,omitempty"`
	Priority string   `json:"priority,omitempty"`
}

// check validates t as POST .../webpage or .../crawl would, and returns it with its defaults
// applied (bounds and priority), as it is stored.
func (t scheduleTask) check() (scheduleTask, error) {
	if !agentIDPattern.MatchString(t.AgentID) {
		return t, errBadRequest("task.agent_id must be 1-128 characters of A-Z a-z 0-9 _ . -")
	}
	u, err := checkPageURL(t.URL)
	if err != nil {
		return t, errBadRequest("task." + err.Error())
	}
	t.URL = u
	switch t.Kind {
	case job.KindWebpage:
		p := job.PriorityHigh
		if strings.TrimSpace(t.Priority) != "" {
			if p, err = job.ParsePriority(t.Priority); err != nil {
				return t, errBadRequest("task.priority must be high, medium or low")
			}
		}
		t.Priority, t.MaxPages, t.MaxDepth = string(p), nil, nil
	case job.KindCrawl:
		pages, err := bound("task.max_pages", t.MaxPages, defaultCrawlPages, maxCrawlPages)
		if err != nil {
			return t, err
		}
		depth, err := bound("task.max_depth", t.MaxDepth, defaultCrawlDepth, maxCrawlDepth)
		if err != nil {
			return t, err
		}
		t.MaxPages, t.MaxDepth, t.Priority = &pages, &depth, string(job.PriorityLow)
	default:
		return t, errBadRequest(`task.kind must be "webpage" or "crawl"`)
	}
	return t, nil
}

// newRun makes the document and job of one run of t for tenant, under a new task id. A
// scheduled crawl syncs: it also removes the agent's pages of the site that are gone.
func (t scheduleTask) newRun(tenant string) (*docstore.Document, *job.Job) {
	taskID := uuid.Must(uuid.NewV7()).String()
	j := &job.Job{TaskID: taskID, Kind: t.Kind, TenantID: tenant, AgentID: t.AgentID, Priority: job.Priority(t.Priority), URL: t.URL,
		Sync: t.Kind == job.KindCrawl}
	if t.MaxPages != nil {
		j.MaxPages = *t.MaxPages
	}
	if t.MaxDepth != nil {
		j.MaxDepth = *t.MaxDepth
	}
	doc := &docstore.Document{TenantID: tenant, AgentID: t.AgentID, Kind: t.Kind, URL: t.URL, TaskID: taskID, Priority: t.Priority}
	if payload, err := json.Marshal(j); err == nil {
		doc.Job = payload
	}
	return doc, j
}

// scheduleRequest is the body of POST and PATCH /api/v1/schedules: exactly one of cron,
// every and at on POST (PATCH: at most one, replacing the spec).
type scheduleRequest struct {
	Name     *string       `json:"name"`
	Cron     *string       `json:"cron"`
	Every    *string       `json:"every"`
	At       *string       `json:"at"`
	Timezone *string       `json:"timezone"`
	Overlap  *string       `json:"overlap"`
	Task     *scheduleTask `json:"task"`
}

// spec returns the kind and text of the spec r gives, if any.
func (r *scheduleRequest) spec() (schedule.Kind, string, bool, error) {
	var kinds []schedule.Kind
	var text string
	for _, f := range []struct {
		k schedule.Kind
		v *string
	}{{schedule.KindCron, r.Cron}, {schedule.KindEvery, r.Every}, {schedule.KindAt, r.At}} {
		if f.v != nil {
			kinds, text = append(kinds, f.k), *f.v
		}
	}
	switch len(kinds) {
	case 0:
		return "", "", false, nil
	case 1:
		return kinds[0], text, true, nil
	}
	return "", "", false, errBadRequest(`one of "cron", "every" and "at", not several`)
}

// scheduleView is a schedule as the API shows it.
type scheduleView struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Cron      string       `json:"cron,omitempty"`
	Every     string       `json:"every,omitempty"`
	At        string       `json:"at,omitempty"`
	Timezone  string       `json:"timezone,omitempty"`
	Overlap   string       `json:"overlap"`
	Task      scheduleTask `json:"task"`
	Enabled   bool         `json:"enabled"`
	Version   int64        `json:"version"`
	NextRunAt *time.Time   `json:"next_run_at"`
	LastRunAt *time.Time   `json:"last_run_at"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

func (s *Server) scheduleView(sc *docstore.Schedule) scheduleView {
	v := scheduleView{
		ID: sc.ID, Name: sc.Name, Timezone: sc.TimeZone, Overlap: sc.Overlap, Enabled: sc.Enabled, Version: sc.Version,
		LastRunAt: sc.LastRunAt, CreatedAt: sc.CreatedAt, UpdatedAt: sc.UpdatedAt,
	}
	_ = json.Unmarshal(sc.Task, &v.Task)
	switch schedule.Kind(sc.SpecKind) {
	case schedule.KindCron:
		v.Cron = sc.Spec
	case schedule.KindEvery:
		v.Every = sc.Spec
	case schedule.KindAt:
		v.At = sc.Spec
	}
	v.NextRunAt = nextRun(sc, s.now())
	return v
}

// nextRun is when a schedule runs next as the server computes it; nil when it is paused or
// will not run again (a single time that has run).
func nextRun(sc *docstore.Schedule, now time.Time) *time.Time {
	if !sc.Enabled {
		return nil
	}
	spec, err := schedule.Parse(schedule.Kind(sc.SpecKind), sc.Spec, sc.TimeZone)
	if err != nil {
		return nil
	}
	// The definition was last published at updated_at; an interval counts from the last fire.
	prev := sc.UpdatedAt
	if sc.LastRunAt != nil && sc.LastRunAt.After(prev) {
		prev = *sc.LastRunAt
	}
	if spec.Kind() == schedule.KindAt && sc.LastRunAt != nil {
		return nil
	}
	next := spec.Next(prev, now)
	// A fire repeating the last run's wall-clock time (the clock set back) makes no run.
	for i := 0; i < 3 && sc.LastRunAt != nil && !next.IsZero() && spec.RepeatsWallClock(*sc.LastRunAt, next); i++ {
		next = spec.After(next)
	}
	if next.IsZero() {
		return nil
	}
	next = next.In(spec.Location())
	return &next
}

// parseSpec parses a spec, answering 400 naming the field.
func parseSpec(kind schedule.Kind, text, zone string) (*schedule.Spec, error) {
	spec, err := schedule.Parse(kind, text, zone)
	if fe, ok := errors.AsType[*schedule.FieldError](err); ok {
		return nil, errBadRequest(fe.Field + ": " + fe.Msg)
	}
	return spec, err
}

func checkOverlap(o *string) (string, error) {
	if o == nil || *o == "" {
		return docstore.OverlapSkip, nil
	}
	switch *o {
	case docstore.OverlapSkip, docstore.OverlapAllow:
		return *o, nil
	}
	return "", errBadRequest(`overlap must be "skip" or "allow"`)
}

func checkName(n *string) (string, error) {
	name := ""
	if n != nil {
		name = strings.TrimSpace(*n)
	}
	switch {
	case name == "":
		return "", errBadRequest("name is required")
	case len(name) > maxScheduleNameLength:
		return "", errBadRequest(fmt.Sprintf("name is longer than %d bytes", maxScheduleNameLength))
	}
	return name, nil
}

// createSchedule serves POST /api/v1/schedules: 201 with the schedule, its id and next_run_at.
// The row and its definition are written together: a definition that cannot be published
// leaves no schedule (503).
func (s *Server) createSchedule(c *gin.Context) {
	var req scheduleRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	name, err := checkName(req.Name)
	if err != nil {
		s.fail(c, err)
		return
	}
	kind, text, ok, err := req.spec()
	if err == nil && !ok {
		err = errBadRequest(`one of "cron", "every" and "at" is required`)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	zone := ""
	if req.Timezone != nil {
		zone = strings.TrimSpace(*req.Timezone)
	}
	spec, err := parseSpec(kind, text, zone)
	if err != nil {
		s.fail(c, err)
		return
	}
	overlap, err := checkOverlap(req.Overlap)
	if err != nil {
		s.fail(c, err)
		return
	}
	if req.Task == nil {
		s.fail(c, errBadRequest("task is required"))
		return
	}
	task, err := req.Task.check()
	if err != nil {
		s.fail(c, err)
		return
	}
	taskJSON, _ := json.Marshal(task)
	sc := &docstore.Schedule{
		ID: uuid.Must(uuid.NewV7()).String(), TenantID: tenantOf(c), Name: name, SpecKind: string(spec.Kind()),
		Spec: spec.Text(), TimeZone: spec.TimeZone(), Overlap: overlap, Task: taskJSON, Enabled: true,
	}
	ctx := c.Request.Context()
	if err := s.docs.CreateSchedule(ctx, sc, func(sc *docstore.Schedule) error { return s.publishDefinition(ctx, sc) }); err != nil {
		s.log.Error("create schedule", "schedule_id", sc.ID, "err", err)
		s.fail(c, errUnavailable)
		return
	}
	c.JSON(http.StatusCreated, s.scheduleView(sc))
}

func (s *Server) listSchedules(c *gin.Context) {
	list, err := s.docs.ListSchedules(c.Request.Context(), tenantOf(c), maxSchedulesListed)
	if err != nil {
		s.fail(c, storeError(err, "schedule not found"))
		return
	}
	out := make([]scheduleView, 0, len(list))
	for _, sc := range list {
		out = append(out, s.scheduleView(sc))
	}
	c.JSON(http.StatusOK, gin.H{"schedules": out})
}

func (s *Server) getSchedule(c *gin.Context) {
	sc, err := s.docs.GetSchedule(c.Request.Context(), tenantOf(c), c.Param("id"))
	if err != nil {
		s.fail(c, storeError(err, "schedule not found"))
		return
	}
	c.JSON(http.StatusOK, s.scheduleView(sc))
}

// patchSchedule serves PATCH /api/v1/schedules/{id}: the fields given replace the schedule's
// (one of cron, every and at replaces the spec; timezone "" means UTC), its version goes up
// by one and an enabled schedule's definition is published again, replacing the old one.
func (s *Server) patchSchedule(c *gin.Context) {
	var req scheduleRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	kind, text, hasSpec, err := req.spec()
	if err != nil {
		s.fail(c, err)
		return
	}
	var name string
	if req.Name != nil {
		if name, err = checkName(req.Name); err != nil {
			s.fail(c, err)
			return
		}
	}
	var task scheduleTask
	if req.Task != nil {
		if task, err = req.Task.check(); err != nil {
			s.fail(c, err)
			return
		}
	}
	var overlap string
	if req.Overlap != nil {
		if overlap, err = checkOverlap(req.Overlap); err != nil {
			s.fail(c, err)
			return
		}
	}
	change := func(sc *docstore.Schedule) error {
		if req.Name != nil {
			sc.Name = name
		}
		if req.Overlap != nil {
			sc.Overlap = overlap
		}
		if req.Task != nil {
			sc.Task, _ = json.Marshal(task)
		}
		if hasSpec || req.Timezone != nil {
			k, t, zone := schedule.Kind(sc.SpecKind), sc.Spec, sc.TimeZone
			if hasSpec {
				k, t = kind, text
				if req.Timezone == nil && k != schedule.KindCron {
					zone = ""
				}
			}
			if req.Timezone != nil {
				zone = strings.TrimSpace(*req.Timezone)
			}
			spec, err := parseSpec(k, t, zone)
			if err != nil {
				return err
			}
			sc.SpecKind, sc.Spec, sc.TimeZone = string(spec.Kind()), spec.Text(), spec.TimeZone()
			if hasSpec {
				sc.LastRunAt = nil // a new single time runs, whatever the old one did
			}
		}
		return nil
	}
	ctx := c.Request.Context()
	sc, err := s.docs.UpdateSchedule(ctx, tenantOf(c), c.Param("id"), change, func(sc *docstore.Schedule) error {
		if !sc.Enabled {
			return nil
		}
		return s.publishDefinition(ctx, sc)
	})
	if err != nil {
		s.failSchedule(c, "patch schedule", err)
		return
	}
	c.JSON(http.StatusOK, s.scheduleView(sc))
}

// failSchedule answers a failed schedule change: 400 and 404 as they are, 503 for NATS or
// PostgreSQL failing (nothing changed).
func (s *Server) failSchedule(c *gin.Context, what string, err error) {
	if he, ok := errors.AsType[*httpError](err); ok {
		s.fail(c, he)
		return
	}
	if errors.Is(err, job.ErrNotFound) {
		s.fail(c, errNotFound("schedule not found"))
		return
	}
	s.log.Error(what, "schedule_id", c.Param("id"), "err", err)
	s.fail(c, errUnavailable)
}

// pauseSchedule serves POST /api/v1/schedules/{id}/pause: the schedule is disabled and its
// definition removed from SCHEDULES, so it fires no more until resumed.
func (s *Server) pauseSchedule(c *gin.Context) { s.setScheduleEnabled(c, false) }

// resumeSchedule serves POST /api/v1/schedules/{id}/resume: the definition is published
// again; the next run is the spec's next after now (runs missed while paused are not made up).
func (s *Server) resumeSchedule(c *gin.Context) { s.setScheduleEnabled(c, true) }

func (s *Server) setScheduleEnabled(c *gin.Context, enabled bool) {
	ctx := c.Request.Context()
	sc, err := s.docs.UpdateSchedule(ctx, tenantOf(c), c.Param("id"),
		func(sc *docstore.Schedule) error { sc.Enabled = enabled; return nil },
		func(sc *docstore.Schedule) error {
			if enabled {
				return s.publishDefinition(ctx, sc)
			}
			return s.purgeSubject(ctx, job.ScheduleDefSubject(sc.ID))
		})
	if err != nil {
		s.failSchedule(c, "pause or resume schedule", err)
		return
	}
	c.JSON(http.StatusOK, s.scheduleView(sc))
}

// deleteSchedule serves DELETE /api/v1/schedules/{id}: the definition and any fire not yet
// handled leave SCHEDULES, then the schedule and its runs leave PostgreSQL (the tasks its runs
// made stay).
func (s *Server) deleteSchedule(c *gin.Context) {
	ctx := c.Request.Context()
	tenant, id := tenantOf(c), c.Param("id")
	if _, err := s.docs.GetSchedule(ctx, tenant, id); err != nil {
		s.failSchedule(c, "delete schedule", err)
		return
	}
	if err := s.purgeSubject(ctx, job.ScheduleDefSubject(id)); err != nil {
		s.failSchedule(c, "delete schedule", err)
		return
	}
	if err := s.docs.DeleteSchedule(ctx, tenant, id); err != nil {
		s.failSchedule(c, "delete schedule", err)
		return
	}
	if err := s.purgeSubject(ctx, job.ScheduleFireSubject(id)); err != nil {
		// A fire left behind is dropped by the materializer: its schedule is gone.
		s.log.Warn("delete schedule: purge its fires", "schedule_id", id, "err", err)
	}
	c.JSON(http.StatusOK, gin.H{"id": id, "status": "deleted"})
}

// triggerSchedule serves POST /api/v1/schedules/{id}/trigger: a fire now, published on the
// schedule's fire subject with its time, and materialised like any other (overlap included);
// 202 with the fire time. A paused schedule makes no runs: 409.
func (s *Server) triggerSchedule(c *gin.Context) {
	ctx := c.Request.Context()
	sc, err := s.docs.GetSchedule(ctx, tenantOf(c), c.Param("id"))
	if err != nil {
		s.failSchedule(c, "trigger schedule", err)
		return
	}
	if !sc.Enabled {
		s.fail(c, errConflict("the schedule is paused: resume it to run it"))
		return
	}
	fireTime := s.now().UTC().Truncate(time.Second)
	msg := nats.NewMsg(job.ScheduleFireSubject(sc.ID))
	msg.Header.Set(job.HeaderScheduleID, sc.ID)
	msg.Header.Set(job.HeaderFireTime, fireTime.Format(time.RFC3339))
	msg.Header.Set(job.HeaderTenantID, sc.TenantID)
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(job.ScheduleStream), jetstream.WithMsgTTL(jobqueue.ScheduleFireTTL),
		jetstream.WithMsgID("trigger:"+sc.ID+":"+strconv.FormatInt(fireTime.Unix(), 10))); err != nil {
		s.failSchedule(c, "trigger schedule", err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"id": sc.ID, "fire_time": fireTime, "status": "triggered",
		"message": "a run is made now unless overlap skip finds the previous run still queued or running; see GET /api/v1/schedules/" + sc.ID + "/runs"})
}

type runView struct {
	FireTime time.Time `json:"fire_time"`
	TaskID   string    `json:"task_id,omitempty"`
	State    string    `json:"state"`
}

// listScheduleRuns serves GET /api/v1/schedules/{id}/runs?limit=: the runs newest first, with
// the state of each run's task (or "skipped").
func (s *Server) listScheduleRuns(c *gin.Context) {
	limit := defaultRunsListed
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			s.fail(c, errBadRequest(fmt.Sprintf("limit must be a number from 1 to %d", maxRunsListed)))
			return
		}
		limit = min(n, maxRunsListed)
	}
	runs, err := s.docs.ListScheduleRuns(c.Request.Context(), tenantOf(c), c.Param("id"), limit)
	if err != nil {
		s.failSchedule(c, "list schedule runs", err)
		return
	}
	out := make([]runView, 0, len(runs))
	for _, r := range runs {
		out = append(out, runView{FireTime: r.FireTime.UTC(), TaskID: r.TaskID, State: r.State})
	}
	c.JSON(http.StatusOK, gin.H{"runs": out})
}

// definitionBody is the body of a definition, copied by the server into every fire.
type definitionBody struct {
	ScheduleID string `json:"schedule_id"`
	Version    int64  `json:"version"`
}

// publishDefinition publishes sc's definition on schedules.def.<id>, replacing the one there:
// the spec as Nats-Schedule (and its time zone), fires to schedules.fire.<id>, each fire with
// a TTL and rolled up (a fire replaces the schedule's previous one if it is still there).
// The header Quire-Schedule-Version carries sc.Version. With expectSeq set, the publish only
// succeeds if the subject's last message is still at that sequence (0: the subject is empty).
func (s *Server) publishDefinition(ctx context.Context, sc *docstore.Schedule, expectSeq ...uint64) error {
	spec, err := schedule.Parse(schedule.Kind(sc.SpecKind), sc.Spec, sc.TimeZone)
	if err != nil {
		return fmt.Errorf("schedule %s: %w", sc.ID, err)
	}
	body, _ := json.Marshal(definitionBody{ScheduleID: sc.ID, Version: sc.Version})
	msg := nats.NewMsg(job.ScheduleDefSubject(sc.ID))
	msg.Data = body
	msg.Header.Set(job.HeaderScheduleID, sc.ID)
	msg.Header.Set(job.HeaderScheduleVersion, strconv.FormatInt(sc.Version, 10))
	msg.Header.Set(job.HeaderTenantID, sc.TenantID)
	opts := []jetstream.PublishOpt{
		jetstream.WithExpectStream(job.ScheduleStream),
		jetstream.WithScheduleTarget(job.ScheduleFireSubject(sc.ID)),
		jetstream.WithScheduleTTL(jobqueue.ScheduleFireTTL),
		jetstream.WithScheduleRollup(),
	}
	switch spec.Kind() {
	case schedule.KindAt:
		opts = append(opts, jetstream.WithScheduleAt(spec.At()))
	case schedule.KindEvery:
		opts = append(opts, jetstream.WithScheduleEvery(spec.Every()))
	default:
		opts = append(opts, jetstream.WithScheduleCron(spec.Header()))
		if tz := spec.TimeZone(); tz != "" {
			opts = append(opts, jetstream.WithScheduleTimeZone(tz))
		}
	}
	if len(expectSeq) > 0 {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(expectSeq[0]))
	}
	if _, err := s.js.PublishMsg(ctx, msg, opts...); err != nil {
		return fmt.Errorf("publish definition of schedule %s: %w", sc.ID, err)
	}
	return nil
}

// purgeSubject removes every message on subject from SCHEDULES (a definition: its schedule).
func (s *Server) purgeSubject(ctx context.Context, subject string) error {
	st, err := s.js.Stream(ctx, job.ScheduleStream)
	if err != nil {
		return fmt.Errorf("purge %s: %w", subject, err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return fmt.Errorf("purge %s: %w", subject, err)
	}
	return nil
}
