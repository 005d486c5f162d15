package upload_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/natstest"
	"github.com/quirehq/quire/shared/upload"
)

// An object written by PutNew reads back through the object store like one written by Put:
// same bytes, size, chunk count and digest, for one chunk, none, and more than one.
func TestPutNewReadsBackThroughTheObjectStore(t *testing.T) {
	_, top, p := putterEnv(t)
	for _, size := range []int{0, 1, 10 << 10, 128 << 10, 128<<10 + 1, 300 << 10} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + size)
		}
		name := fmt.Sprintf("object-%d", size)
		info, err := p.PutNew(t.Context(), jetstream.ObjectMeta{Name: name, Description: "a.txt"}, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("PutNew %d bytes: %v", size, err)
		}
		want := sha256.Sum256(data)
		if got, err := upload.DigestHex(info); err != nil || got != hex.EncodeToString(want[:]) || info.Size != uint64(size) {
			t.Fatalf("%d bytes: info %+v, digest %s, %v", size, info, got, err)
		}
		stored, err := top.Uploads.GetInfo(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Size != uint64(size) || stored.Digest != info.Digest || stored.Chunks != info.Chunks || stored.NUID != info.NUID || stored.Description != "a.txt" {
			t.Fatalf("%d bytes: stored %+v, returned %+v", size, stored, info)
		}
		got, err := top.Uploads.GetBytes(t.Context(), name)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read back %d bytes, %v", size, len(got), err)
		}
		if err := top.Uploads.Delete(t.Context(), name); err != nil {
			t.Fatal(err)
		}
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestPutNewReturnsTheReadersErrorAndStoresNothing(t *testing.T) {
	_, top, p := putterEnv(t)
	boom := errors.New("client went away")
	if _, err := p.PutNew(t.Context(), jetstream.ObjectMeta{Name: "broken"}, io.MultiReader(bytes.NewReader([]byte("abc")), failingReader{boom})); !errors.Is(err, boom) {
		t.Fatalf("PutNew = %v, want the reader's error", err)
	}
	if _, err := top.Uploads.GetInfo(t.Context(), "broken"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("GetInfo after a failed put = %v, want not found", err)
	}
}

func TestStartNewKnowsTheDigestBeforeTheAcknowledgement(t *testing.T) {
	_, top, p := putterEnv(t)
	data := []byte("hello quire\n")
	put, err := p.StartNew(t.Context(), jetstream.ObjectMeta{Name: "started"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if got, err := upload.DigestHex(put.Info()); err != nil || got != hex.EncodeToString(want[:]) {
		t.Fatalf("digest before Wait = %s, %v", got, err)
	}
	for range 2 {
		if info, err := put.Wait(); err != nil || info.Size != uint64(len(data)) {
			t.Fatalf("Wait = %+v, %v", info, err)
		}
	}
	if got, err := top.Uploads.GetBytes(t.Context(), "started"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %q, %v", got, err)
	}
}

// Delete with the upload's description leaves the object store as ObjectStore.Delete does: Get and GetInfo answer
// ErrObjectNotFound, the description is a delete marker, and no chunk is left in the stream.
func TestDeleteByDescriptionDeletesAsTheObjectStoreDoes(t *testing.T) {
	js, top, p := putterEnv(t)
	st, err := js.Stream(t.Context(), upload.StreamName(job.UploadsBucket))
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{10 << 10, 300 << 10} {
		name := fmt.Sprintf("doomed-%d", size)
		if _, err := p.PutNew(t.Context(), jetstream.ObjectMeta{Name: name}, bytes.NewReader(make([]byte, size))); err != nil {
			t.Fatal(err)
		}
		// A neighbour that must survive.
		if _, err := top.Uploads.PutBytes(t.Context(), name+"-kept", []byte("kept")); err != nil {
			t.Fatal(err)
		}
		info, err := top.Uploads.GetInfo(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Delete(t.Context(), name, info); err != nil {
			t.Fatalf("Delete %d bytes: %v", size, err)
		}
		if _, err := top.Uploads.GetBytes(t.Context(), name); !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Errorf("%d bytes: Get after delete: %v, want ErrObjectNotFound", size, err)
		}
		marker, err := top.Uploads.GetInfo(t.Context(), name, jetstream.GetObjectInfoShowDeleted())
		if err != nil || !marker.Deleted || marker.Size != 0 || marker.Chunks != 0 || marker.NUID != info.NUID {
			t.Errorf("%d bytes: description after delete %+v, %v; want a delete marker", size, marker, err)
		}
		si, err := st.Info(t.Context(), jetstream.WithSubjectFilter(upload.ChunkSubject(job.UploadsBucket, info.NUID)))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(si.State.Subjects); n != 0 {
			t.Errorf("%d bytes: %d chunk subjects left after delete: %v", size, n, si.State.Subjects)
		}
		if got, err := top.Uploads.GetBytes(t.Context(), name+"-kept"); err != nil || string(got) != "kept" {
			t.Errorf("neighbour after delete: %q, %v", got, err)
		}
	}
	if err := p.Delete(t.Context(), "x", &jetstream.ObjectInfo{ObjectMeta: jetstream.ObjectMeta{Name: "x"}}); !errors.Is(err, jetstream.ErrBadObjectMeta) {
		t.Errorf("Delete with a description without a NUID: %v, want ErrBadObjectMeta", err)
	}
}

// putterEnv starts a JetStream server with Quire's topology and returns a Store for its
// uploads bucket.
func putterEnv(t *testing.T) (jetstream.JetStream, *jobqueue.Topology, *upload.Store) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Run(t))
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return js, top, upload.New(upload.Config{}, upload.Deps{Objects: top.Uploads, JetStream: js})
}
