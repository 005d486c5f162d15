// Package taskstatus stores the live status of tasks in the TASKS key-value bucket. Updates are
// compare-and-set on the key's revision, so a worker's progress can never overwrite a
// cancellation, and terminal statuses expire RESULT_TTL after the task ends while queued and
// running ones never expire.
package taskstatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
)

// Store reads and writes task statuses.
type Store struct {
	kv        jetstream.KeyValue
	js        jetstream.Publisher
	resultTTL time.Duration
	now       func() time.Time
}

// New returns a Store on the TASKS bucket kv. Terminal statuses are written through js with a
// per-message TTL of resultTTL (at least one second; default one hour).
func New(kv jetstream.KeyValue, js jetstream.Publisher, resultTTL time.Duration) *Store {
	if resultTTL <= 0 {
		resultTTL = time.Hour
	}
	resultTTL = max(resultTTL, time.Second)
	return &Store{kv: kv, js: js, resultTTL: resultTTL, now: time.Now}
}

// Create stores the first status of a task. It fails with job.ErrConflict if the task exists.
func (s *Store) Create(ctx context.Context, st *job.Status) error {
	now := s.now().UTC()
	if st.CreatedAt.IsZero() {
		st.CreatedAt = now
	}
	st.UpdatedAt = now
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("taskstatus: encode %s: %w", st.TaskID, err)
	}
	if _, err := s.kv.Create(ctx, st.TaskID, data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("taskstatus: create %s: %w", st.TaskID, job.ErrConflict)
		}
		return fmt.Errorf("taskstatus: create %s: %w", st.TaskID, err)
	}
	return nil
}

// Get returns the status of a task and its revision; job.ErrNotFound if there is none (never
// created, or expired after RESULT_TTL).
func (s *Store) Get(ctx context.Context, taskID string) (*job.Status, uint64, error) {
	e, err := s.kv.Get(ctx, taskID)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
			return nil, 0, fmt.Errorf("taskstatus: get %s: %w", taskID, job.ErrNotFound)
		}
		return nil, 0, fmt.Errorf("taskstatus: get %s: %w", taskID, err)
	}
	var st job.Status
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, fmt.Errorf("taskstatus: decode %s: %w", taskID, err)
	}
	return &st, e.Revision(), nil
}

