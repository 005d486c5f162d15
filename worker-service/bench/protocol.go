package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/shared/jobqueue"
)

// protocolSide is raw JetStream written by hand to keep Quire's task-status contract and
// nothing more: the producer creates the PENDING status before the job (as the API does), and
// each consumer reads the status (a cancelled task must not run), then writes SUCCESS with a
// compare-and-set on the revision it read and the result TTL, then acks. It consumes with Consume's default
// buffer, has no heartbeats, retries, timeouts, cancellation of running jobs or logs. It
// separates what the contract costs from what the runtime costs.
var protocolSide = consumerSide{name: "protocol", withStatus: true, start: func(ctx context.Context, srv *natsServer) (func(), error) {
	return startProtocolConsumers(ctx, srv, true)
}}

// protocolNoReadSide is protocolSide without the status read: it writes SUCCESS (with the
// result TTL) without knowing whether the task was cancelled while queued, which Quire's
// contract forbids. It runs only when asked for (-w1side protocol-noread), to price the read.
var protocolNoReadSide = consumerSide{name: "protocol-noread", withStatus: true, onlyOnRequest: true,
	start: func(ctx context.Context, srv *natsServer) (func(), error) {
		return startProtocolConsumers(ctx, srv, false)
	}}

func startProtocolConsumers(ctx context.Context, srv *natsServer, read bool) (func(), error) {
	return startHandWritten(ctx, srv, func(js jetstream.JetStream, top *jobqueue.Topology, m jetstream.Msg) error {
		id := m.Headers().Get(job.HeaderTaskID)
		st := job.Status{TaskID: id, State: job.StatePending, Queue: job.PriorityHigh, Kind: job.KindDocument}
		var opts []jetstream.PublishOpt
		if read {
			e, err := top.Tasks.Get(ctx, id)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				return err
			}
			opts = append(opts, jetstream.WithExpectLastSequencePerSubject(e.Revision()))
		}
		if st.State != job.StateRevoked {
			st.State, st.Current, st.Status, st.UpdatedAt = job.StateSuccess, 100, "completed", time.Now().UTC()
			data, err := json.Marshal(&st)
			if err != nil {
				return err
			}
			// A final status expires after the result TTL, as Quire's do.
			msg := &nats.Msg{Subject: "$KV." + job.TasksBucket + "." + id, Data: data}
			if _, err := js.PublishMsg(ctx, msg, append(opts, jetstream.WithMsgTTL(time.Hour))...); err != nil {
				return err
			}
		}
		return m.Ack()
	})
}
