package upload_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/quiretest"
	"github.com/quirehq/quire/shared/upload"
)

// Uploads are read by direct get when they are one chunk and through the object store
// otherwise, with the same results: the bytes, a permanent error for missing or oversized
// uploads, and a retried one for bytes that do not match their digest.
func TestRead(t *testing.T) {
	js, top := uploadsServer(t)
	ctx := t.Context()
	small := bytes.Repeat([]byte("Quire reads uploads. "), 500) // 10 KB: one chunk
	large := bytes.Repeat([]byte("0123456789abcdef"), 20_000)   // 320 KB: three chunks
	for name, data := range map[string][]byte{"small": small, "large": large, "empty": {}} {
		if _, err := top.Uploads.PutBytes(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}
	for _, direct := range []bool{true, false} {
		lookups := &countingStreams{JetStream: js}
		d := upload.Deps{Objects: top.Uploads}
		if direct {
			d.JetStream = lookups
		}
		p := upload.New(upload.Config{MaxBytes: 100_000}, d)
		for name, want := range map[string][]byte{"small": small, "empty": {}} {
			got, info, err := p.Read(ctx, name, nil)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("direct %v: %s: %d bytes, %v; want %d bytes", direct, name, len(got), err, len(want))
			}
			if info == nil || info.Name != name || info.NUID == "" || info.Size != uint64(len(want)) {
				t.Fatalf("direct %v: %s: description %+v", direct, name, info)
			}
		}
		if _, _, err := p.Read(ctx, "large", nil); !errors.Is(err, upload.ErrTooLarge) {
			t.Fatalf("direct %v: upload over MaxBytes: %v, want ErrTooLarge", direct, err)
		}
		if _, _, err := p.Read(ctx, "missing", nil); !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Fatalf("direct %v: missing upload: %v, want ErrObjectNotFound", direct, err)
		}
		p = upload.New(upload.Config{}, d)
		if got, _, err := p.Read(ctx, "large", nil); err != nil || !bytes.Equal(got, large) {
			t.Fatalf("direct %v: large: %d bytes, %v", direct, len(got), err)
		}
		if want := map[bool]int{true: 2, false: 0}[direct]; lookups.n != want { // one per Store
			t.Fatalf("direct %v: %d look-ups of the uploads stream, want %d", direct, lookups.n, want)
		}
	}

	// A chunk that does not match the description's digest is refused (and retried).
	info, err := top.Uploads.GetInfo(ctx, "small")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, upload.ChunkSubject(info.Bucket, info.NUID), bytes.ToUpper(small)); err != nil {
		t.Fatal(err)
	}
	p := upload.New(upload.Config{}, upload.Deps{Objects: top.Uploads, JetStream: js})
	if _, _, err := p.Read(ctx, "small", nil); err == nil || errors.Is(err, jetstream.ErrObjectNotFound) || !errors.Is(err, jetstream.ErrDigestMismatch) {
		t.Fatalf("tampered upload: %v, want a retried digest mismatch", err)
	}
}

// An upload read by direct get is deleted with the description the read returned, one read
// through the object store by its own: either way nothing of it is left, and other uploads stay.
func TestDeleteUploadAfterRead(t *testing.T) {
	js, top := uploadsServer(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("Quire deletes uploads. "), 400)
	for _, name := range []string{"direct", "through-get", "kept"} {
		if _, err := top.Uploads.PutBytes(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}
	for name, streams := range map[string]jetstream.JetStream{"direct": js, "through-get": nil} {
		p := upload.New(upload.Config{}, upload.Deps{Objects: top.Uploads, JetStream: streams})
		_, info, err := p.Read(ctx, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Delete(ctx, name, info); err != nil {
			t.Fatalf("%s: delete: %v", name, err)
		}
		if _, err := top.Uploads.GetInfo(ctx, name); !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Errorf("%s: after delete: %v, want ErrObjectNotFound", name, err)
		}
		// As ObjectStore.Delete, deleting again (a redelivered job) is not an error.
		if err := p.Delete(ctx, name, nil); err != nil {
			t.Errorf("%s: second delete: %v", name, err)
		}
	}
	si, err := js.Stream(ctx, upload.StreamName(job.UploadsBucket))
	if err != nil {
		t.Fatal(err)
	}
	info, err := si.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Left: the kept upload (chunk and description) and the two delete markers.
	if info.State.Msgs != 4 {
		t.Errorf("%d messages left in the uploads stream, want 4", info.State.Msgs)
	}
	if got, err := top.Uploads.GetBytes(ctx, "kept"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("kept upload: %d bytes, %v", len(got), err)
	}
}

// uploadsServer starts a JetStream server with Quire's streams and buckets.
func uploadsServer(t *testing.T) (jetstream.JetStream, *jobqueue.Topology) {
	t.Helper()
	q := quiretest.Queue(t, jobqueue.Config{})
	return q.JS, q.Top
}

// countingStreams counts the look-ups of streams.
type countingStreams struct {
	jetstream.JetStream
	n int
}

func (c *countingStreams) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	c.n++
	return c.JetStream.Stream(ctx, name)
}

