package natstest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// account is the account JetStream assets live in on a server without accounts.
const account = server.DEFAULT_GLOBAL_ACCOUNT

// clusterTimeout bounds every wait of a Cluster (formation, leader election, rejoining).
const clusterTimeout = 30 * time.Second

// Cluster is an in-process JetStream cluster whose nodes can be stopped, killed and
// restarted on the same ports and store directories.
//
// Every route between two nodes passes through a TCP relay owned by the Cluster, one per
// ordered pair of nodes, so that [Cluster.Kill] can cut a node off its peers before it shuts
// down: the peers then see a crashed node (no leadership hand-over, an election after the
// Raft election timeout), as with kill -9 or a lost machine. Clients connect to the nodes
// directly.
type Cluster struct {
	name string
	opts []*server.Options // per node; each start uses a clone

	mu      sync.Mutex
	servers []*server.Server // nil while a node is down
	relays  map[[2]int]*relay
}

// RunCluster starts an n-node JetStream cluster (nodes named n0, n1, …, each with its own
// store directory under t.TempDir()) and waits until every node is ready for clients, has
// its routes, and agrees on a JetStream meta leader. Every node shuts down when t ends.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 2 {
		t.Fatalf("natstest: a cluster needs at least 2 nodes, got %d", n)
	}
	c := &Cluster{name: "quire-test", relays: map[[2]int]*relay{}}
	base := t.TempDir()
	clusterPorts := make([]int, n)
	for i := range n {
		clusterPorts[i] = freePort(t)
	}
	for i := range n {
		var routes []*url.URL
		for j := range n {
			if j == i {
				continue
			}
			r, err := listenRelay(fmt.Sprintf("127.0.0.1:%d", clusterPorts[j]))
			if err != nil {
				t.Fatalf("natstest: route relay n%d→n%d: %v", i, j, err)
			}
			c.relays[[2]int{i, j}] = r
			routes = append(routes, &url.URL{Scheme: "nats-route", Host: r.addr})
		}
		c.opts = append(c.opts, &server.Options{
			ServerName: "n" + strconv.Itoa(i),
			Host:       "127.0.0.1",
			Port:       freePort(t),
			JetStream:  true,
			StoreDir:   filepath.Join(base, "n"+strconv.Itoa(i)),
			Cluster: server.ClusterOpts{
				Name: c.name,
				Host: "127.0.0.1",
				Port: clusterPorts[i],
				// Peers learn each other only from the configured routes (the relays): an
				// address gossiped to them must not open a route around a relay.
				Advertise: "127.0.0.1:1",
			},
			Routes: routes,
			NoLog:  true,
			NoSigs: true,
		})
	}
	c.servers = make([]*server.Server, n)
	for i := range n {
		c.servers[i] = c.startNode(t, i)
	}
	t.Cleanup(func() {
		for i := range n {
			c.Stop(i)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range c.relays {
			r.close()
		}
	})
	c.WaitReady(t)
	return c
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: pick a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) startNode(t testing.TB, i int) *server.Server {
	t.Helper()
	s, err := server.NewServer(c.opts[i].Clone())
	if err != nil {
		t.Fatalf("natstest: new server n%d: %v", i, err)
	}
	s.Start()
	if !s.ReadyForConnections(clusterTimeout) {
		t.Fatalf("natstest: server n%d not ready", i)
	}
	return s
}

// Servers returns the nodes in order; a node that is down is nil.
func (c *Cluster) Servers() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*server.Server(nil), c.servers...)
}

// Server returns node i (nil while it is down).
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// Name returns the server name of node i ("n<i>"), as JetStream reports it in a stream's
// cluster information.
func (c *Cluster) Name(i int) string { return c.opts[i].ServerName }

// Index returns the node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	return -1
}

// URL returns every node's client URL, comma-separated, as NATS_URL and nats.Connect
// accept them.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = fmt.Sprintf("nats://%s:%d", o.Host, o.Port)
	}
	return strings.Join(urls, ",")
}

