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
// Without a deadline on ctx it gives up after 10 seconds.
func (p *Publisher) Publish(ctx context.Context, j *job.Job, msgID string) error {
	body, err := j.Encode()
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	msg := &nats.Msg{Subject: j.Subject(), Data: body, Header: nats.Header{}}
	msg.Header.Set(job.HeaderTaskID, j.TaskID)
	msg.Header.Set(job.HeaderTenantID, j.TenantID)
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(j.Priority.Stream())); err != nil {
		return fmt.Errorf("jobqueue: publish %s: %w", msg.Subject, err)
	}
	return nil
}
