-- +goose Up
-- Webhooks (DESIGN §13): a tenant's endpoints, each subscribed to some of the events
-- task.succeeded, task.failed, task.revoked, batch.completed, each with its own signing secret.
CREATE TABLE webhooks (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  text        NOT NULL,
    url        text        NOT NULL,
    events     text[]      NOT NULL,
    secret     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_tenant_idx ON webhooks (tenant_id, created_at DESC);

-- Deliveries waiting to be published, for the dispatcher (published within a second).
CREATE INDEX tasks_webhook_unpublished_idx ON tasks (created_at)
    WHERE kind = 'webhook' AND published_at IS NULL AND state = 'PENDING';

-- The outbox of webhook deliveries: the statement that makes a task final (SUCCESS, FAILURE or
-- REVOKED) inserts, in its own transaction, one `webhook` task on medium per target: the
-- submission's callback_url and every webhook of the tenant subscribed to the event. No process
-- can stop between a task's end and the record of its deliveries. Every delivery of one event
-- carries the same event (id, type, created_at, data); its task id is the delivery id.
-- +goose StatementBegin
CREATE FUNCTION tasks_webhook_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ev   text;
    data jsonb;
    cb   text;
BEGIN
    IF NEW.kind = 'webhook' OR NEW.state NOT IN ('SUCCESS', 'FAILURE', 'REVOKED')
       OR OLD.state IN ('SUCCESS', 'FAILURE', 'REVOKED') THEN
        RETURN NULL;
    END IF;
    ev := CASE NEW.state WHEN 'SUCCESS' THEN 'task.succeeded' WHEN 'FAILURE' THEN 'task.failed' ELSE 'task.revoked' END;
    cb := NULLIF(NEW.payload ->> 'callback_url', '');
    IF cb IS NULL AND NOT EXISTS (SELECT FROM webhooks WHERE tenant_id = NEW.tenant_id AND ev = ANY (events)) THEN
        RETURN NULL;
    END IF;
    -- The task status (GET /api/v1/tasks/{id}) as its record has it.
    data := jsonb_strip_nulls(jsonb_build_object(
        'task_id', NEW.task_id, 'state', NEW.state,
        'status', CASE NEW.state WHEN 'SUCCESS' THEN 'completed' WHEN 'FAILURE' THEN 'failed' ELSE 'cancelled' END,
        'current', 100, 'total', 100, 'document_id', NEW.document_id,
        'chunk_count', coalesce((SELECT chunk_count FROM documents WHERE id = NEW.document_id), 0),
        'attempts', NEW.attempts, 'queue', NEW.priority, 'kind', NEW.kind, 'error', NULLIF(NEW.error, ''),
        'url', NEW.payload ->> 'url', 'filename', NEW.payload ->> 'filename', 'batch_id', NEW.batch_id,
        'created_at', NEW.created_at, 'updated_at', coalesce(NEW.finished_at, now())));
    INSERT INTO tasks (task_id, tenant_id, kind, priority, payload)
    SELECT d.id, NEW.tenant_id, 'webhook', 'medium', jsonb_build_object(
               'v', 1, 'task_id', d.id, 'kind', 'webhook', 'tenant_id', NEW.tenant_id,
               'agent_id', coalesce(NEW.payload ->> 'agent_id', '-'), 'priority', 'medium', 'enqueued_at', now(),
               'args', jsonb_strip_nulls(jsonb_build_object('url', d.url, 'webhook_id', d.webhook_id,
                   'event', jsonb_build_object('id', e.id, 'type', ev, 'created_at', now(), 'data', data))))
    FROM (SELECT 'evt_' || replace(gen_random_uuid()::text, '-', '') AS id) e,
         (SELECT t.url, t.webhook_id, 'whd_' || replace(gen_random_uuid()::text, '-', '') AS id
          FROM (SELECT cb AS url, NULL::bigint AS webhook_id WHERE cb IS NOT NULL
                UNION ALL
                SELECT w.url, w.id FROM webhooks w WHERE w.tenant_id = NEW.tenant_id AND ev = ANY (w.events)) t) d;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER tasks_webhook_events AFTER UPDATE OF state ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_webhook_events();

-- +goose Down
DROP TRIGGER tasks_webhook_events ON tasks;
DROP FUNCTION tasks_webhook_events();
DROP INDEX tasks_webhook_unpublished_idx;
DROP TABLE webhooks;
