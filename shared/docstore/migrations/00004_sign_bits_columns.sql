-- +goose Up
-- The sign sketches become plain columns that the writer fills in (docstore computes them in
-- Go, bit for bit as quire_sign_bits does): as generated columns PostgreSQL ran the SQL
-- function twice per inserted chunk, most of the cost of storing a document's chunks. Rows
-- already stored keep their values; quire_sign_bits stays as the definition of the sketch.
ALTER TABLE chunks
    ALTER COLUMN embedding_pos DROP EXPRESSION,
    ALTER COLUMN embedding_neg DROP EXPRESSION;

-- A chunk row (text, tsvector, embedding) is over the TOAST threshold, so every insert
-- compresses it: with lz4 where the server has it, several times cheaper than pglz. Stored
-- values keep their compression; both read alike.
-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE chunks
        ALTER COLUMN content SET COMPRESSION lz4,
        ALTER COLUMN tsv SET COMPRESSION lz4,
        ALTER COLUMN embedding SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'no lz4 in this server: chunks keep the default compression';
END
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE chunks
    ALTER COLUMN content SET COMPRESSION default,
    ALTER COLUMN tsv SET COMPRESSION default,
    ALTER COLUMN embedding SET COMPRESSION default;
DROP INDEX chunks_sketch_idx;
ALTER TABLE chunks DROP COLUMN embedding_pos, DROP COLUMN embedding_neg;
ALTER TABLE chunks
    ADD COLUMN embedding_pos bit varying GENERATED ALWAYS AS (quire_sign_bits(embedding, true)) STORED,
    ADD COLUMN embedding_neg bit varying GENERATED ALWAYS AS (quire_sign_bits(embedding, false)) STORED;
CREATE INDEX chunks_sketch_idx ON chunks (tenant_id, agent_id) INCLUDE (id, document_id, embedding_pos, embedding_neg);
