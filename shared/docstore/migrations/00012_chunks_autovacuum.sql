-- +goose Up
-- chunks grows by large inserts: autovacuum analyses it after 2% of its rows changed (not the
-- default 10%), so that search plans by current statistics, and vacuums it after 2% of its
-- rows were inserted (not 20%), so that the visibility map lets scans skip the heap and the
-- GIN index's pending list is merged soon after an ingest.
ALTER TABLE chunks SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);

-- +goose Down
ALTER TABLE chunks RESET (autovacuum_analyze_scale_factor, autovacuum_vacuum_insert_scale_factor);
