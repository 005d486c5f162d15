-- +goose Up
-- A document's metadata: the caller's JSON object (at most 8 KB; string, number, boolean and
-- string-array values), which search filters match. The GIN index (jsonb_path_ops) serves the
-- containment tests that equality and membership filters compile to.
ALTER TABLE documents ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb;
CREATE INDEX documents_metadata_idx ON documents USING gin (metadata jsonb_path_ops);

-- +goose Down
DROP INDEX documents_metadata_idx;
ALTER TABLE documents DROP COLUMN metadata;
