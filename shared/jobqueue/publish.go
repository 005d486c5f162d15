package jobqueue

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quirehq/quire/shared/job"
)

// Publisher publishes jobs and waits for the stream's acknowledgement.
type Publisher struct {
	js jetstream.Publisher
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.Publisher) *Publisher { return &Publisher{js: js} }

// Publish encodes j and publishes it to its subject with Nats-Msg-Id = msgID (the task id for a
// first publish, "<task id>:<n>" for a deliberate re-publish), and returns once the stream has
// stored it. A publish repeated within the duplicate window with the same msgID is stored once.
// Without a deadline on ctx it gives up after 10 seconds; until then a stream with no leader
// (after a node loss) is retried.
func (p *Publisher) Publish(ctx context.Context, j *job.Job, msgID string) error {
	_, err := p.PublishAck(ctx, j, msgID)
	return err
}

// PublishAck is Publish returning the stream's acknowledgement: the stream and sequence the
// job is stored at, and whether the stream dropped it as a duplicate of msgID (the sequence is
// then the first one's).
func (p *Publisher) PublishAck(ctx context.Context, j *job.Job, msgID string) (*jetstream.PubAck, error) {
	body, err := j.Encode()
	if err != nil {
		return nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		deadline, _ = ctx.Deadline()
	}
	msg := &nats.Msg{Subject: j.Subject(), Data: body, Header: nats.Header{}}
	msg.Header.Set(job.HeaderTaskID, j.TaskID)
	msg.Header.Set(job.HeaderTenantID, j.TenantID)
	// A stream without a leader (an election after a node loss takes seconds) has no
	// responders: retry until ctx ends rather than fail at once; Nats-Msg-Id keeps it one job.
	const retryWait = 250 * time.Millisecond
	retries := max(0, int(time.Until(deadline)/retryWait)+1)
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(j.Priority.Stream()),
		jetstream.WithRetryAttempts(retries), jetstream.WithRetryWait(retryWait))
	if err != nil {
		return nil, fmt.Errorf("jobqueue: publish %s: %w", msg.Subject, err)
	}
	return ack, nil
}
