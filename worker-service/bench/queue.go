package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
	"github.com/quirehq/quire/shared/logging"
	"github.com/quirehq/quire/shared/taskstatus"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// W1: no-op jobs, one producer publishing asynchronously, 8 jobs at once, ack after completion,
// a status stored per job. The raw side is what a JetStream user writes by hand (Consume with
// its default buffer, KV put, ack); the Quire side is the worker runtime with a no-op handler,
// fed the way the API feeds it (PENDING status, then the job).

const w1Concurrency = 8

// w1Only limits W1 to one side (raw, protocol, protocol-noread or quire), for profiling.
var w1Only string

type queueResult struct {
	rate float64 // jobs/s completed
	// drainRate is jobs/s of the consumers alone, started on n jobs queued beforehand (with
	// their statuses), from their start to the last ack; drainCPU is the CPU per job then.
	drainRate float64
	drainCPU  time.Duration
	p50, p99  time.Duration
	completed int
	cpuPerJob time.Duration // CPU of this process (server, producer, consumers) per job
}

// consumerSide starts the consumers of one side on srv and returns their stop func.
type consumerSide struct {
	name string
	// withStatus: the producer writes the PENDING status before the job, as the API does.
	withStatus bool
	// onlyOnRequest: the side runs only when -w1side names it.
	onlyOnRequest bool
	start         func(ctx context.Context, srv *natsServer) (stop func(), err error)
}

var rawSide = consumerSide{name: "raw", start: startRawConsumers}
var quireSide = consumerSide{name: "quire", withStatus: true, start: startQuireWorker}

// startRawConsumers is what a JetStream user writes by hand: a KV put of the final status,
// then an ack.
func startRawConsumers(ctx context.Context, srv *natsServer) (func(), error) {
	status, _ := json.Marshal(&job.Status{State: job.StateSuccess, Status: "completed", Current: 100, Total: 100,
		Queue: job.PriorityHigh, Kind: job.KindDocument, TenantID: "bench", AgentID: "agent-1", CreatedAt: time.Now(), UpdatedAt: time.Now()})
	return startHandWritten(ctx, srv, func(_ jetstream.JetStream, top *jobqueue.Topology, m jetstream.Msg) error {
		if _, err := top.Tasks.Put(ctx, m.Headers().Get(job.HeaderTaskID), status); err != nil {
			return err
		}
		return m.Ack()
	})
}

// startHandWritten runs a hand-written consumer side: Consume with its default buffer feeding
// w1Concurrency goroutines that settle each message; a message whose settle fails is naked.
func startHandWritten(ctx context.Context, srv *natsServer, settle func(jetstream.JetStream, *jobqueue.Topology, jetstream.Msg) error) (func(), error) {
	nc, js, top, err := srv.connect(ctx)
	if err != nil {
		return nil, err
	}
	cons, err := js.Consumer(ctx, job.PriorityHigh.Stream(), job.ConsumerName)
	if err != nil {
		nc.Close()
		return nil, err
	}
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range w1Concurrency {
		wg.Go(func() {
			for m := range msgs {
				if err := settle(js, top, m); err != nil {
					_ = m.Nak()
				}
			}
		})
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m })
	if err != nil {
		close(msgs)
		nc.Close()
		return nil, err
	}
	return func() {
		cc.Stop()
		<-cc.Closed()
		close(msgs)
		wg.Wait()
		nc.Close()
	}, nil
}

