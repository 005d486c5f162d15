-- +goose Up
-- An upload looks for a completed document of its agent with the same bytes (duplicate
-- detection). Without this index that lookup walked every document of the agent; the index
-- holds only completed uploads, so queued rows cost nothing to insert here.
CREATE INDEX documents_completed_sha_idx ON documents (tenant_id, agent_id, sha256, id DESC)
    WHERE status = 'completed' AND kind = 'document' AND sha256 <> '';

-- +goose Down
DROP INDEX documents_completed_sha_idx;
