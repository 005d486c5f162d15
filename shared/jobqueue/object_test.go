package jobqueue_test

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
)

// An object written by PutNew reads back through the object store like one written by Put:
// same bytes, size, chunk count and digest, for one chunk, none, and more than one.
func TestPutNewReadsBackThroughTheObjectStore(t *testing.T) {
	s := natstest.Run(t)
	_, js := natstest.Connect(t, s)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := jobqueue.NewObjectPutter(js, top.Uploads, job.UploadsBucket)
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
		if got, err := jobqueue.DigestHex(info); err != nil || got != hex.EncodeToString(want[:]) || info.Size != uint64(size) {
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
	s := natstest.Run(t)
	_, js := natstest.Connect(t, s)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := jobqueue.NewObjectPutter(js, top.Uploads, job.UploadsBucket)
	boom := errors.New("client went away")
	if _, err := p.PutNew(t.Context(), jetstream.ObjectMeta{Name: "broken"}, io.MultiReader(bytes.NewReader([]byte("abc")), failingReader{boom})); !errors.Is(err, boom) {
		t.Fatalf("PutNew = %v, want the reader's error", err)
	}
	if _, err := top.Uploads.GetInfo(t.Context(), "broken"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("GetInfo after a failed put = %v, want not found", err)
	}
}

func TestStartNewKnowsTheDigestBeforeTheAcknowledgement(t *testing.T) {
	s := natstest.Run(t)
	_, js := natstest.Connect(t, s)
	top, err := jobqueue.Ensure(t.Context(), js, jobqueue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := jobqueue.NewObjectPutter(js, top.Uploads, job.UploadsBucket)
	data := []byte("hello quire\n")
	put, err := p.StartNew(t.Context(), jetstream.ObjectMeta{Name: "started"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if got, err := jobqueue.DigestHex(put.Info()); err != nil || got != hex.EncodeToString(want[:]) {
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