// Update applies fn to the current status and stores the result if nobody changed it in
// between, retrying on a concurrent change. fn may return an error to leave the status as it is;
// Update returns that error. A status entering a terminal state is stored with the result TTL.
func (s *Store) Update(ctx context.Context, taskID string, fn func(st *job.Status) error) (*job.Status, error) {
	for {
		st, rev, err := s.Get(ctx, taskID)
		if err != nil {
			return nil, err
		}
		if err := fn(st); err != nil {
			return st, err
		}
		st.UpdatedAt = s.now().UTC()
		_, err = s.put(ctx, st, rev)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSeq(err) {
			return nil, fmt.Errorf("taskstatus: update %s: %w", taskID, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// Put replaces the status of a task regardless of its revision (used when a task is
// re-queued from a dead letter).
func (s *Store) Put(ctx context.Context, st *job.Status) error {
	st.UpdatedAt = s.now().UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("taskstatus: encode %s: %w", st.TaskID, err)
	}
	if _, err := s.kv.Put(ctx, st.TaskID, data); err != nil {
		return fmt.Errorf("taskstatus: put %s: %w", st.TaskID, err)
	}
	return nil
}

// put writes st if the key is still at revision rev and returns the new revision.
func (s *Store) put(ctx context.Context, st *job.Status, rev uint64) (uint64, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("encode: %w", err)
	}
	if !st.State.Terminal() {
		return s.kv.Update(ctx, st.TaskID, data, rev)
	}
	// A terminal status expires after the result TTL. The KV API sets a key TTL only on create,
	// so publish the revision-checked update with a per-message TTL directly.
	msg := &nats.Msg{Subject: "$KV." + job.TasksBucket + "." + st.TaskID, Data: data, Header: nats.Header{}}
	ack, err := s.js.PublishMsg(ctx, msg,
		jetstream.WithExpectLastSequencePerSubject(rev),
		jetstream.WithMsgTTL(s.resultTTL))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func isWrongSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}

// Change is one change of a task's status seen by [Store.Watch]: the status written at
// Revision, or, when Deleted, the status's removal (deleted, purged, or expired after
// RESULT_TTL), with Status nil.
type Change struct {
	Status   *job.Status
	Revision uint64
	Deleted  bool
	Key      string // the task id
}

// Watch sends the changes of a task's status to the returned channel until ctx ends: its
// current status first, if it has one, then each status written after it, in order. The
// channel is closed when ctx ends or the watch fails (NATS gone); a watcher that falls behind
// holds up only its own channel. A value that does not decode as a status is skipped.
func (s *Store) Watch(ctx context.Context, taskID string) (<-chan Change, error) {
	w, err := s.kv.Watch(ctx, taskID)
	if err != nil {
		return nil, fmt.Errorf("taskstatus: watch %s: %w", taskID, err)
	}
	return s.forward(ctx, w), nil
}

// WatchMany is [Store.Watch] for several tasks at once (one watch, as a batch's): their
// current statuses first, then every change of any of them, each Change naming its task by
// its Status.TaskID (Key for a deletion).
func (s *Store) WatchMany(ctx context.Context, taskIDs []string) (<-chan Change, error) {
	w, err := s.kv.WatchFiltered(ctx, taskIDs)
	if err != nil {
		return nil, fmt.Errorf("taskstatus: watch %d tasks: %w", len(taskIDs), err)
	}
	return s.forward(ctx, w), nil
}

// forward turns the entries of w into Changes until ctx ends or w stops.
func (s *Store) forward(ctx context.Context, w jetstream.KeyWatcher) <-chan Change {
	out := make(chan Change, 1)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			var ch Change
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					// The marker after the current value: nothing to send.
					continue
				}
				ch.Revision, ch.Key = e.Revision(), e.Key()
				if e.Operation() != jetstream.KeyValuePut {
					ch.Deleted = true
				} else {
					var st job.Status
					if json.Unmarshal(e.Value(), &st) != nil {
						continue
					}
					ch.Status = &st
				}
			}
			select {
			case out <- ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Delete removes a task's status.
func (s *Store) Delete(ctx context.Context, taskID string) error {
	if err := s.kv.Delete(ctx, taskID); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("taskstatus: delete %s: %w", taskID, err)
	}
	return nil
}

// Tracker holds the last known status and revision of one task, so that a worker's sequence of
// updates costs one round trip each. Not safe for concurrent use.
type Tracker struct {
	s   *Store
	st  *job.Status
	rev uint64
}

// Track reads the status of a task for a sequence of updates; job.ErrNotFound if it has none.
func (s *Store) Track(ctx context.Context, taskID string) (*Tracker, error) {
	st, rev, err := s.Get(ctx, taskID)
	if err != nil {
		return nil, err
	}
	return &Tracker{s: s, st: st, rev: rev}, nil
}

// Status is a copy of the last status read or written.
func (t *Tracker) Status() job.Status { return *t.st }

// Update applies fn to the tracked status and writes it if nobody changed it since; on a
// concurrent change it re-reads the status and applies fn again. fn's error aborts the update
// and is returned.
func (t *Tracker) Update(ctx context.Context, fn func(st *job.Status) error) error {
	for {
		next := *t.st
		if err := fn(&next); err != nil {
			return err
		}
		next.UpdatedAt = t.s.now().UTC()
		rev, err := t.s.put(ctx, &next, t.rev)
		if err == nil {
			t.st, t.rev = &next, rev
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSeq(err) {
			return fmt.Errorf("taskstatus: update %s: %w", t.st.TaskID, err)
		}
		st, rev, err := t.s.Get(ctx, t.st.TaskID)
		if err != nil {
			return err
		}
		t.st, t.rev = st, rev
	}
}
