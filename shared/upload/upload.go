// Package upload owns the uploaded bytes of document jobs, kept in the UPLOADS object store
// under the task id: writing an upload, reading it back, deleting it, and the layout of the
// object store's stream that the fast paths rely on (a bucket B is stream OBJ_B, chunks on
// $O.B.C.<nuid>, descriptions on $O.B.M.<base64url name>). Nothing else in Quire knows that
// layout.
package upload

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
)

// StreamName is the stream behind object store bucket.
func StreamName(bucket string) string { return "OBJ_" + bucket }

// ChunkSubject is the subject of the chunks of the object with nuid in bucket.
func ChunkSubject(bucket, nuid string) string { return "$O." + bucket + ".C." + nuid }

// MetaSubject is the subject of the description of object name in bucket.
func MetaSubject(bucket, name string) string {
	return "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
}

// ErrTooLarge is returned by [Store.Read] for an upload over [Config.MaxBytes].
var ErrTooLarge = errors.New("upload: too large")

// DefaultMaxBytes is the default [Config.MaxBytes].
const DefaultMaxBytes = 1 << 30

// Config tunes a Store.
type Config struct {
	// MaxBytes caps the bytes Read returns (default DefaultMaxBytes, 1 GiB).
	MaxBytes int64
}

// Deps are the collaborators of a Store. JetStream may be nil.
type Deps struct {
	// Objects is the object store of the uploads (bucket Bucket).
	Objects jetstream.ObjectStore
	// Bucket is its name (default job.UploadsBucket).
	Bucket string
	// JetStream, if set, takes the fast paths: an upload of one chunk is written by two
	// publishes and read by direct get (its description, then its chunk), an upload whose
	// description is known is deleted without looking it up. Without it everything goes
	// through Objects, whose Get creates and deletes a consumer per read.
	JetStream jetstream.JetStream
	Logger    *slog.Logger
}

// Store reads, writes and deletes uploads. It is safe for concurrent use.
type Store struct {
	obs      jetstream.ObjectStore
	bucket   string
	js       jetstream.JetStream
	maxBytes int64
	log      *slog.Logger
	bufs     sync.Pool

	streamMu sync.Mutex
	stream   jetstream.Stream
}

// New returns a Store on d.
func New(cfg Config, d Deps) *Store {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if d.Bucket == "" {
		d.Bucket = job.UploadsBucket
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{obs: d.Objects, bucket: d.Bucket, js: d.JetStream, maxBytes: cfg.MaxBytes, log: d.Logger}
	s.bufs.New = func() any { b := make([]byte, chunkSize); return &b }
	return s
}

// Objects is the object store the uploads are kept in.
func (p *Store) Objects() jetstream.ObjectStore { return p.obs }

// Delete deletes upload name, described by info when it is known (what Read returned): then
// without looking its description up again. Deleting an upload that is gone is not an error.
func (p *Store) Delete(ctx context.Context, name string, info *jetstream.ObjectInfo) error {
	if info != nil && info.Name == name {
		if st := p.uploadStream(ctx); st != nil {
			return deleteByInfo(ctx, p.js, st, info)
		}
	}
	if err := p.obs.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("upload: delete %s: %w", name, err)
	}
	return nil
}

// DeleteMany deletes uploads, described by what their reads returned, all at once: the
// requests share the connection's writes and the server's replies.
func (p *Store) DeleteMany(ctx context.Context, uploads []*jetstream.ObjectInfo) error {
	errs := make([]error, len(uploads))
	var wg sync.WaitGroup
	for i, info := range uploads {
		wg.Go(func() { errs[i] = p.Delete(ctx, info.Name, info) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// uploadStream returns the stream behind the uploads, looked up once; nil without a
// JetStream or when the look-up fails (it is tried again on the next call).
func (p *Store) uploadStream(ctx context.Context) jetstream.Stream {
	if p.js == nil {
		return nil
	}
	p.streamMu.Lock()
	defer p.streamMu.Unlock()
	if p.stream == nil {
		st, err := p.js.Stream(ctx, StreamName(p.bucket))
		if err != nil {
			p.log.Warn("cannot reach the uploads stream; uploads go through the object store", "err", err)
			return nil
		}
		p.stream = st
	}
	return p.stream
}
