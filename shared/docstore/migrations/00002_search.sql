-- +goose Up
-- Search without extensions (pgvector is not installable everywhere Quire runs). Vector
-- similarity is scored in two steps: a coarse scan of every chunk's sign sketch (one bit per
-- dimension for "positive", one for "negative": a ternary quantisation that bit_count scores in
-- C), read from a narrow covering index rather than the wide chunks rows, then exact cosine
-- similarity over the best candidates (computed by the caller).

-- +goose StatementBegin
CREATE FUNCTION quire_sign_bits(v real[], positive boolean) RETURNS bit varying
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_to_string(array(
        SELECT CASE WHEN (positive AND x > 0) OR (NOT positive AND x < 0) THEN '1' ELSE '0' END
        FROM unnest(v) WITH ORDINALITY AS t(x, i) ORDER BY i), '')::bit varying
$$;
-- +goose StatementEnd

-- OR of tsqueries, to match chunks sharing any word of a plain query.
CREATE AGGREGATE quire_tsquery_or(tsquery) (SFUNC = tsquery_or, STYPE = tsquery);

ALTER TABLE chunks
    ADD COLUMN embedding_pos bit varying GENERATED ALWAYS AS (quire_sign_bits(embedding, true)) STORED,
    ADD COLUMN embedding_neg bit varying GENERATED ALWAYS AS (quire_sign_bits(embedding, false)) STORED;

-- The sketch scan of one agent reads only this index (an index-only scan once autovacuum has
-- marked the pages all-visible).
CREATE INDEX chunks_sketch_idx ON chunks (tenant_id, agent_id) INCLUDE (id, document_id, embedding_pos, embedding_neg);

-- +goose Down
DROP INDEX chunks_sketch_idx;
ALTER TABLE chunks DROP COLUMN embedding_pos, DROP COLUMN embedding_neg;
DROP AGGREGATE quire_tsquery_or(tsquery);
DROP FUNCTION quire_sign_bits(real[], boolean);
