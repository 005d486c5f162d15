package worker

import (
	"context"

	"github.com/quirehq/quire/shared/job"
)

// Reporter lets a handler publish its progress and result. The runtime puts one in the job's
// context; get it with [ReporterFrom].
type Reporter interface {
	// Progress sets the task's progress (0..100) and human status message. Reports closer
	// together than the runtime's progress interval are coalesced (the latest is written when
	// the interval ends). It returns ErrRevoked if a write found the task cancelled (the job's
	// context is cancelled too).
	Progress(ctx context.Context, current int, message string) error
	// Result records fields of the final status (document id, chunk count) written on success.
	Result(fn func(st *job.Status))
	// Attempt is the 1-based attempt number of this run.
	Attempt() int
}

type reporterKey struct{}

// WithReporter returns ctx carrying r.
func WithReporter(ctx context.Context, r Reporter) context.Context {
	return context.WithValue(ctx, reporterKey{}, r)
}

// ReporterFrom returns the Reporter in ctx, or one that discards everything.
func ReporterFrom(ctx context.Context) Reporter {
	if r, ok := ctx.Value(reporterKey{}).(Reporter); ok {
		return r
	}
	return nopReporter{}
}

type nopReporter struct{}

func (nopReporter) Progress(context.Context, int, string) error { return nil }
func (nopReporter) Result(func(*job.Status))                    {}
func (nopReporter) Attempt() int                                { return 1 }
