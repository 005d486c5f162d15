package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// chunkSize is the chunk size of jetstream.ObjectStore.Put (128 KiB).
const chunkSize = 128 << 10

// PutNew stores what r yields as upload meta.Name, which must be new (a fresh task id): unlike
// ObjectStore.Put it does not remove the chunks of an earlier object of that name. It writes in
// the layout ObjectStore.Put writes (chunk messages on [ChunkSubject], then the description on
// [MetaSubject]), so that ObjectStore.Get reads it back; an upload of one chunk is written
// without Put's costs: no look-up of an object of the same name, no JetStream context and reply
// subscription of its own, no 128 KiB buffer per upload, and both messages are acknowledged
// together. Without a JetStream in [Deps] every upload goes through ObjectStore.Put. It returns
// the object's info, its Digest the SHA-256 of the bytes (see DigestHex). Errors of r are
// returned as they are; if storing fails, what was stored is purged. Without a deadline on ctx
// it gives up after 10 seconds.
func (p *Store) PutNew(ctx context.Context, meta jetstream.ObjectMeta, r io.Reader) (*jetstream.ObjectInfo, error) {
	put, err := p.StartNew(ctx, meta, r)
	if err != nil {
		return nil, err
	}
	return put.Wait()
}

// Put is an upload whose messages were sent, its acknowledgements not yet awaited.
type Put struct {
	info *jetstream.ObjectInfo
	once sync.Once
	wait func() error
	err  error
}

// Info is the object's info as it will be stored (size, digest), known before Wait.
func (o *Put) Info() *jetstream.ObjectInfo { return o.info }

// Wait returns once the object is stored, or why it is not (then nothing of it is left). It
// may be called many times, from any goroutine.
func (o *Put) Wait() (*jetstream.ObjectInfo, error) {
	o.once.Do(func() {
		if o.wait != nil {
			o.err = o.wait()
		}
	})
	if o.err != nil {
		return nil, o.err
	}
	return o.info, nil
}

// StartNew is PutNew that returns once r is read and, for an object of one chunk, its messages
// are sent: Wait then awaits their acknowledgement, so the caller may do other work meanwhile.
// ctx bounds the wait too.
func (p *Store) StartNew(ctx context.Context, meta jetstream.ObjectMeta, r io.Reader) (*Put, error) {
	if meta.Name == "" {
		return nil, jetstream.ErrBadObjectMeta
	}
	if p.js == nil || meta.Opts != nil && (meta.Opts.Link != nil || (meta.Opts.ChunkSize != 0 && meta.Opts.ChunkSize != chunkSize)) {
		info, err := p.obs.Put(ctx, meta, r)
		if err != nil {
			return nil, err
		}
		return &Put{info: info}, nil
	}
	bp := p.bufs.Get().(*[]byte)
	buf := *bp
	n, err := io.ReadFull(r, buf)
	switch {
	case err == nil:
		// More than one chunk: Put streams the rest.
		info, err := p.obs.Put(ctx, meta, io.MultiReader(bytes.NewReader(buf[:n]), r))
		p.bufs.Put(bp)
		if err != nil {
			return nil, err
		}
		return &Put{info: info}, nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
	default:
		p.bufs.Put(bp)
		return nil, err
	}
	sum := sha256.Sum256(buf[:n])
	meta.Opts = &jetstream.ObjectMetaOptions{ChunkSize: chunkSize}
	info := &jetstream.ObjectInfo{
		ObjectMeta: meta, Bucket: p.bucket, NUID: nuid.Next(), Size: uint64(n),
		Digest: "SHA-256=" + base64.URLEncoding.EncodeToString(sum[:]), ModTime: time.Now().UTC(),
	}
	chunkSubj := ChunkSubject(p.bucket, info.NUID)
	metaSubj := MetaSubject(p.bucket, meta.Name)
	var acks []jetstream.PubAckFuture
	var sendErr error
	if n > 0 {
		info.Chunks = 1
		f, err := p.js.PublishMsgAsync(&nats.Msg{Subject: chunkSubj, Data: buf[:n]})
		if err != nil {
			p.bufs.Put(bp)
			return nil, fmt.Errorf("upload: put %s: %w", meta.Name, err)
		}
		acks = append(acks, f)
	}
	stored := *info
	stored.ModTime = time.Time{} // the description as Put publishes it
	desc, err := json.Marshal(&stored)
	if err == nil {
		m := &nats.Msg{Subject: metaSubj, Data: desc, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		var f jetstream.PubAckFuture
		if f, err = p.js.PublishMsgAsync(m); err == nil {
			acks = append(acks, f)
		}
	}
	sendErr = err
	wait := func() error {
		wctx := ctx
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
		}
		err := sendErr
		for _, f := range acks {
			select {
			case <-f.Ok():
			case ferr := <-f.Err():
				err = errors.Join(err, ferr)
			case <-wctx.Done():
				// A publish may still be retried from buf: it is not reused.
				p.purge(context.WithoutCancel(ctx), chunkSubj, metaSubj)
				return fmt.Errorf("upload: put %s: %w", meta.Name, wctx.Err())
			}
		}
		p.bufs.Put(bp)
		if err != nil {
			p.purge(context.WithoutCancel(ctx), chunkSubj, metaSubj)
			return fmt.Errorf("upload: put %s: %w", meta.Name, err)
		}
		return nil
	}
	return &Put{info: info, wait: wait}, nil
}

// purge removes what a failed put may have stored.
func (p *Store) purge(ctx context.Context, subjects ...string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := p.js.Stream(ctx, StreamName(p.bucket))
	if err != nil {
		return
	}
	for _, s := range subjects {
		_ = st.Purge(ctx, jetstream.WithPurgeSubject(s))
	}
}

// deleteByInfo deletes the upload info describes, stored in stream st, as ObjectStore.Delete
// does (a delete marker replaces its description, then its chunks are purged) but without
// looking its description up again: two requests instead of three.
func deleteByInfo(ctx context.Context, pub jetstream.Publisher, st jetstream.Stream, info *jetstream.ObjectInfo) error {
	if info.NUID == "" || info.Bucket == "" {
		return fmt.Errorf("upload: delete %s: %w", info.Name, jetstream.ErrBadObjectMeta)
	}
	marker := *info
	marker.Deleted = true
	marker.Size, marker.Chunks, marker.Digest, marker.ModTime = 0, 0, "", time.Time{}
	desc, err := json.Marshal(&marker)
	if err != nil {
		return fmt.Errorf("upload: delete %s: %w", info.Name, err)
	}
	m := &nats.Msg{Subject: MetaSubject(info.Bucket, info.Name), Data: desc, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	if _, err := pub.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("upload: delete %s: %w", info.Name, err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(ChunkSubject(info.Bucket, info.NUID))); err != nil {
		return fmt.Errorf("upload: delete %s: purge its chunks: %w", info.Name, err)
	}
	return nil
}

// DigestHex is the SHA-256 of an upload's bytes, in lower-case hex, from its info's Digest.
func DigestHex(info *jetstream.ObjectInfo) (string, error) {
	sum, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil || len(sum) != sha256.Size {
		return "", fmt.Errorf("upload: %s: malformed digest %q", info.Name, info.Digest)
	}
	return hex.EncodeToString(sum), nil
}
