package api

import (
	"log/slog"
	"time"

	"github.com/quirehq/quire/shared/batch"
	"github.com/quirehq/quire/shared/docstore"
)

// newPublishMarks records, in batches, that the jobs of enqueued tasks were acknowledged by
// their job stream (tasks.published_at with the stream and sequence, the outbox mark). An
// upload does not wait for its mark: the job is already stored, and a task left unmarked (the
// API stopped before a batch was written) is only re-published by the sweeper, which the job
// stream de-duplicates by task id. One UPDATE per batch instead of one per upload.
func newPublishMarks(docs *docstore.Store, log *slog.Logger, gather time.Duration) *batch.Batcher[docstore.PublishMark] {
	return batch.New(docs.MarkTasksPublished, log, "outbox: mark published", gather)
}