// countingObjects counts the look-ups of object descriptions.
type countingObjects struct {
	jetstream.ObjectStore
	n atomic.Int32
}

func (c *countingObjects) GetInfo(ctx context.Context, name string, opts ...jetstream.GetObjectInfoOpt) (*jetstream.ObjectInfo, error) {
	c.n.Add(1)
	return c.ObjectStore.GetInfo(ctx, name, opts...)
}

// An upload the job describes is read without looking its description up; a description that
// does not match what is stored (another chunk, a deleted upload, altered bytes) is a hint
// only: the object store's own description decides.
func TestReadWithTheJobsDescription(t *testing.T) {
	js, top := uploadsServer(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("Quire reads what the job describes. "), 300)
	for _, name := range []string{"described", "gone", "altered"} {
		if _, err := top.Uploads.PutBytes(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}
	refOf := func(name string) *job.UploadRef {
		info, err := top.Uploads.GetInfo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return &job.UploadRef{NUID: info.NUID, Size: info.Size, Chunks: info.Chunks, Digest: info.Digest}
	}
	objects := &countingObjects{ObjectStore: top.Uploads}
	p := upload.New(upload.Config{}, upload.Deps{Objects: objects, JetStream: js})

	ref := refOf("described")
	got, info, err := p.Read(ctx, "described", ref)
	if err != nil || !bytes.Equal(got, data) || objects.n.Load() != 0 {
		t.Fatalf("described upload: %d bytes, %v, %d description look-ups; want its bytes and none", len(got), err, objects.n.Load())
	}
	if info.Name != "described" || info.NUID != ref.NUID {
		t.Fatalf("described upload: description %+v", info)
	}
	// What the read returned deletes it.
	if err := p.Delete(ctx, "described", info); err != nil {
		t.Fatal(err)
	}
	if _, err := top.Uploads.GetInfo(ctx, "described"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("after delete: %v, want ErrObjectNotFound", err)
	}

	// A description naming another chunk: the stored description is read.
	wrong := refOf("gone")
	wrong.NUID = "NOSUCHCHUNK"
	if got, _, err := p.Read(ctx, "gone", wrong); err != nil || !bytes.Equal(got, data) || objects.n.Load() != 1 {
		t.Fatalf("mismatched description: %d bytes, %v, %d look-ups; want the bytes after one", len(got), err, objects.n.Load())
	}
	// A deleted upload is gone, whatever the job says.
	goneRef := refOf("gone")
	if err := top.Uploads.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Read(ctx, "gone", goneRef); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("deleted upload: %v, want ErrObjectNotFound", err)
	}
	// Bytes that match neither description are refused (and retried).
	altered := refOf("altered")
	if _, err := js.Publish(ctx, upload.ChunkSubject(job.UploadsBucket, altered.NUID), bytes.ToUpper(data)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Read(ctx, "altered", altered); err == nil || errors.Is(err, jetstream.ErrObjectNotFound) || !errors.Is(err, jetstream.ErrDigestMismatch) {
		t.Fatalf("altered upload: %v, want a retried digest mismatch", err)
	}
}
