-- +goose Up
-- Each chunk records the model its embedding was made with (the document's, at the time it was
-- stored or re-embedded): the approximate vector indexes (pgvector HNSW, one partial index per
-- model and dimension, see vector.go) select their chunks by it.
ALTER TABLE chunks ADD COLUMN embedding_model text NOT NULL DEFAULT '';
UPDATE chunks c SET embedding_model = d.embedding_model
    FROM documents d WHERE d.id = c.document_id AND c.embedding IS NOT NULL AND d.embedding_model <> '';

-- +goose Down
ALTER TABLE chunks DROP COLUMN embedding_model;
