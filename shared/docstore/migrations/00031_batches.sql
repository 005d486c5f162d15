-- +goose Up
-- Batches (DESIGN §13): several submissions accepted together. A batch stores only what its
-- tasks do not: who submitted it, its callback_url and metadata. Its state, counts and
-- progress are derived from its tasks (batch_status), never stored.
CREATE TABLE batches (
    batch_id     text        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    agent_id     text        NOT NULL,
    callback_url text,
    metadata     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- When batch.completed was last recorded (the transaction's time): one statement ending
    -- several of the batch's tasks records it once.
    completion_recorded_at timestamptz
);
CREATE INDEX batches_tenant_idx ON batches (tenant_id, created_at DESC);

ALTER TABLE tasks ADD CONSTRAINT tasks_batch_fk FOREIGN KEY (batch_id) REFERENCES batches (batch_id)
    ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;

-- The status of a batch, from its tasks' records: a task is PROGRESS while its document is
-- being processed, otherwise in its recorded state. state: PENDING while no task has started
-- or ended, PROGRESS until every task has ended, then REVOKED if any was cancelled, SUCCESS if
-- all succeeded, FAILURE if none did, PARTIAL otherwise. progress: the share of ended tasks.
-- +goose StatementBegin
CREATE FUNCTION batch_status(p_batch_id text) RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH t AS (
        SELECT CASE WHEN t.state = 'PENDING' AND d.status = 'processing' AND d.task_id = t.task_id
                    THEN 'PROGRESS' ELSE t.state END AS state,
               t.finished_at
        FROM tasks t LEFT JOIN documents d ON d.id = t.document_id
        WHERE t.batch_id = p_batch_id
    ), c AS (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE state = 'PENDING') AS pending,
               count(*) FILTER (WHERE state IN ('PENDING', 'PROGRESS', 'RETRY')) AS open,
               count(*) FILTER (WHERE state = 'SUCCESS') AS success,
               count(*) FILTER (WHERE state = 'REVOKED') AS revoked,
               max(finished_at) AS finished_at,
               jsonb_build_object(
                   'PENDING', count(*) FILTER (WHERE state = 'PENDING'),
                   'PROGRESS', count(*) FILTER (WHERE state = 'PROGRESS'),
                   'RETRY', count(*) FILTER (WHERE state = 'RETRY'),
                   'SUCCESS', count(*) FILTER (WHERE state = 'SUCCESS'),
                   'FAILURE', count(*) FILTER (WHERE state = 'FAILURE'),
                   'REVOKED', count(*) FILTER (WHERE state = 'REVOKED')) AS counts
        FROM t
    )
    SELECT jsonb_build_object(
        'batch_id', b.batch_id,
        'state', CASE
            WHEN c.open > 0 AND c.pending = c.total THEN 'PENDING'
            WHEN c.open > 0 THEN 'PROGRESS'
            WHEN c.revoked > 0 THEN 'REVOKED'
            WHEN c.success = c.total THEN 'SUCCESS'
            WHEN c.success = 0 THEN 'FAILURE'
            ELSE 'PARTIAL' END,
        'total', c.total,
        'counts', c.counts,
        'progress', CASE WHEN c.total = 0 THEN 100 ELSE (100 * (c.total - c.open)) / c.total END,
        'created_at', b.created_at,
        'finished_at', CASE WHEN c.open = 0 THEN c.finished_at END)
    FROM batches b, c
    WHERE b.batch_id = p_batch_id
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION batch_status(text);
ALTER TABLE tasks DROP CONSTRAINT tasks_batch_fk;
DROP TABLE batches;
