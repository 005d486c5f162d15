-- +goose Up
-- Where a chunk sits in its document: {"page": n}, {"slide": n},
-- {"sheet": "Sales", "row_start": 2, "row_end": 41}, {"chapter": n}. NULL when the document
-- has no positions (plain text, HTML) and for chunks stored before this column existed (their
-- page column still says where a PDF chunk starts).
ALTER TABLE chunks ADD COLUMN location jsonb;

-- +goose Down
ALTER TABLE chunks DROP COLUMN location;
