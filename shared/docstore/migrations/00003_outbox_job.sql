-- +goose Up
-- The job a documents row stands for, as published (without its document id), so the outbox
-- sweeper re-publishes exactly that job (crawl limits, parent crawl, force flag included).
ALTER TABLE documents ADD COLUMN job jsonb;

-- +goose Down
ALTER TABLE documents DROP COLUMN job;
