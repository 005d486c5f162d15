package upload

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
)

// stall is how long a read of uploaded bytes may make no progress before it is abandoned (and
// the job retried): a broker restart mid-transfer must not hang the job until JOB_TIMEOUT.
const stall = 10 * time.Second

// Read reads upload name, which ref describes if it is not nil (a hint: when it no longer
// matches what is stored, the object store's description decides), and returns its bytes and
// its description. An upload of one chunk is read by direct get when the Store has a
// JetStream; others through the object store. Errors: one wrapping
// jetstream.ErrObjectNotFound for an upload that is gone, [ErrTooLarge] for one over
// MaxBytes, jetstream.ErrDigestMismatch for bytes that do not match their description; a read
// that makes no progress for 10 seconds fails with its reason.
func (p *Store) Read(ctx context.Context, name string, ref *job.UploadRef) ([]byte, *jetstream.ObjectInfo, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The watchdog covers the lookup too: a request lost in a broker restart never answers.
	sr := &stallReader{}
	sr.last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(stall / 10)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				if now.Sub(time.Unix(0, sr.last.Load())) > stall {
					cancel(fmt.Errorf("upload: read %s: no progress for %v", name, stall))
					return
				}
			}
		}
	}()
	stalled := func(err error) error {
		if cause := context.Cause(rctx); cause != nil && ctx.Err() == nil {
			return cause
		}
		return fmt.Errorf("upload: read %s: %w", name, err)
	}
	gone := func(err error) error { return fmt.Errorf("upload: bytes %s are gone: %w", name, err) }
	tooLarge := func() error { return fmt.Errorf("%w: %s exceeds %d bytes", ErrTooLarge, name, p.maxBytes) }
	if st := p.uploadStream(rctx); st != nil {
		data, info, ok, err := readChunk(rctx, p.obs, st, p.bucket, name, ref, p.maxBytes)
		switch {
		case errors.Is(err, jetstream.ErrObjectNotFound):
			return nil, nil, gone(err)
		case errors.Is(err, ErrTooLarge):
			return nil, nil, tooLarge()
		case err != nil:
			return nil, nil, stalled(err)
		case ok:
			sr.last.Store(time.Now().UnixNano())
			return data, info, nil
		}
	}
	r, err := p.obs.Get(rctx, name)
	if err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil, nil, gone(err)
		}
		return nil, nil, stalled(err)
	}
	defer func() { _ = r.Close() }()
	sr.r = io.LimitReader(r, p.maxBytes+1)
	data, err := io.ReadAll(sr)
	if err != nil {
		return nil, nil, stalled(err)
	}
	if int64(len(data)) > p.maxBytes {
		return nil, nil, tooLarge()
	}
	info, err := r.Info()
	if err != nil {
		info = nil // deleted by name then
	}
	return data, info, nil
}

// readChunk reads object name of obs, whose stream is st, by direct get when it is stored as
// one chunk, checking its size and digest as Get does. ref, the description the job carries,
// spares the look-up of the object store's; when the chunk it names is not found or does not
// match, the object store's description is read after all. ok is false for an object it
// leaves to Get (more chunks, or a link); ErrTooLarge if the object is over limit.
func readChunk(ctx context.Context, obs jetstream.ObjectStore, st jetstream.Stream, bucket, name string, ref *job.UploadRef, limit int64) (data []byte, info *jetstream.ObjectInfo, ok bool, err error) {
	if ref != nil && ref.Chunks == 1 && ref.NUID != "" && int64(ref.Size) <= limit {
		info = &jetstream.ObjectInfo{ObjectMeta: jetstream.ObjectMeta{Name: name},
			Bucket: bucket, NUID: ref.NUID, Size: ref.Size, Chunks: 1, Digest: ref.Digest}
		if data, err := getChunk(ctx, st, info); err == nil {
			return data, info, true, nil
		} else if ctx.Err() != nil {
			return nil, nil, false, err
		}
	}
	info, err = obs.GetInfo(ctx, name)
	if err != nil {
		return nil, nil, false, err
	}
	if info.Opts != nil && info.Opts.Link != nil || info.Chunks > 1 {
		return nil, nil, false, nil
	}
	if int64(info.Size) > limit {
		return nil, nil, false, ErrTooLarge
	}
	if info.Size == 0 {
		return []byte{}, info, true, nil
	}
	data, err = getChunk(ctx, st, info)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// A direct get may be answered by a replica that has not caught up yet: leave the
		// read to Get, which reads through the stream's leader.
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("upload: %s: %w", name, err)
	}
	return data, info, true, nil
}

// getChunk reads the one chunk of the object info describes by direct get and checks it
// against info's size and digest.
func getChunk(ctx context.Context, st jetstream.Stream, info *jetstream.ObjectInfo) ([]byte, error) {
	m, err := st.GetLastMsgForSubject(ctx, ChunkSubject(info.Bucket, info.NUID))
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(m.Data)
	if uint64(len(m.Data)) != info.Size || jetstream.GetObjectDigestValue(h) != info.Digest {
		return nil, jetstream.ErrDigestMismatch
	}
	return m.Data, nil
}

// stallReader records when it last returned data.
type stallReader struct {
	r    io.Reader
	last atomic.Int64
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.last.Store(time.Now().UnixNano())
	}
	return n, err
}
