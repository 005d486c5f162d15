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
var protocolSide = consumerSide{name: "protocol", withStatus: true, start: startProtocolConsumers}

func startProtocolConsumers(ctx context.Context, srv *natsServer) (func(), error) {
	return startHandWritten(ctx, srv, func(js jetstream.JetStream, top *jobqueue.Topology, m jetstream.Msg) error {
		id := m.Headers().Get(job.HeaderTaskID)
		e, err := top.Tasks.Get(ctx, id)
		if err != nil {
			return err
		}
		var st job.Status
		if err := json.Unmarshal(e.Value(), &st); err != nil {
			return err
		}
		if st.State != job.StateRevoked {
			st.State, st.Current, st.Status, st.UpdatedAt = job.StateSuccess, 100, "completed", time.Now().UTC()
			data, err := json.Marshal(&st)
			if err != nil {
				return err
			}
			// A final status expires after the result TTL, as Quire's do.
			msg := &nats.Msg{Subject: "$KV." + job.TasksBucket + "." + id, Data: data}
			if _, err := js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(e.Revision()),
				jetstream.WithMsgTTL(time.Hour)); err != nil {
				return err
			}
		}
		return m.Ack()
	})
}
