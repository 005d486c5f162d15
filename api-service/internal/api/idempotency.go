package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"
)

// idempotencyRecord is what the IDEMPOTENCY bucket keeps for a key.
type idempotencyRecord struct {
	Done        bool   `json:"done"`
	Status      int    `json:"status,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// idempotent honours the Idempotency-Key header of a POST: the first response (any status
// below 500 but 429) is stored for jobqueue.IdempotencyTTL and replayed for every repeat of the key by
// the same tenant on the same route, with header Idempotent-Replayed: true, and nothing is
// done again. A repeat that arrives while the first is still running gets 409. A 5xx answer is
// not stored, so the client may retry with the same key; nor is a 429 (a quota reached), which
// the same request may pass once the quota is raised.
func (s *Server) idempotent() gin.HandlerFunc {
	return func(c *gin.Context) {
		key := c.GetHeader("Idempotency-Key")
		if key == "" || s.idem == nil {
			c.Next()
			return
		}
		if len(key) > 255 {
			s.fail(c, errBadRequest("Idempotency-Key is longer than 255 characters"))
			return
		}
		ctx := c.Request.Context()
		sum := sha256.Sum256([]byte(tenantOf(c) + "\x00" + c.Request.Method + " " + c.FullPath() + "\x00" + c.Request.URL.Path + "\x00" + key))
		kvKey := hex.EncodeToString(sum[:])
		pending, _ := json.Marshal(idempotencyRecord{})
		if _, err := s.idem.Create(ctx, kvKey, pending); err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				s.log.Error("idempotency: create", "err", err)
				s.fail(c, errUnavailable)
				return
			}
			s.replay(c, kvKey)
			return
		}
		rec := &recorder{ResponseWriter: c.Writer}
		c.Writer = rec
		c.Next()
		if rec.Status() >= 500 || rec.Status() == http.StatusTooManyRequests {
			_ = s.idem.Delete(ctx, kvKey)
			return
		}
		done, _ := json.Marshal(idempotencyRecord{Done: true, Status: rec.Status(), ContentType: rec.Header().Get("Content-Type"), Body: rec.body.Bytes()})
		if _, err := s.idem.Put(ctx, kvKey, done); err != nil {
			s.log.Warn("idempotency: store response", "err", err)
		}
	}
}

func (s *Server) replay(c *gin.Context, kvKey string) {
	e, err := s.idem.Get(c.Request.Context(), kvKey)
	if err != nil {
		s.fail(c, errUnavailable)
		return
	}
	var rec idempotencyRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil || !rec.Done {
		s.fail(c, errConflict("a request with this Idempotency-Key is still being processed"))
		return
	}
	c.Header("Idempotent-Replayed", "true")
	c.Data(rec.Status, rec.ContentType, rec.Body)
	c.Abort()
}

// recorder keeps a copy of the response body.
type recorder struct {
	gin.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) WriteString(s string) (int, error) {
	r.body.WriteString(s)
	return r.ResponseWriter.WriteString(s)
}
