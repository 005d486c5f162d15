-- +goose Up
-- Usage metering (DESIGN §12). usage_events is append-only: a row is written in the
-- transaction of the work it measures (a document's commit, a search), so a rolled-back job
-- writes none. A row holds every counter of one piece of work (one row, two index entries per
-- committed document); usage_event_metrics reads it as (metric, quantity) pairs. A task's
-- results count once: task_id is unique and a second commit of the same task (a duplicate
-- delivery) inserts nothing. Searches carry no task (NULL task_id). No primary key: rows are
-- only appended, and read by time range.
CREATE TABLE usage_events (
    tenant_id        text        NOT NULL,
    agent_id         text        NOT NULL,
    task_id          text,
    document_id      bigint,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    documents        bigint      NOT NULL DEFAULT 0 CHECK (documents >= 0),
    pages            bigint      NOT NULL DEFAULT 0 CHECK (pages >= 0),
    bytes_ingested   bigint      NOT NULL DEFAULT 0 CHECK (bytes_ingested >= 0),
    chunks           bigint      NOT NULL DEFAULT 0 CHECK (chunks >= 0),
    embedding_tokens bigint      NOT NULL DEFAULT 0 CHECK (embedding_tokens >= 0),
    searches         bigint      NOT NULL DEFAULT 0 CHECK (searches >= 0)
);
CREATE UNIQUE INDEX usage_events_task_idx ON usage_events (task_id) WHERE task_id IS NOT NULL;
-- Events are read by time only: the roll-up's scan of an hour, and the reports' and quota
-- checks' hours past the roll-up's watermark (tenant filtered among them). Rows arrive in time
-- order, so a BRIN index serves those reads at almost no cost per insert.
CREATE INDEX usage_events_occurred_idx ON usage_events USING brin (occurred_at);

-- The events as one (metric, quantity) row per non-zero counter.
CREATE VIEW usage_event_metrics AS
SELECT e.tenant_id, e.agent_id, e.task_id, e.document_id, e.occurred_at, m.metric, m.quantity
FROM usage_events e
CROSS JOIN LATERAL (VALUES ('documents', e.documents), ('pages', e.pages), ('bytes_ingested', e.bytes_ingested),
    ('chunks', e.chunks), ('embedding_tokens', e.embedding_tokens), ('searches', e.searches)) AS m (metric, quantity)
WHERE m.quantity > 0;

-- Hourly totals per tenant, agent and metric, written by the usage_rollup job: counters are
-- the hour's sum; storage_bytes is the storage measured when the hour was rolled up.
CREATE TABLE usage_hourly (
    tenant_id text        NOT NULL,
    agent_id  text        NOT NULL,
    metric    text        NOT NULL,
    hour      timestamptz NOT NULL,
    quantity  bigint      NOT NULL,
    PRIMARY KEY (tenant_id, hour, metric, agent_id)
);
CREATE INDEX usage_hourly_hour_idx ON usage_hourly (hour);

-- The roll-up's watermark: every hour before it is in usage_hourly. One row.
CREATE TABLE usage_rollup_state (
    id        boolean     PRIMARY KEY DEFAULT true CHECK (id),
    watermark timestamptz NOT NULL,
    rolled_at timestamptz NOT NULL DEFAULT now()
);

-- Per-tenant quotas; NULL is unlimited, a missing row is unlimited throughout.
CREATE TABLE tenant_quotas (
    tenant_id                  text        PRIMARY KEY,
    documents_per_month        bigint      CHECK (documents_per_month >= 0),
    embedding_tokens_per_month bigint      CHECK (embedding_tokens_per_month >= 0),
    storage_bytes              bigint      CHECK (storage_bytes >= 0),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE tenant_quotas;
DROP TABLE usage_rollup_state;
DROP TABLE usage_hourly;
DROP VIEW usage_event_metrics;
DROP TABLE usage_events;
