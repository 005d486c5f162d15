package natstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func createR3(t *testing.T, js jetstream.JetStream, name string) {
	t.Helper()
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: name, Subjects: []string{name + ".>"}, Replicas: 3, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatal(err)
	}
}

// publishUntilAcked publishes one message, retrying until the stream acknowledges it, and
// returns how long that took.
func publishUntilAcked(t *testing.T, js jetstream.JetStream, subject string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(clusterTimeout)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		_, err := js.Publish(ctx, subject, []byte("after"), jetstream.WithMsgID(subject))
		cancel()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish to %s not acknowledged within %v: %v", subject, clusterTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestClusterSurvivesTheCrashOfAStreamLeaderAndItsRestart(t *testing.T) {
	c := RunCluster(t, 3)
	if got := len(c.Servers()); got != 3 {
		t.Fatalf("Servers() = %d nodes, want 3", got)
	}
	if c.MetaLeader() < 0 {
		t.Fatal("no meta leader after RunCluster")
	}
	nc, js := c.Connect(t)
	createR3(t, js, "T")
	for i := range 10 {
		if _, err := js.Publish(t.Context(), fmt.Sprintf("T.%d", i), []byte("before")); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.WaitStreamLeader(t, "T")
	name, err := StreamLeaderName(t.Context(), js, "T")
	if err != nil || name != c.Name(leader) {
		t.Fatalf("stream info names leader %q (%v); the servers say %s", name, err, c.Name(leader))
	}

	c.Kill(leader)
	if c.Server(leader) != nil {
		t.Fatal("a killed node is still listed")
	}
	pause := publishUntilAcked(t, js, "T.after")
	next := c.WaitStreamLeader(t, "T")
	t.Logf("stream leader %s killed: next acknowledged publish after %v, new leader %s", c.Name(leader), pause, c.Name(next))
	if next == leader {
		t.Fatalf("the killed node n%d is still the leader", leader)
	}
	if n := streamMsgs(t, js, "T"); n != 11 {
		t.Fatalf("stream holds %d messages after the crash, want 11", n)
	}

	// Back on its ports and store: it catches up and can lead with every message.
	s := c.Restart(t, leader)
	if !s.Running() || c.Server(leader) != s {
		t.Fatal("restarted node not running")
	}
	c.MoveStreamLeader(t, nc, "T", leader)
	if n := streamMsgs(t, js, "T"); n != 11 {
		t.Fatalf("the restarted node leads a stream of %d messages, want 11", n)
	}

	// An orderly stop hands the leadership over.
	c.Stop(leader)
	pause = publishUntilAcked(t, js, "T.stopped")
	t.Logf("stream leader %s stopped: next acknowledged publish after %v", c.Name(leader), pause)
	if n := streamMsgs(t, js, "T"); n != 12 {
		t.Fatalf("stream holds %d messages after the stop, want 12", n)
	}
}

// Every route passes through the relays: a node cut off them, though still running, is
// replaced as leader by its peers.
func TestCutNodeIsReplacedByItsPeers(t *testing.T) {
	c := RunCluster(t, 3)
	nc, js := c.Connect(t)
	createR3(t, js, "C")
	if _, err := js.CreateConsumer(t.Context(), "C", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitStreamLeader(t, "C")
	c.MoveConsumerLeader(t, nc, "C", "w", leader)
	if got := c.ConsumerLeader("C", "w"); got != leader {
		t.Fatalf("consumer leader n%d, want n%d", got, leader)
	}

	c.cut(leader)
	deadline := time.Now().Add(clusterTimeout)
	for {
		others := -1
		for i, s := range c.Servers() {
			if i != leader && s.JetStreamIsStreamLeader(account, "C") {
				others = i
			}
		}
		if others >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no peer of the cut node n%d took over stream C within %v", leader, clusterTimeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
	c.Restart(t, leader)
	if up := len(c.Servers()); up != 3 || c.MetaLeader() < 0 {
		t.Fatalf("cluster not whole after the restart")
	}
}