func startQuireWorker(ctx context.Context, srv *natsServer) (func(), error) {
	nc, js, top, err := srv.connect(ctx)
	if err != nil {
		return nil, err
	}
	// The service's own logger (JSON, info), writing nowhere: its cost is part of the runtime.
	log, _ := logging.New(io.Discard, "info", "worker-service")
	w := worker.New(worker.Config{Slots: map[job.Priority]int{job.PriorityHigh: w1Concurrency},
		ProgressInterval: worker.DefaultProgressInterval}, worker.Deps{
		JetStream: js, Statuses: taskstatus.New(top.Tasks, js, time.Hour), Logger: log,
		Handler: worker.HandlerFunc(func(context.Context, *job.Job) error { return nil }),
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	for !w.Ready() {
		select {
		case err := <-done:
			cancel()
			nc.Close()
			return nil, fmt.Errorf("worker: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return func() {
		cancel()
		<-done
		nc.Close()
	}, nil
}

// producer publishes W1 jobs asynchronously on its own connection.
type producer struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	withStatus bool
	run        string
	docBase    int64 // document ids are docBase+1, docBase+2, ...
}

func newProducer(srv *natsServer, withStatus bool, run string) (*producer, error) {
	nc, err := nats.Connect(srv.url())
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &producer{nc: nc, js: js, withStatus: withStatus, run: run}, nil
}

// publish enqueues job i and returns the future of the job message.
func (p *producer) publish(i int) (jetstream.PubAckFuture, error) {
	id := fmt.Sprintf("%s-%07d", p.run, i)
	j := &job.Job{TaskID: id, Kind: job.KindDocument, TenantID: "bench", AgentID: "agent-1", Priority: job.PriorityHigh,
		Object: id, Filename: "noop.txt", ContentType: "text/plain", DocumentID: p.docBase + int64(i) + 1, EnqueuedAt: time.Now().UTC()}
	if p.withStatus {
		st, _ := json.Marshal(&job.Status{TaskID: id, State: job.StatePending, Status: "queued", Total: 100, DocumentID: j.DocumentID,
			Queue: j.Priority, Kind: j.Kind, TenantID: j.TenantID, AgentID: j.AgentID, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()})
		// kv.Create, asynchronously: a put that expects no earlier revision.
		if _, err := p.js.PublishMsgAsync(&nats.Msg{Subject: "$KV." + job.TasksBucket + "." + id, Data: st},
			jetstream.WithExpectLastSequencePerSubject(0), jetstream.WithStallWait(time.Minute)); err != nil {
			return nil, err
		}
	}
	body, err := j.Encode()
	if err != nil {
		return nil, err
	}
	msg := &nats.Msg{Subject: j.Subject(), Data: body, Header: nats.Header{}}
	msg.Header.Set(job.HeaderTaskID, id)
	msg.Header.Set(job.HeaderTenantID, j.TenantID)
	// A slow consumer side makes the producer wait for acks rather than fail.
	return p.js.PublishMsgAsync(msg, jetstream.WithMsgID(id), jetstream.WithStallWait(time.Minute))
}

func (p *producer) complete(timeout time.Duration) error {
	select {
	case <-p.js.PublishAsyncComplete():
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("async publishes not acknowledged within %v", timeout)
	}
}

// runQueue measures one side on a fresh server: n jobs as fast as the producer goes
// (completed jobs/s, from the first publish to the last ack), then paced jobs at pace/s
// (enqueue→ack latency).
func runQueue(ctx context.Context, e *env, side consumerSide, n, paced int, pace float64) (queueResult, error) {
	var res queueResult
	srv, err := e.startNATS("w1-" + side.name)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	startSide, err := side.start(ctx, srv)
	if err != nil {
		return res, err
	}
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(startSide) }
	defer stop()

	// Throughput.
	mon, err := newAckMonitor(srv.url(), job.PriorityHigh.Stream(), n)
	if err != nil {
		return res, err
	}
	prod, err := newProducer(srv, side.withStatus, "tput")
	if err != nil {
		mon.close()
		return res, err
	}
	cpu0 := cpuTime()
	start := time.Now()
	for i := range n {
		if _, err := prod.publish(i); err != nil {
			return res, err
		}
	}
	if err := prod.complete(time.Minute); err != nil {
		return res, err
	}
	if err := mon.wait(2 * time.Minute); err != nil {
		return res, fmt.Errorf("%s throughput: %w", side.name, err)
	}
	res.rate = float64(n) / mon.last().Sub(start).Seconds()
	res.cpuPerJob = (cpuTime() - cpu0) / time.Duration(n)
	res.completed = n
	mon.close()
	prod.nc.Close()

	// Paced latency.
	mon, err = newAckMonitor(srv.url(), job.PriorityHigh.Stream(), paced)
	if err != nil {
		return res, err
	}
	defer mon.close()
	prod, err = newProducer(srv, side.withStatus, "paced")
	if err != nil {
		return res, err
	}
	defer prod.nc.Close()
	sent := make([]time.Time, paced)
	futs := make([]jetstream.PubAckFuture, paced)
	interval := time.Duration(float64(time.Second) / pace)
	t0 := time.Now()
	for i := range paced {
		time.Sleep(time.Until(t0.Add(time.Duration(i) * interval)))
		sent[i] = time.Now()
		if futs[i], err = prod.publish(i); err != nil {
			return res, err
		}
	}
	if err := prod.complete(time.Minute); err != nil {
		return res, err
	}
	if err := mon.wait(time.Minute); err != nil {
		return res, fmt.Errorf("%s paced: %w", side.name, err)
	}
	lat := make([]time.Duration, 0, paced)
	for i, f := range futs {
		select {
		case ack := <-f.Ok():
			if at, ok := mon.ackedAt(ack.Sequence); ok {
				lat = append(lat, at.Sub(sent[i]))
			}
		case err := <-f.Err():
			return res, err
		}
	}
	res.p50, res.p99 = percentile(lat, 50), percentile(lat, 99)

	// The consumers alone: stopped, n jobs queued, then started on that backlog.
	stop()
	prod, err = newProducer(srv, side.withStatus, "backlog")
	if err != nil {
		return res, err
	}
	defer prod.nc.Close()
	for i := range n {
		if _, err := prod.publish(i); err != nil {
			return res, err
		}
	}
	if err := prod.complete(time.Minute); err != nil {
		return res, err
	}
	dmon, err := newAckMonitor(srv.url(), job.PriorityHigh.Stream(), n)
	if err != nil {
		return res, err
	}
	defer dmon.close()
	cpu0 = cpuTime()
	start = time.Now()
	stopDrain, err := side.start(ctx, srv)
	if err != nil {
		return res, err
	}
	defer stopDrain()
	if err := dmon.wait(2 * time.Minute); err != nil {
		return res, fmt.Errorf("%s drain: %w", side.name, err)
	}
	res.drainRate = float64(n) / dmon.last().Sub(start).Seconds()
	res.drainCPU = (cpuTime() - cpu0) / time.Duration(n)
	return res, nil
}

// runW1 runs raw, raw with Quire's status protocol, and Quire in turn for rounds rounds and
// keeps each side's best round (highest rate; lowest p50 for latency), so a noisy neighbour
// hurts no side alone.
func runW1(ctx context.Context, e *env, n, paced, rounds int, logf func(string, ...any)) (raw, proto, quire queueResult, err error) {
	best := func(cur *queueResult, r queueResult) {
		if cur.completed == 0 {
			*cur = r
			return
		}
		if r.rate > cur.rate {
			cur.rate, cur.cpuPerJob = r.rate, r.cpuPerJob
		}
		if r.drainRate > cur.drainRate {
			cur.drainRate, cur.drainCPU = r.drainRate, r.drainCPU
		}
		if r.p50 < cur.p50 {
			cur.p50, cur.p99 = r.p50, r.p99
		}
	}
	for round := range rounds {
		for _, side := range []consumerSide{rawSide, protocolSide, protocolNoReadSide, quireSide} {
			if (w1Only != "" && side.name != w1Only) || (w1Only == "" && side.onlyOnRequest) {
				continue
			}
			r, err := runQueue(ctx, e, side, n, paced, 200)
			if err != nil {
				return raw, proto, quire, fmt.Errorf("W1 %s: %w", side.name, err)
			}
			logf("W1 round %d %-8s: %8.0f jobs/s (%3.0f µs CPU/job)   paced p50 %.2f ms p99 %.2f ms   consumers alone on the queued jobs %6.0f jobs/s (%3.0f µs CPU/job)",
				round+1, side.name, r.rate, float64(r.cpuPerJob)/1e3, ms(r.p50), ms(r.p99), r.drainRate, float64(r.drainCPU)/1e3)
			switch side.name {
			case rawSide.name:
				best(&raw, r)
			case protocolSide.name, protocolNoReadSide.name:
				best(&proto, r)
			default:
				best(&quire, r)
			}
		}
	}
	return raw, proto, quire, nil
}
