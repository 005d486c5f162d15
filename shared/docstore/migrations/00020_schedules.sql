-- +goose Up
-- Schedules (DESIGN §11): the source of truth of every periodic job. Each enabled schedule has
-- its definition, a message schedule, in the SCHEDULES stream; version counts the changes
-- and is carried by the definition (header Quire-Schedule-Version), so start-up can tell a
-- stale definition from a current one. task is the template of the job each run makes.
CREATE TABLE schedules (
    id          text        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    name        text        NOT NULL,
    spec_kind   text        NOT NULL CHECK (spec_kind IN ('cron', 'every', 'at')),
    spec        text        NOT NULL,
    timezone    text        NOT NULL DEFAULT '',
    overlap     text        NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'allow')),
    task        jsonb       NOT NULL,
    enabled     boolean     NOT NULL DEFAULT true,
    version     bigint      NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    last_run_at timestamptz
);
CREATE INDEX schedules_tenant_idx ON schedules (tenant_id, created_at);

-- One row per fire of a schedule: the unique (schedule_id, fire_time) makes a fire one run
-- whatever NATS redelivers or however many API replicas materialise it. A run is enqueued (its
-- task_id the task it made) or skipped (the previous run still queued or running, overlap
-- skip).
CREATE TABLE schedule_runs (
    id          bigserial   PRIMARY KEY,
    schedule_id text        NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    fire_time   timestamptz NOT NULL,
    task_id     text        REFERENCES tasks (task_id) ON DELETE SET NULL,
    state       text        NOT NULL CHECK (state IN ('enqueued', 'skipped')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (schedule_id, fire_time)
);

-- +goose Down
DROP TABLE schedule_runs;
DROP TABLE schedules;
