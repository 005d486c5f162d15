// Package jobqueue owns Quire's JetStream topology (job streams, their durable consumers, the
// dead-letter stream, the TASKS key-value bucket and the UPLOADS object store) and publishing
// jobs onto it.
package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
)

// Config describes the topology. Both services ensure it at start-up.
type Config struct {
	// Replicas of every stream and bucket (STREAM_REPLICAS; 1 on a single server, 3 in a cluster).
	Replicas int
	// DuplicateWindow is the job streams' de-duplication window (default 5m, at least 2m).
	DuplicateWindow time.Duration
	// AckWait is how long a delivered job may go without an ack or heartbeat before it is
	// redelivered (ACK_WAIT, default 30s).
	AckWait time.Duration
	// DLQMaxAge is how long dead letters are kept (DLQ_MAX_AGE, default 7 days).
	DLQMaxAge time.Duration
	// MaxAckPending caps the jobs in flight per priority across all workers (default 10000).
	MaxAckPending int
	// UpdateConsumers applies AckWait and MaxAckPending to consumers that already exist. The
	// worker sets it (it owns the consumer settings); the API only creates missing consumers.
	// An update never pauses or resumes a queue: the server keeps an existing consumer's
	// PauseUntil (set by POST /api/v1/queues/{priority}/pause), so a pause survives restarts.
	UpdateConsumers bool
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow < 2*time.Minute {
		c.DuplicateWindow = 5 * time.Minute
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.DLQMaxAge <= 0 {
		c.DLQMaxAge = 7 * 24 * time.Hour
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 10000
	}
	return c
}

// IdempotencyTTL is how long the first response to a POST with an Idempotency-Key is kept.
const IdempotencyTTL = 24 * time.Hour

// Topology is the set of JetStream handles both services work with.
type Topology struct {
	// Schedules is the stream SCHEDULES of schedule definitions and their fires.
	Schedules   jetstream.Stream
	Tasks       jetstream.KeyValue
	Uploads     jetstream.ObjectStore
	Idempotency jetstream.KeyValue
}

// StreamConfig is the configuration of the job stream of p.
func StreamConfig(p job.Priority, c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        p.Stream(),
		Description: "Quire " + string(p) + "-priority jobs",
		Subjects:    []string{p.Subjects()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  c.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
}

// ScheduleFireTTL is how long a fire is kept in SCHEDULES: fires are also rolled up per
// schedule (a new fire replaces one not yet materialised, so an API down for many fires makes
// one catch-up run), and the TTL removes the last fire of each schedule once it is handled.
const ScheduleFireTTL = time.Hour

// SchedulesStreamConfig is the configuration of the stream SCHEDULES: message schedules on,
// per-message TTLs on (fires expire), Limits retention (a definition stays until it is purged).
func SchedulesStreamConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              job.ScheduleStream,
		Description:       "Quire schedule definitions and their fires",
		Subjects:          []string{job.ScheduleDefSubjects, job.ScheduleFireSubjects},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          c.Replicas,
		Discard:           jetstream.DiscardOld,
		Duplicates:        2 * time.Minute,
		AllowMsgSchedules: true,
		AllowMsgTTL:       true,
		AllowRollup:       true,
	}
}

// MaterializerConfig is the configuration of the durable consumer `materializer` on the
// fires in SCHEDULES. A fire is handled in milliseconds (a row and a publish), so AckWait is
// short; MaxDeliver bounds a fire that cannot be handled (its schedule's task template no
// longer valid) rather than retrying it for ever.
func MaterializerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       job.MaterializerConsumer,
		Description:   "Quire schedule fires, turned into tasks by every API replica",
		FilterSubject: job.MaterializerFilter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       10 * time.Second,
		MaxDeliver:    10,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1000,
	}
}

// ConsumerConfig is the configuration of the durable consumer `workers` on a job stream.
// Redelivery is unlimited at the server: the worker counts deliveries itself and dead-letters
// a job once MAX_RETRIES+1 attempts are spent, so no message is ever stranded in the stream.
func ConsumerConfig(c Config) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       job.ConsumerName,
		Description:   "Quire workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: c.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxWaiting:    4096,
	}
}

// Ensure creates or updates every stream, consumer and bucket Quire needs. It is idempotent
// and safe to run from many processes at once: a concurrent creation by another process is
// detected and the existing resource is used.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) (*Topology, error) {
	c = c.WithDefaults()
	for _, p := range job.Priorities {
		if err := ensureStream(ctx, js, StreamConfig(p, c)); err != nil {
			return nil, err
		}
		if err := ensureConsumer(ctx, js, p.Stream(), ConsumerConfig(c), c.UpdateConsumers); err != nil {
			return nil, err
		}
	}
	dlq := jetstream.StreamConfig{
		Name:        job.DLQStream,
		Description: "Quire dead letters",
		Subjects:    []string{job.DLQSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxAge:      c.DLQMaxAge,
		Duplicates:  2 * time.Minute,
	}
	if err := ensureStream(ctx, js, dlq); err != nil {
		return nil, err
	}
	var top Topology
	err := retryRace(ctx, func() error {
		st, err := js.CreateOrUpdateStream(ctx, SchedulesStreamConfig(c))
		top.Schedules = st
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("jobqueue: ensure stream %s: %w", job.ScheduleStream, err)
	}
	if err := ensureConsumer(ctx, js, job.ScheduleStream, MaterializerConfig(), c.UpdateConsumers); err != nil {
		return nil, err
	}
	err = retryRace(ctx, func() error {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         job.TasksBucket,
			Description:    "Quire task statuses",
			History:        1,
			Storage:        jetstream.FileStorage,
			Replicas:       c.Replicas,
			LimitMarkerTTL: time.Minute,
		})
		top.Tasks = kv
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("jobqueue: ensure bucket %s: %w", job.TasksBucket, err)
	}
	err = retryRace(ctx, func() error {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      job.IdempotencyBucket,
			Description: "Quire first responses to POSTs with an Idempotency-Key",
			History:     1,
			TTL:         IdempotencyTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
		})
		top.Idempotency = kv
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("jobqueue: ensure bucket %s: %w", job.IdempotencyBucket, err)
	}
	err = retryRace(ctx, func() error {
		os, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      job.UploadsBucket,
			Description: "Quire uploaded documents",
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			Compression: false,
		})
		top.Uploads = os
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("jobqueue: ensure object store %s: %w", job.UploadsBucket, err)
	}
	return &top, nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	err := retryRace(ctx, func() error {
		_, err := js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	if err != nil {
		return fmt.Errorf("jobqueue: ensure stream %s: %w", cfg.Name, err)
	}
	return nil
}

func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig, update bool) error {
	err := retryRace(ctx, func() error {
		if update {
			_, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
			return err
		}
		_, err := js.CreateConsumer(ctx, stream, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("jobqueue: ensure consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return nil
}

// retryRace retries fn a few times when another process created the same resource between
// our lookup and our create.
func retryRace(ctx context.Context, fn func() error) error {
	var err error
	for range 5 {
		err = fn()
		if err == nil || !isRace(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return err
}

func isRace(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) ||
		errors.Is(err, jetstream.ErrConsumerExists) ||
		errors.Is(err, jetstream.ErrBucketExists) ||
		errors.Is(err, jetstream.ErrStreamNotFound) // stream vanished between lookup and update
}
