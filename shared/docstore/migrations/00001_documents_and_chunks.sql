-- +goose Up
CREATE TABLE documents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       text        NOT NULL,
    agent_id        text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('document', 'webpage', 'crawl')),
    filename        text        NOT NULL DEFAULT '',
    url             text        NOT NULL DEFAULT '',
    title           text        NOT NULL DEFAULT '',
    content_type    text        NOT NULL DEFAULT '',
    size_bytes      bigint      NOT NULL DEFAULT 0,
    sha256          text        NOT NULL DEFAULT '',
    status          text        NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    task_id         text        NOT NULL UNIQUE,
    priority        text        NOT NULL DEFAULT 'high',
    chunk_count     integer     NOT NULL DEFAULT 0,
    error           text        NOT NULL DEFAULT '',
    embedding_model text        NOT NULL DEFAULT '',
    -- The documents row is the outbox of its job: published_at is set once the job stream has
    -- acknowledged the job, and the sweeper re-publishes queued rows where it is still NULL.
    published_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);

CREATE INDEX documents_agent_idx ON documents (tenant_id, agent_id, id DESC);
CREATE INDEX documents_unpublished_idx ON documents (created_at) WHERE published_at IS NULL AND status = 'queued';

CREATE TABLE chunks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id bigint  NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    tenant_id   text    NOT NULL,
    agent_id    text    NOT NULL,
    ordinal     integer NOT NULL,
    content     text    NOT NULL,
    token_count integer NOT NULL,
    page        integer NOT NULL DEFAULT 0,
    heading     text    NOT NULL DEFAULT '',
    embedding   real[],
    tsv         tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED,
    UNIQUE (document_id, ordinal)
);

CREATE INDEX chunks_agent_idx ON chunks (tenant_id, agent_id);
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);

-- +goose Down
DROP TABLE chunks;
DROP TABLE documents;