// Connect connects to the cluster (any node, reconnecting to another when one goes) and
// returns the connection and its JetStream context; the connection closes when t ends.
func (c *Cluster) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("natstest: connect to cluster: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// Stop shuts node i down the way an operator's orderly stop does: the server first hands
// the leadership of its Raft groups to a peer. Stopping a stopped node does nothing.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Kill takes node i down as a crash does: its routes are cut first, so its peers hear
// nothing more from it (no leadership hand-over) and must elect new leaders after their
// election timeout, then the server is shut down, which closes its client connections.
// Killing a stopped node does nothing.
func (c *Cluster) Kill(i int) {
	c.cut(i)
	c.Stop(i)
}

// cut closes every route relay to and from node i, leaving it running but alone.
func (c *Cluster) cut(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for pair, r := range c.relays {
		if pair[0] == i || pair[1] == i {
			r.close()
		}
	}
}

// Restart starts node i again (stopping it first if it is up) with the same name, ports,
// routes and store directory, and waits until the cluster is whole again: every node up
// to date with the meta leader.
func (c *Cluster) Restart(t testing.TB, i int) *server.Server {
	t.Helper()
	c.Stop(i)
	c.mu.Lock()
	for pair, r := range c.relays {
		if pair[0] == i || pair[1] == i {
			if err := r.reopen(); err != nil {
				c.mu.Unlock()
				t.Fatalf("natstest: reopen route relay n%d→n%d: %v", pair[0], pair[1], err)
			}
		}
	}
	c.mu.Unlock()
	s := c.startNode(t, i)
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
	c.WaitReady(t)
	return s
}

// WaitReady waits until every running node has all its routes, a JetStream meta leader is
// elected among the nodes, and every running node is current with it.
func (c *Cluster) WaitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for {
		ready, why := c.ready()
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: cluster not ready after %v: %s", clusterTimeout, why)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (c *Cluster) ready() (bool, string) {
	servers := c.Servers()
	up := 0
	for _, s := range servers {
		if s != nil {
			up++
		}
	}
	leader := -1
	for i, s := range servers {
		if s == nil {
			continue
		}
		if s.NumRoutes() < up-1 {
			return false, fmt.Sprintf("n%d has %d routes, want %d", i, s.NumRoutes(), up-1)
		}
		if s.JetStreamIsLeader() {
			leader = i
		}
	}
	if leader < 0 {
		return false, "no JetStream meta leader"
	}
	if peers := len(servers[leader].JetStreamClusterPeers()); peers < up {
		return false, fmt.Sprintf("meta leader n%d sees %d peers, want %d", leader, peers, up)
	}
	for i, s := range servers {
		if s != nil && !s.JetStreamIsCurrent() {
			return false, fmt.Sprintf("n%d is not current with the meta leader", i)
		}
	}
	return true, ""
}

// MetaLeader returns the index of the JetStream meta leader, or -1 if none is elected.
func (c *Cluster) MetaLeader() int {
	for i, s := range c.Servers() {
		if s != nil && s.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// StreamLeader returns the index of the node leading stream, or -1 if it has no leader.
// A key-value bucket B is stream KV_B, an object store B is OBJ_B.
func (c *Cluster) StreamLeader(stream string) int {
	for i, s := range c.Servers() {
		if s != nil && s.JetStreamIsStreamLeader(account, stream) {
			return i
		}
	}
	return -1
}

// ConsumerLeader returns the index of the node leading the consumer on stream, or -1.
func (c *Cluster) ConsumerLeader(stream, consumer string) int {
	for i, s := range c.Servers() {
		if s != nil && s.JetStreamIsConsumerLeader(account, stream, consumer) {
			return i
		}
	}
	return -1
}

// WaitStreamLeader waits until stream has a leader and returns its index.
func (c *Cluster) WaitStreamLeader(t testing.TB, stream string) int {
	t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for {
		if i := c.StreamLeader(stream); i >= 0 {
			return i
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: stream %s has no leader after %v", stream, clusterTimeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// MoveStreamLeader makes node i the leader of stream (a leader step-down with i as the
// preferred successor) and waits until it is; nothing happens if i already leads it.
func (c *Cluster) MoveStreamLeader(t testing.TB, nc *nats.Conn, stream string, i int) {
	t.Helper()
	c.moveLeader(t, nc, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, i, func() int { return c.StreamLeader(stream) })
}

// MoveConsumerLeader makes node i the leader of the consumer on stream and waits until it is.
func (c *Cluster) MoveConsumerLeader(t testing.TB, nc *nats.Conn, stream, consumer string, i int) {
	t.Helper()
	c.moveLeader(t, nc, "$JS.API.CONSUMER.LEADER.STEPDOWN."+stream+"."+consumer, i,
		func() int { return c.ConsumerLeader(stream, consumer) })
}

func (c *Cluster) moveLeader(t testing.TB, nc *nats.Conn, subject string, i int, leader func() int) {
	t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for leader() != i {
		if time.Now().After(deadline) {
			t.Fatalf("natstest: %s: n%d did not become leader within %v (leader n%d)", subject, i, clusterTimeout, leader())
		}
		if leader() < 0 { // an election is under way
			time.Sleep(50 * time.Millisecond)
			continue
		}
		req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": c.Name(i)}})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := nc.RequestWithContext(ctx, subject, req)
		cancel()
		if err == nil {
			var r struct {
				Error *struct {
					Description string `json:"description"`
				} `json:"error"`
			}
			if json.Unmarshal(resp.Data, &r) == nil && r.Error != nil && !strings.Contains(r.Error.Description, "already leader") {
				t.Logf("natstest: %s to n%d: %s", subject, i, r.Error.Description)
			}
		}
		for wait := time.Now().Add(2 * time.Second); time.Now().Before(wait) && leader() != i; {
			time.Sleep(25 * time.Millisecond)
		}
	}
}

// relay forwards TCP connections from its own address to a target, and can cut every
// connection it carries at once.
type relay struct {
	addr   string // where it listens (fixed across reopen)
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func listenRelay(target string) (*relay, error) {
	r := &relay{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	return r, nil
}

func (r *relay) serve(ln net.Listener) {
	r.mu.Lock()
	r.ln, r.conns = ln, map[net.Conn]struct{}{}
	r.mu.Unlock()
	r.wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Go(func() { r.pipe(in) })
		}
	})
}

// reopen listens again on the relay's address after close.
func (r *relay) reopen() error {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		return err
	}
	r.serve(ln)
	return nil
}

func (r *relay) track(cs ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln == nil {
		return false
	}
	for _, c := range cs {
		r.conns[c] = struct{}{}
	}
	return true
}

func (r *relay) pipe(in net.Conn) {
	out, err := net.DialTimeout("tcp", r.target, 2*time.Second)
	if err != nil {
		in.Close()
		return
	}
	if !r.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	var wg sync.WaitGroup
	copyThenClose := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	wg.Go(func() { copyThenClose(out, in) })
	wg.Go(func() { copyThenClose(in, out) })
	wg.Wait()
	r.mu.Lock()
	delete(r.conns, in)
	delete(r.conns, out)
	r.mu.Unlock()
}

// close stops accepting and resets every connection the relay carries, as a dead machine
// or a cut cable would.
func (r *relay) close() {
	r.mu.Lock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for c := range r.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
	r.conns = map[net.Conn]struct{}{}
	r.mu.Unlock()
	r.wg.Wait()
}

// StreamLeaderName asks the cluster (through js) which server leads stream, as the nats
// CLI's stream info shows it.
func StreamLeaderName(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("natstest: stream %s has no leader", stream)
	}
	return info.Cluster.Leader, nil
}
