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

-- +goose Down
DROP INDEX tasks_webhook_unpublished_idx;
DROP TABLE webhooks;
