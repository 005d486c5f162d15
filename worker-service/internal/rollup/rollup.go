// Package rollup is the handler of usage_rollup jobs: it rolls usage events up into hourly
// totals (usage_hourly) from the watermark, so a late job covers every hour missed since the
// last one, once.
package rollup

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/quirehq/quire/shared/docstore"
	"github.com/quirehq/quire/shared/job"
)

// Store is what a roll-up needs of the database; *docstore.Store is one.
type Store interface {
	RollupUsage(ctx context.Context, now time.Time) (docstore.RollupResult, error)
}

// Handler runs usage_rollup jobs (worker.Handler). Any delivery of any usage_rollup job rolls
// up every hour due at the time it runs, so duplicates and retries are harmless: a roll-up
// with nothing due does nothing.
type Handler struct {
	Store  Store
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Handle implements worker.Handler. A database error is returned for a retry.
func (h *Handler) Handle(ctx context.Context, j *job.Job) error {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	res, err := h.Store.RollupUsage(ctx, now())
	if err != nil {
		return fmt.Errorf("rollup: task %s: %w", j.TaskID, err)
	}
	if res.Rows > 0 && h.Logger != nil {
		h.Logger.Info("usage rolled up", "task_id", j.TaskID, "from", res.From, "to", res.To, "rows", res.Rows)
	}
	return nil
}
