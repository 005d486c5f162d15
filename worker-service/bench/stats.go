package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// percentile returns the p-th percentile (0..100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ackMonitor watches the acknowledgements of a job stream on the wire (a plain subscription
// to $JS.ACK.<stream>.>) and records when each stream sequence was acknowledged. It measures
// Quire and raw JetStream the same way, without touching either consumer.
type ackMonitor struct {
	nc   *nats.Conn
	sub  *nats.Subscription
	mu   sync.Mutex
	at   map[uint64]time.Time
	want int
	done chan struct{}
}

func newAckMonitor(url, stream string, want int) (*ackMonitor, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	m := &ackMonitor{nc: nc, at: make(map[uint64]time.Time, want), want: want, done: make(chan struct{})}
	m.sub, err = nc.Subscribe("$JS.ACK."+stream+".>", m.onAck)
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = m.sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	return m, nil
}

func (m *ackMonitor) onAck(msg *nats.Msg) {
	now := time.Now()
	if !strings.HasPrefix(string(msg.Data), "+ACK") {
		return
	}
	seq, ok := ackStreamSeq(msg.Subject)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.at[seq]; dup {
		return
	}
	m.at[seq] = now
	if len(m.at) == m.want {
		close(m.done)
	}
}

// ackStreamSeq parses the stream sequence from an ack subject, in either of the two formats
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> and
// $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>.<token>.
func ackStreamSeq(subject string) (uint64, bool) {
	t := strings.Split(subject, ".")
	i := 5
	if len(t) >= 12 {
		i = 7
	} else if len(t) != 9 {
		return 0, false
	}
	n, err := strconv.ParseUint(t[i], 10, 64)
	return n, err == nil
}

// wait blocks until every wanted ack was seen, or timeout.
func (m *ackMonitor) wait(timeout time.Duration) error {
	select {
	case <-m.done:
		return nil
	case <-time.After(timeout):
		m.mu.Lock()
		defer m.mu.Unlock()
		return fmt.Errorf("saw %d of %d acks within %v", len(m.at), m.want, timeout)
	}
}

func (m *ackMonitor) last() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var t time.Time
	for _, at := range m.at {
		if at.After(t) {
			t = at
		}
	}
	return t
}

func (m *ackMonitor) ackedAt(seq uint64) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.at[seq]
	return t, ok
}

func (m *ackMonitor) close() {
	_ = m.sub.Unsubscribe()
	m.nc.Close()
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// span is the time of the first and the last acknowledgement seen.
func (m *ackMonitor) span() (first, last time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, at := range m.at {
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	return first, last
}
