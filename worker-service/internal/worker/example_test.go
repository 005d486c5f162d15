package worker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quirehq/quire/shared/job"
	"github.com/quirehq/quire/worker-service/internal/worker"
)

// thumbnail is a job kind with its own payload type and retry policy.
type thumbnail struct{}

type thumbnailArgs struct {
	Width int `json:"width"`
}

func (thumbnail) Handle(ctx context.Context, j *job.Job) error {
	return worker.ArgsFunc(func(_ context.Context, j *job.Job, a thumbnailArgs) error {
		fmt.Printf("thumbnail of %s at %dpx\n", j.TaskID, a.Width)
		return nil
	}).Handle(ctx, j)
}

// MaxRetries and RetryDelay override the worker's MAX_RETRIES and backoff for this kind.
func (thumbnail) MaxRetries() int              { return 1 }
func (thumbnail) RetryDelay(int) time.Duration { return 5 * time.Second }

// A kind is a payload type and a handler registered on the mux; the runtime needs nothing else.
func ExampleMux() {
	mux := worker.NewMux()
	if err := mux.Register("thumbnail", thumbnail{}); err != nil {
		fmt.Println(err)
	}
	err := mux.Register("thumbnail", thumbnail{})
	fmt.Println("registered twice:", errors.Is(err, worker.ErrKindRegistered))

	_ = mux.Handle(context.Background(), &job.Job{TaskID: "t1", Kind: "thumbnail", Args: []byte(`{"width": 128}`)})
	err = mux.Handle(context.Background(), &job.Job{TaskID: "t2", Kind: "video"})
	fmt.Println(err, "- permanent:", worker.IsPermanent(err))
	// Output:
	// registered twice: true
	// thumbnail of t1 at 128px
	// worker: no handler for job kind "video" - permanent: true
}
