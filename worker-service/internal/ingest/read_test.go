package ingest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// Uploads are read by direct get when they are one chunk and through the object store
// otherwise, with the same results: the bytes, a permanent error for missing or oversized
// uploads, and a retried one for bytes that do not match their digest.
func TestReadObject(t *testing.T) {
	ns := natstest.Run(t)
	_, js := natstest.Connect(t, ns)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	small := bytes.Repeat([]byte("Quire reads uploads. "), 500) // 10 KB: one chunk
	large := bytes.Repeat([]byte("0123456789abcdef"), 20_000)   // 320 KB: three chunks
	for name, data := range map[string][]byte{"small": small, "large": large, "empty": {}} {
		if _, err := top.Uploads.PutBytes(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}
	for _, direct := range []bool{true, false} {
		p := &Pipeline{Uploads: top.Uploads, Logger: slog.New(slog.DiscardHandler), MaxObjectBytes: 100_000}
		lookups := &countingStreams{StreamManager: js}
		if direct {
			p.Streams = lookups
		}
		for name, want := range map[string][]byte{"small": small, "empty": {}} {
			got, err := p.readObject(ctx, name)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("direct %v: %s: %d bytes, %v; want %d bytes", direct, name, len(got), err, len(want))
			}
		}
		if _, err := p.readObject(ctx, "large"); !worker.IsPermanent(err) {
			t.Fatalf("direct %v: upload over MaxObjectBytes: %v, want a permanent error", direct, err)
		}
		if _, err := p.readObject(ctx, "missing"); !worker.IsPermanent(err) || !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Fatalf("direct %v: missing upload: %v, want a permanent ErrObjectNotFound", direct, err)
		}
		p.MaxObjectBytes = 0
		if got, err := p.readObject(ctx, "large"); err != nil || !bytes.Equal(got, large) {
			t.Fatalf("direct %v: large: %d bytes, %v", direct, len(got), err)
		}
		if want := map[bool]int{true: 1, false: 0}[direct]; lookups.n != want {
			t.Fatalf("direct %v: %d look-ups of the uploads stream, want %d", direct, lookups.n, want)
		}
	}

	// A chunk that does not match the description's digest is refused (and retried).
	info, err := top.Uploads.GetInfo(ctx, "small")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "$O."+info.Bucket+".C."+info.NUID, bytes.ToUpper(small)); err != nil {
		t.Fatal(err)
	}
	p := &Pipeline{Uploads: top.Uploads, Logger: slog.New(slog.DiscardHandler), Streams: js}
	if _, err := p.readObject(ctx, "small"); err == nil || worker.IsPermanent(err) || !errors.Is(err, jetstream.ErrDigestMismatch) {
		t.Fatalf("tampered upload: %v, want a retried digest mismatch", err)
	}
}

// countingStreams counts the look-ups of streams.
type countingStreams struct {
	jetstream.StreamManager
	n int
}

func (c *countingStreams) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	c.n++
	return c.StreamManager.Stream(ctx, name)
}
