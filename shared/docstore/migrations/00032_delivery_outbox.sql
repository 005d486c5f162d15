-- +goose Up
-- The outbox of webhook deliveries: the statement that makes a task final (SUCCESS, FAILURE or
-- REVOKED) records, in its own transaction, one `webhook` task on medium per target of the
-- event: the callback_url of the submission and every webhook of the tenant subscribed to it.
-- The task that ends a batch (its last open one) also records batch.completed, for the batch's
-- callback_url and the subscribed webhooks. No process can stop between an end and the record
-- of its deliveries. Every delivery of one event carries the same event (id, type, created_at,
-- data); a delivery's task id is its Quire-Delivery id.

-- +goose StatementBegin
CREATE FUNCTION record_webhook_deliveries(p_tenant text, p_agent text, p_event text, p_data jsonb, p_callback text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO tasks (task_id, tenant_id, kind, priority, payload)
    SELECT d.id, p_tenant, 'webhook', 'medium', jsonb_build_object(
               'v', 1, 'task_id', d.id, 'kind', 'webhook', 'tenant_id', p_tenant,
               'agent_id', coalesce(p_agent, '-'), 'priority', 'medium', 'enqueued_at', now(),
               'args', jsonb_strip_nulls(jsonb_build_object('url', d.url, 'webhook_id', d.webhook_id,
                   'event', jsonb_build_object('id', e.id, 'type', p_event, 'created_at', now(), 'data', p_data))))
    FROM (SELECT 'evt_' || replace(gen_random_uuid()::text, '-', '') AS id) e,
         (SELECT t.url, t.webhook_id, 'whd_' || replace(gen_random_uuid()::text, '-', '') AS id
          FROM (SELECT p_callback AS url, NULL::bigint AS webhook_id WHERE NULLIF(p_callback, '') IS NOT NULL
                UNION ALL
                SELECT w.url, w.id FROM webhooks w WHERE w.tenant_id = p_tenant AND p_event = ANY (w.events)) t) d
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasks_webhook_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ev  text;
    cb  text;
    b   batches%ROWTYPE;
BEGIN
    IF NEW.kind = 'webhook' OR NEW.state NOT IN ('SUCCESS', 'FAILURE', 'REVOKED')
       OR OLD.state IN ('SUCCESS', 'FAILURE', 'REVOKED') THEN
        RETURN NULL;
    END IF;
    ev := CASE NEW.state WHEN 'SUCCESS' THEN 'task.succeeded' WHEN 'FAILURE' THEN 'task.failed' ELSE 'task.revoked' END;
    cb := NULLIF(NEW.payload ->> 'callback_url', '');
    IF cb IS NOT NULL OR EXISTS (SELECT FROM webhooks WHERE tenant_id = NEW.tenant_id AND ev = ANY (events)) THEN
        -- The task status (GET /api/v1/tasks/{id}) as its record has it.
        PERFORM record_webhook_deliveries(NEW.tenant_id, NEW.payload ->> 'agent_id', ev, jsonb_strip_nulls(jsonb_build_object(
            'task_id', NEW.task_id, 'state', NEW.state,
            'status', CASE NEW.state WHEN 'SUCCESS' THEN 'completed' WHEN 'FAILURE' THEN 'failed' ELSE 'cancelled' END,
            'current', 100, 'total', 100, 'document_id', NEW.document_id,
            'chunk_count', coalesce((SELECT chunk_count FROM documents WHERE id = NEW.document_id), 0),
            'attempts', NEW.attempts, 'queue', NEW.priority, 'kind', NEW.kind, 'error', NULLIF(NEW.error, ''),
            'url', NEW.payload ->> 'url', 'filename', NEW.payload ->> 'filename', 'batch_id', NEW.batch_id,
            'created_at', NEW.created_at, 'updated_at', coalesce(NEW.finished_at, now()))), cb);
    END IF;
    IF NEW.batch_id IS NOT NULL THEN
        -- One transaction at a time ends a task of the batch, so exactly one sees none left open.
        SELECT * INTO b FROM batches WHERE batch_id = NEW.batch_id FOR UPDATE;
        IF FOUND AND b.completion_recorded_at IS DISTINCT FROM now()
           AND NOT EXISTS (SELECT FROM tasks WHERE batch_id = NEW.batch_id
                           AND state NOT IN ('SUCCESS', 'FAILURE', 'REVOKED')) THEN
            UPDATE batches SET completion_recorded_at = now() WHERE batch_id = b.batch_id;
            PERFORM record_webhook_deliveries(b.tenant_id, b.agent_id, 'batch.completed', batch_status(b.batch_id), b.callback_url);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER tasks_webhook_events AFTER UPDATE OF state ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_webhook_events();

-- +goose Down
DROP TRIGGER tasks_webhook_events ON tasks;
DROP FUNCTION tasks_webhook_events();
DROP FUNCTION record_webhook_deliveries(text, text, text, jsonb, text);
