package webfetch

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// newLocalFetcher returns a Fetcher allowed to reach the loopback httptest servers.
func newLocalFetcher(t *testing.T, cfg Config) *Fetcher {
	t.Helper()
	cfg.AllowPrivate = true
	f := New(cfg)
	t.Cleanup(f.CloseIdleConnections)
	return f
}

// countingServer is an httptest server that counts the requests it receives.
type countingServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// addrPort is the server's listening address.
func (s *countingServer) addrPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// fakeDNS is an in-memory DNS server for a net.Resolver: no packet leaves the process. Each
// name answers with its list of addresses in turn (the last one repeats), which lets a test
// rebind a name between two lookups.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr // by lower-case FQDN
	asked   map[string]int
}

func newFakeDNS(answers map[string][]netip.Addr) *fakeDNS {
	return &fakeDNS{answers: answers, asked: map[string]int{}}
}

// resolver returns a pure-Go resolver whose every connection is served by d over a pipe.
func (d *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			client, server := net.Pipe()
			go d.serve(server)
			return client, nil
		},
	}
}

// serve answers length-prefixed (TCP-style) queries until the client closes the pipe.
func (d *fakeDNS) serve(c net.Conn) {
	defer func() { _ = c.Close() }()
	for {
		var n uint16
		if err := binary.Read(c, binary.BigEndian, &n); err != nil {
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		resp, err := d.answer(buf)
		if err != nil {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

func (d *fakeDNS) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	name := strings.ToLower(q.Name.String())
	d.mu.Lock()
	list := d.answers[name]
	var addr netip.Addr
	if len(list) > 0 {
		if q.Type == dnsmessage.TypeA {
			// Count one lookup per A query (each dial asks A and AAAA).
			addr = list[min(d.asked[name], len(list)-1)]
			d.asked[name]++
		} else {
			addr = list[min(max(d.asked[name]-1, 0), len(list)-1)]
		}
	}
	d.mu.Unlock()

	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
		RCode: dnsmessage.RCodeSuccess})
	if len(list) == 0 {
		b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RCode: dnsmessage.RCodeNameError})
	}
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
	switch {
	case !addr.IsValid():
	case q.Type == dnsmessage.TypeA && addr.Is4():
		if err := b.AResource(rh, dnsmessage.AResource{A: addr.As4()}); err != nil {
			return nil, err
		}
	case q.Type == dnsmessage.TypeAAAA && addr.Is6():
		if err := b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: addr.As16()}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
