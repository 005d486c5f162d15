-- +goose Up
-- The permanent record and outbox of every task, whatever its kind (DESIGN §10). A task is
-- recorded before its job is published; published_at, stream and stream_seq are set once the
-- job stream has acknowledged it, and the sweeper re-publishes PENDING tasks where
-- published_at is still NULL. state follows the task's final outcome (SUCCESS, FAILURE,
-- REVOKED; RETRY or PENDING until then); the live status with progress stays in the TASKS
-- bucket. Kinds are open (handlers register them), so kind has no CHECK.
CREATE TABLE tasks (
    task_id      text        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    kind         text        NOT NULL,
    priority     text        NOT NULL,
    -- The job as published (its body), so that a re-publish sends exactly that job.
    payload      jsonb       NOT NULL,
    state        text        NOT NULL DEFAULT 'PENDING'
                 CHECK (state IN ('PENDING', 'PROGRESS', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED')),
    attempts     integer     NOT NULL DEFAULT 0,
    error        text        NOT NULL DEFAULT '',
    batch_id     text,
    schedule_id  text,
    document_id  bigint      REFERENCES documents (id) ON DELETE SET NULL,
    stream       text        NOT NULL DEFAULT '',
    stream_seq   bigint      NOT NULL DEFAULT 0,
    published_at timestamptz,
    run_at       timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

-- The sweeper's scan: tasks never acknowledged by a job stream.
CREATE INDEX tasks_unpublished_idx ON tasks (created_at) WHERE published_at IS NULL AND state = 'PENDING';
-- A document's tasks (its current one and those before it).
CREATE INDEX tasks_document_idx ON tasks (document_id) WHERE document_id IS NOT NULL;
-- Listings of a tenant's tasks, newest first, and of a batch's and a schedule's tasks.
CREATE INDEX tasks_tenant_idx ON tasks (tenant_id, created_at DESC);
CREATE INDEX tasks_batch_idx ON tasks (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX tasks_schedule_idx ON tasks (schedule_id, created_at DESC) WHERE schedule_id IS NOT NULL;

-- Every document's task moves here: its job as recorded (with the document's id) or, for rows
-- from before jobs were recorded, the job rebuilt from the row's columns; the state derived
-- from the document's status.
INSERT INTO tasks (task_id, tenant_id, kind, priority, payload, state, error, document_id, stream,
                   published_at, created_at, finished_at)
SELECT d.task_id, d.tenant_id, d.kind, d.priority,
       CASE WHEN d.job IS NOT NULL AND d.job ->> 'task_id' = d.task_id
            THEN d.job || jsonb_build_object('v', 1, 'document_id', d.id)
            ELSE jsonb_strip_nulls(jsonb_build_object(
                'v', 1, 'task_id', d.task_id, 'kind', d.kind, 'tenant_id', d.tenant_id, 'agent_id', d.agent_id,
                'document_id', d.id, 'priority', d.priority,
                'object', CASE WHEN d.kind = 'document' THEN d.task_id END,
                'filename', NULLIF(d.filename, ''), 'content_type', NULLIF(d.content_type, ''),
                'url', NULLIF(d.url, ''), 'enqueued_at', d.created_at))
       END,
       CASE d.status WHEN 'processing' THEN 'PROGRESS' WHEN 'completed' THEN 'SUCCESS'
                     WHEN 'failed' THEN 'FAILURE' WHEN 'cancelled' THEN 'REVOKED' ELSE 'PENDING' END,
       d.error, d.id,
       CASE WHEN d.published_at IS NOT NULL THEN 'JOBS_' || upper(d.priority) ELSE '' END,
       d.published_at, d.created_at,
       CASE WHEN d.status IN ('completed', 'failed', 'cancelled') THEN coalesce(d.completed_at, d.updated_at) END
FROM documents d;

-- The sweeper reads tasks; documents.published_at is no longer written (a document's
-- published mark is its task's).
DROP INDEX documents_unpublished_idx;

-- A document points at its task. Deferred: a document and its task are written in one
-- transaction, in either order.
ALTER TABLE documents ADD CONSTRAINT documents_task_fk FOREIGN KEY (task_id) REFERENCES tasks (task_id)
    DEFERRABLE INITIALLY DEFERRED;

-- +goose Down
ALTER TABLE documents DROP CONSTRAINT documents_task_fk;
UPDATE documents d SET published_at = t.published_at FROM tasks t
    WHERE t.task_id = d.task_id AND d.published_at IS DISTINCT FROM t.published_at;
CREATE INDEX documents_unpublished_idx ON documents (created_at) WHERE published_at IS NULL AND status = 'queued';
DROP TABLE tasks;
