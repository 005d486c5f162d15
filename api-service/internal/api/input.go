package api

import (
	"errors"
	"io"
	"regexp"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// taskIDPattern is what a task id can be: a TASKS key (UUIDs in practice). Anything else cannot
// name a task, and is answered 404 without reaching NATS or PostgreSQL (where a NUL or invalid
// UTF-8 would be a server error rather than a miss).
var taskIDPattern = regexp.MustCompile(`^[A-Za-z0-9_=.-]{1,255}$`)

func validTaskID(id string) bool { return taskIDPattern.MatchString(id) }

// errInvalidUTF8 is returned by a utf8Reader for a body that is not UTF-8.
var errInvalidUTF8 = errors.New("request body is not valid UTF-8")

// utf8Reader passes r through, failing with errInvalidUTF8 at the first byte sequence that is
// not UTF-8. encoding/json silently turns invalid UTF-8 in strings into U+FFFD; JSON bodies
// read through a utf8Reader are refused instead (RFC 8259 §8.1). It keeps at most 3 bytes of a
// sequence split across reads, so it streams.
type utf8Reader struct {
	r       io.Reader
	pending []byte // the start of a sequence that the previous read split
}

func newUTF8Reader(r io.Reader) *utf8Reader { return &utf8Reader{r: r} }

func (u *utf8Reader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	// Check pending+p[:n] without copying p: first complete the pending sequence.
	b := p[:n]
	if len(u.pending) > 0 && n > 0 {
		need := utf8Need(u.pending[0]) - len(u.pending)
		take := min(need, len(b))
		seq := append(u.pending, b[:take]...)
		if len(seq) < utf8Need(seq[0]) {
			u.pending = seq
			return n, err
		}
		if !utf8.Valid(seq) {
			return 0, errInvalidUTF8
		}
		u.pending = u.pending[:0]
		b = b[take:]
	}
	if len(b) > 0 {
		// Keep an incomplete sequence at the end for the next read.
		tail := incompleteTail(b)
		if !utf8.Valid(b[:len(b)-tail]) {
			return 0, errInvalidUTF8
		}
		u.pending = append(u.pending[:0], b[len(b)-tail:]...)
	}
	if errors.Is(err, io.EOF) && len(u.pending) > 0 {
		return 0, errInvalidUTF8
	}
	return n, err
}

// utf8Need is the length of the sequence that starts with byte c (1 for anything invalid,
// which utf8.Valid then rejects).
func utf8Need(c byte) int {
	switch {
	case c&0xE0 == 0xC0:
		return 2
	case c&0xF0 == 0xE0:
		return 3
	case c&0xF8 == 0xF0:
		return 4
	}
	return 1
}

// incompleteTail is how many bytes at the end of b start a multi-byte sequence that b cuts off.
func incompleteTail(b []byte) int {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c&0xC0 != 0x80 { // a lead byte (or ASCII)
			if need := utf8Need(c); need > i {
				return i
			}
			return 0
		}
	}
	return 0
}

// checkParams answers 404 for a task_id path parameter that cannot name a task, before any
// handler looks it up. It runs after authentication, so a caller without a token still gets 401.
func (s *Server) checkParams() gin.HandlerFunc {
	return func(c *gin.Context) {
		if id, ok := c.Params.Get("task_id"); ok && !validTaskID(id) {
			s.fail(c, errNotFound("task not found"))
			return
		}
		c.Next()
	}
}
