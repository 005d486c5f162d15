// Package docstore keeps documents and their chunks in PostgreSQL: the permanent record of
// every ingestion, with embedded, versioned migrations applied under an advisory lock.
package docstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/quirehq/quire/shared/job"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the PostgreSQL store of documents and chunks.
type Store struct {
	pool *pgxpool.Pool
	// tsvInGo: Complete computes the tsvector of plain-text chunks itself (plainTSVector
	// with tsv) instead of having PostgreSQL parse them. Open sets it when the database's text
	// search agrees with plainTSVector; a Store without it leaves every chunk to PostgreSQL.
	tsvInGo bool
	tsv     tsvParser
	// vector: chunks have embedding_vec and search may use pgvector's HNSW indexes (vector.go);
	// vectorReason says why not. hnsw holds the names of the HNSW indexes known to exist.
	vector       bool
	vectorReason string
	hnsw         sync.Map
	// common caches commonWords (common.go), read at commonAt.
	commonMu sync.Mutex
	common   []string
	commonAt time.Time
	// statsAt is when the writer last looked at the table's changes (statistics.go).
	statsMu sync.Mutex
	statsAt time.Time
	// exactFilterChunks overrides the const of the same name when not 0 (tests; -1: never).
	exactFilterChunks int
}

// CheckURL validates DATABASE_URL: a postgres:// or postgresql:// URL.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("DATABASE_URL: want postgres://user@host:port/db")
	}
	return nil
}

// Open connects to dsn, applies pending migrations and returns a Store. Close releases it.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("docstore: DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("docstore: connect: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool}
	if s.tsv, s.tsvInGo, err = checkTSVector(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if s.vector, s.vectorReason, err = enableVector(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// ComputesTSVectors reports whether [Store.Complete] computes the full-text tsvectors of
// plain-text chunks itself (ASCII words, numbers and punctuation; typographic quotes and dashes
// too where the database's locale separates words at them), sparing PostgreSQL the parsing. It
// is false when the database's to_tsvector('simple', ...) differs from the Go computation on
// Open's probe text (a locale that lower-cases ASCII differently, such as Turkish; a changed
// 'simple' configuration): PostgreSQL then computes every chunk's tsvector, as it does for
// text that is not plain.
func (s *Store) ComputesTSVectors() bool { return s.tsvInGo }

// Close closes the connection pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("docstore: ping: %w", err)
	}
	return nil
}

// Migrate applies the embedded migrations that pool's database lacks. A PostgreSQL advisory
// lock serialises concurrent callers, so many services may start at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("docstore: migrations: %w", err)
	}
	// Up takes the lock only when migrations are pending. A service that finds another one
	// migrating (the API and a worker started together on a new database) tries again each
	// second rather than goose's default 5 s, for up to 5 minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("docstore: migration lock: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer func(db *sql.DB) { _ = db.Close() }(db)
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("docstore: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("docstore: migrate: %w", err)
	}
	return nil
}

// Document is a row of the documents table.
type Document struct {
	ID             int64    `json:"id"`
	TenantID       string   `json:"-"`
	AgentID        string   `json:"agent_id"`
	Kind           job.Kind `json:"kind"`
	Filename       string   `json:"filename,omitempty"`
	URL            string   `json:"url,omitempty"`
	Title          string   `json:"title,omitempty"`
	ContentType    string   `json:"content_type,omitempty"`
	SizeBytes      int64    `json:"size_bytes"`
	SHA256         string   `json:"sha256,omitempty"`
	Status         string   `json:"status"`
	TaskID         string   `json:"task_id"`
	Priority       string   `json:"priority"`
	ChunkCount     int      `json:"chunk_count"`
	Error          string   `json:"error,omitempty"`
	EmbeddingModel string   `json:"embedding_model,omitempty"`
	// Job is the JSON of the job the row stands for (the outbox payload), if recorded.
	Job         []byte     `json:"-"`
	PublishedAt *time.Time `json:"-"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	// Metadata is the caller's JSON object (see [ParseMetadata]); {} when none was given.
	Metadata json.RawMessage `json:"metadata"`
}

// documentColumns are the columns of a Document, read FROM documents. PublishedAt is its
// current task's (tasks.published_at, the outbox mark).
const documentColumns = `id, tenant_id, agent_id, kind, filename, url, title, content_type, size_bytes, sha256,
	status, task_id, priority, chunk_count, error, embedding_model, job,
	(SELECT t.published_at FROM tasks t WHERE t.task_id = documents.task_id), created_at, updated_at, completed_at, metadata`

func scanDocument(row pgx.Row) (*Document, error) {
	var d Document
	err := row.Scan(&d.ID, &d.TenantID, &d.AgentID, &d.Kind, &d.Filename, &d.URL, &d.Title, &d.ContentType,
		&d.SizeBytes, &d.SHA256, &d.Status, &d.TaskID, &d.Priority, &d.ChunkCount, &d.Error, &d.EmbeddingModel,
		&d.Job, &d.PublishedAt, &d.CreatedAt, &d.UpdatedAt, &d.CompletedAt, &d.Metadata)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, job.ErrNotFound
		}
		return nil, err
	}
	return &d, nil
}

// InsertDocument inserts d with status queued and sets its ID and timestamps. The same
// statement records d's task (the tasks row, PENDING and unpublished) with the job d.Job (or,
// without one, the job rebuilt from d's columns) as its payload, d's id added.
func (s *Store) InsertDocument(ctx context.Context, d *Document) error {
	if d.Status == "" {
		d.Status = job.DocQueued
	}
	err := s.pool.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO documents (tenant_id, agent_id, kind, filename, url, content_type, size_bytes, sha256, status, task_id, priority, job, metadata)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14)
			RETURNING id, created_at, updated_at
		), task AS (`+insertDocumentTask+`)
		SELECT id, created_at, updated_at FROM ins`,
		d.TenantID, d.AgentID, d.Kind, d.Filename, d.URL, d.ContentType, d.SizeBytes, d.SHA256, d.Status, d.TaskID, d.Priority, jsonOrNull(d.Job),
		documentPayload(d), metadataOrEmpty(d.Metadata),
	).Scan(&d.ID, &d.CreatedAt, &d.UpdatedAt)
	if err != nil {
		return fmt.Errorf("docstore: insert document: %w", err)
	}
	return nil
}

// insertDocumentTask records the task of a documents row inserted by the CTE ins, in a
// statement whose parameters are InsertDocument's ($1 tenant, $3 kind, $9 status, $10 task
// id, $11 priority) and $13, the job's JSON without its document id. The task's state is the
// one of the row's status (PENDING for a queued row).
const insertDocumentTask = `INSERT INTO tasks (task_id, tenant_id, kind, priority, payload, state, document_id, created_at)
	SELECT $10::text, $1::text, $3::text, $11::text, $13::jsonb || jsonb_build_object('document_id', ins.id),
		` + taskStateOfStatus + `, ins.id, ins.created_at FROM ins`

// taskStateOfStatus is the task state of document status $9 (job.StateOfDocument in SQL).
const taskStateOfStatus = `CASE $9::text WHEN 'processing' THEN 'PROGRESS' WHEN 'completed' THEN 'SUCCESS'
		WHEN 'failed' THEN 'FAILURE' WHEN 'cancelled' THEN 'REVOKED' ELSE 'PENDING' END`

// jsonOrNull passes a JSON document to PostgreSQL, or NULL for none.
func jsonOrNull(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// MarkPublished records that the job of document id is stored in its job stream, on the
// document and its task (without the stream sequence: see [Store.MarkTaskPublished]).
func (s *Store) MarkPublished(ctx context.Context, id int64) error {
	if err := s.MarkPublishedMany(ctx, []int64{id}); err != nil {
		return fmt.Errorf("docstore: mark document %d published: %w", id, err)
	}
	return nil
}

// MarkPublishedMany is MarkPublished for several documents in one statement.
func (s *Store) MarkPublishedMany(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE tasks SET published_at = now(), stream = 'JOBS_' || upper(d.priority)
		FROM documents d WHERE d.id = ANY($1) AND tasks.task_id = d.task_id AND tasks.published_at IS NULL`, ids); err != nil {
		return fmt.Errorf("docstore: mark %d documents published: %w", len(ids), err)
	}
	return nil
}

// DeleteDocument removes document id of tenant and its chunks; job.ErrNotFound if it is not
// the tenant's. Its current task goes too if its job was never published (it has nothing left
// to run on); its other tasks stay, without their document.
func (s *Store) DeleteDocument(ctx context.Context, tenantID string, id int64) error {
	tag, err := s.pool.Exec(ctx, `WITH d AS (
			DELETE FROM documents WHERE id = $1 AND tenant_id = $2 RETURNING task_id
		), t AS (
			DELETE FROM tasks USING d WHERE tasks.task_id = d.task_id AND tasks.published_at IS NULL AND tasks.state = 'PENDING'
		)
		SELECT FROM d`, id, tenantID)
	if err != nil {
		return fmt.Errorf("docstore: delete document %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("docstore: delete document %d: %w", id, job.ErrNotFound)
	}
	return nil
}

// GetDocument returns document id of tenant; job.ErrNotFound if it is not the tenant's.
func (s *Store) GetDocument(ctx context.Context, tenantID string, id int64) (*Document, error) {
	d, err := scanDocument(s.pool.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents WHERE id = $1 AND tenant_id = $2`, id, tenantID))
	if err != nil {
		return nil, fmt.Errorf("docstore: get document %d: %w", id, err)
	}
	return d, nil
}

// GetDocumentByTask returns the document of a task of tenant; job.ErrNotFound if none.
func (s *Store) GetDocumentByTask(ctx context.Context, tenantID, taskID string) (*Document, error) {
	d, err := scanDocument(s.pool.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents WHERE task_id = $1 AND tenant_id = $2`, taskID, tenantID))
	if err != nil {
		return nil, fmt.Errorf("docstore: get document of task %s: %w", taskID, err)
	}
	return d, nil
}

// ListFilter selects documents for [Store.ListDocuments].
type ListFilter struct {
	TenantID, AgentID string
	// Status keeps only documents with this status, if set.
	Status string
	// Before keeps only documents with a smaller id (the cursor of the previous page).
	Before int64
	// Limit is the page size (default 50, at most 500).
	Limit int
}

// ListDocuments lists an agent's documents, newest first.
func (s *Store) ListDocuments(ctx context.Context, f ListFilter) ([]*Document, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT `+documentColumns+` FROM documents
		WHERE tenant_id = $1 AND agent_id = $2 AND ($3 = '' OR status = $3) AND ($4 = 0 OR id < $4)
		ORDER BY id DESC LIMIT $5`, f.TenantID, f.AgentID, f.Status, f.Before, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("docstore: list documents: %w", err)
	}
	defer rows.Close()
	var out []*Document
	for rows.Next() {
		d, err := scanDocument(rows)
		if err != nil {
			return nil, fmt.Errorf("docstore: list documents: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("docstore: list documents: %w", err)
	}
	return out, nil
}

// CompletedError is returned by [Store.StartProcessing] for a document whose results are
// already committed: a redelivery of a job that finished (its ack was lost, or its worker died
// between the commit and the ack). The job has nothing left to do.
type CompletedError struct {
	ChunkCount int
}

func (e *CompletedError) Error() string {
	return fmt.Sprintf("docstore: document already completed with %d chunks", e.ChunkCount)
}

// StartProcessing moves document id to processing. It fails with job.ErrConflict if the
// document was cancelled meanwhile, job.ErrNotFound if it does not exist, and a
// [*CompletedError] if its results are already committed (a new task for the same row, such as
// a re-fetch or a dead-letter retry, first moves it back to queued).
func (s *Store) StartProcessing(ctx context.Context, id int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE documents SET status = 'processing', error = '', updated_at = now()
		WHERE id = $1 AND status NOT IN ('cancelled', 'completed')`, id)
	if err != nil {
		return fmt.Errorf("docstore: start document %d: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var (
		status string
		chunks int
	)
	err = s.pool.QueryRow(ctx, `SELECT status, chunk_count FROM documents WHERE id = $1`, id).Scan(&status, &chunks)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("docstore: start document %d: %w", id, job.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("docstore: start document %d: %w", id, err)
	}
	if status == job.DocCompleted {
		return &CompletedError{ChunkCount: chunks}
	}
	return fmt.Errorf("docstore: start document %d: cancelled: %w", id, job.ErrConflict)
}

// Chunk is a row of the chunks table.
type Chunk struct {
	Ordinal    int
	Content    string
	TokenCount int
	Page       int
	Heading    string
	// Location is the chunk's position as JSON ({"slide":3}); nil stores NULL.
	Location  json.RawMessage
	Embedding []float32
}

// Completion is the result of processing a document.
type Completion struct {
	Title          string
	EmbeddingModel string
	Chunks         []Chunk
	// Usage is metered in the same transaction (see [Usage]).
	Usage Usage
}

// Complete replaces the chunks of document id with c.Chunks and marks it completed, in one
// transaction: a redelivered job never duplicates chunks, and a crash leaves the old state.
// It fails with job.ErrConflict if the document was cancelled and job.ErrNotFound if it was
// deleted meanwhile; nothing is written then.
//
// The statements go to PostgreSQL in one round trip, as one implicit transaction: the first
// locks the documents row (a concurrent Cancel waits for the commit, or has committed before),
// and each write does nothing unless that row exists and is not cancelled.
func (s *Store) Complete(ctx context.Context, id int64, c Completion) error {
	n := len(c.Chunks)
	var (
		ordinals = make([]int32, n)
		contents = make([]string, n)
		tokens   = make([]int32, n)
		pages    = make([]int32, n)
		headings = make([]string, n)
		offsets  = make([]int32, n)
		lengths  = make([]int32, n)
		pos      = make([]pgtype.Bits, n)
		neg      = make([]pgtype.Bits, n)
		tsvs     = make([]*string, n)
		locs     = make([]*string, n)
		total    int
	)
	for _, ch := range c.Chunks {
		total += len(ch.Embedding)
	}
	vectors := make([]float32, 0, total)
	for i, ch := range c.Chunks {
		ordinals[i], contents[i], tokens[i], pages[i], headings[i] = int32(ch.Ordinal), ch.Content, int32(ch.TokenCount), int32(ch.Page), ch.Heading
		// A chunk's embedding is vectors[offset : offset+length]; length -1 stands for none.
		offsets[i], lengths[i] = int32(len(vectors)), -1
		if ch.Embedding != nil {
			lengths[i] = int32(len(ch.Embedding))
			vectors = append(vectors, ch.Embedding...)
		}
		if ch.Location != nil {
			l := string(ch.Location)
			locs[i] = &l
		}
		pos[i], neg[i] = sketch(ch.Embedding)
		// The tsvector of plain text, computed here; NULL has PostgreSQL compute it.
		if s.tsvInGo {
			if v, ok := plainTSVector(ch.Content, s.tsv); ok {
				tsvs[i] = &v
			}
		}
	}
	b := &pgx.Batch{}
	var status string
	b.Queue(`SELECT status FROM documents WHERE id = $1 FOR UPDATE`, id).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	b.Queue(`DELETE FROM chunks WHERE document_id = $1
		AND EXISTS (SELECT FROM documents WHERE id = $1 AND status <> 'cancelled')`, id)
	b.Queue(`INSERT INTO chunks (document_id, tenant_id, agent_id, ordinal, content, token_count, page, heading, embedding, embedding_pos, embedding_neg, tsv, location, embedding_model)
		SELECT d.id, d.tenant_id, d.agent_id, c.ordinal, c.content, c.token_count, c.page, c.heading,
			CASE WHEN c.len >= 0 THEN ($9::real[])[c.off + 1 : c.off + c.len] END, c.pos, c.neg,
			COALESCE(c.tsv::tsvector, to_tsvector('simple', c.content)), c.loc::jsonb, CASE WHEN c.len >= 0 THEN $14::text ELSE '' END
		FROM documents d, unnest($2::int[], $3::text[], $4::int[], $5::int[], $6::text[], $7::int[], $8::int[], $10::varbit[], $11::varbit[], $12::text[], $13::text[])
			AS c(ordinal, content, token_count, page, heading, off, len, pos, neg, tsv, loc)
		WHERE d.id = $1 AND d.status <> 'cancelled'`,
		id, ordinals, contents, tokens, pages, headings, offsets, lengths, vectors, pos, neg, tsvs, locs, c.EmbeddingModel)
	b.Queue(`UPDATE documents SET status = 'completed', chunk_count = $2, title = $3, embedding_model = $4,
		error = '', updated_at = now(), completed_at = now() WHERE id = $1 AND status <> 'cancelled'`, id, n, c.Title, c.EmbeddingModel)
	b.Queue(finishDocumentTask, id)
	if c.Usage != (Usage{}) {
		b.Queue(recordCompletionUsage, id, c.Usage.Pages, c.Usage.Bytes, n, c.Usage.EmbeddingTokens)
	}
	err := s.pool.SendBatch(ctx, b).Close()
	switch {
	case err != nil:
	case status == "":
		err = job.ErrNotFound
	case status == job.DocCancelled:
		err = fmt.Errorf("cancelled: %w", job.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("docstore: complete document %d: %w", id, err)
	}
	for _, ch := range c.Chunks {
		if len(ch.Embedding) > 0 {
			s.ensureVectorIndexOf(ctx, c.EmbeddingModel, len(ch.Embedding))
			break
		}
	}
	s.refreshStatisticsAfterWrite(ctx)
	return nil
}

// finishDocumentTask marks the task of document $1 SUCCESS once the document is completed, in
// the transaction that completes it.
const finishDocumentTask = `UPDATE tasks SET state = 'SUCCESS', error = '', finished_at = now()
	FROM documents d WHERE d.id = $1 AND d.status = 'completed' AND tasks.task_id = d.task_id AND tasks.state <> 'REVOKED'`

// Fail marks document id failed with reason, unless it was cancelled, and its task FAILURE.
func (s *Store) Fail(ctx context.Context, id int64, reason string) error {
	if _, err := s.pool.Exec(ctx, `WITH d AS (
			UPDATE documents SET status = 'failed', error = $2, updated_at = now(), completed_at = now()
			WHERE id = $1 AND status <> 'cancelled' RETURNING task_id
		)
		UPDATE tasks SET state = 'FAILURE', error = $2, finished_at = now() FROM d
		WHERE tasks.task_id = d.task_id AND tasks.state <> 'REVOKED'`, id, reason); err != nil {
		return fmt.Errorf("docstore: fail document %d: %w", id, err)
	}
	return nil
}

// SetStatus sets the status (and error text) of document id without touching its chunks; used
// when a dead letter is re-queued or a task is retried.
func (s *Store) SetStatus(ctx context.Context, id int64, status, reason string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE documents SET status = $2, error = $3, updated_at = now() WHERE id = $1`, id, status, reason); err != nil {
		return fmt.Errorf("docstore: set document %d %s: %w", id, status, err)
	}
	return nil
}

// Cancel marks document id of tenant cancelled if it has not finished, and its task REVOKED;
// job.ErrConflict if it already completed or failed.
func (s *Store) Cancel(ctx context.Context, tenantID string, id int64) error {
	tag, err := s.pool.Exec(ctx, `WITH d AS (
			UPDATE documents SET status = 'cancelled', updated_at = now(), completed_at = now()
			WHERE id = $1 AND tenant_id = $2 AND status IN ('queued', 'processing') RETURNING task_id
		), t AS (
			UPDATE tasks SET state = 'REVOKED', finished_at = now() FROM d WHERE tasks.task_id = d.task_id
		)
		SELECT FROM d`, id, tenantID)
	if err != nil {
		return fmt.Errorf("docstore: cancel document %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.GetDocument(ctx, tenantID, id); err != nil {
			return err
		}
		return fmt.Errorf("docstore: cancel document %d: already finished: %w", id, job.ErrConflict)
	}
	return nil
}

// Unpublished returns queued documents whose job was never acknowledged by the job stream
// and that are older than minAge: the API stopped between inserting and publishing.
func (s *Store) Unpublished(ctx context.Context, minAge time.Duration, limit int) ([]*Document, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+documentColumns+` FROM documents
		WHERE status = 'queued' AND created_at < now() - $1::interval
		  AND EXISTS (SELECT FROM tasks t WHERE t.task_id = documents.task_id AND t.published_at IS NULL)
		ORDER BY created_at LIMIT $2`, minAge.String(), limit)
	if err != nil {
		return nil, fmt.Errorf("docstore: unpublished documents: %w", err)
	}
	defer rows.Close()
	var out []*Document
	for rows.Next() {
		d, err := scanDocument(rows)
		if err != nil {
			return nil, fmt.Errorf("docstore: unpublished documents: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ChunkRow is a stored chunk as read back.
type ChunkRow struct {
	ID         int64  `json:"id"`
	DocumentID int64  `json:"document_id"`
	Ordinal    int    `json:"ordinal"`
	Content    string `json:"content"`
	TokenCount int    `json:"token_count"`
	Page       int    `json:"page,omitempty"`
	Heading    string `json:"heading,omitempty"`
	// Location is where the chunk sits ({"page":3}, {"slide":2}, {"sheet":"Sales",
	// "row_start":2,"row_end":41}, {"chapter":4}); null when the document has no positions.
	Location   json.RawMessage `json:"location"`
	Dimensions int             `json:"dimensions"`
}

// Chunks returns the chunks of document id of tenant in order, after ordinal `after`.
func (s *Store) Chunks(ctx context.Context, tenantID string, id int64, after, limit int) ([]ChunkRow, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT id, document_id, ordinal, content, token_count, page, heading, location::text, coalesce(array_length(embedding, 1), 0)
		FROM chunks WHERE document_id = $1 AND tenant_id = $2 AND ordinal > $3 ORDER BY ordinal LIMIT $4`, id, tenantID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("docstore: chunks of document %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChunkRow, error) {
		var c ChunkRow
		var loc *string
		err := r.Scan(&c.ID, &c.DocumentID, &c.Ordinal, &c.Content, &c.TokenCount, &c.Page, &c.Heading, &loc, &c.Dimensions)
		if loc != nil {
			c.Location = json.RawMessage(*loc)
		}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("docstore: chunks of document %d: %w", id, err)
	}
	return out, nil
}

// Requeue gives completed document id of tenant a new task: status queued, so that the task's
// job (a re-embedding) may process it again. The same statement records the task, its payload
// the re-embedding job. job.ErrConflict if the document is not completed.
func (s *Store) Requeue(ctx context.Context, tenantID string, id int64, taskID, priority string) error {
	tag, err := s.pool.Exec(ctx, `WITH d AS (
			UPDATE documents SET task_id = $3, priority = $4, status = 'queued', error = '',
				published_at = NULL, job = NULL, updated_at = now() WHERE id = $1 AND tenant_id = $2 AND status = 'completed'
			RETURNING id, tenant_id, agent_id, filename, url
		), t AS (
			INSERT INTO tasks (task_id, tenant_id, kind, priority, payload, document_id)
			SELECT $3, d.tenant_id, 'reindex', $4, jsonb_strip_nulls(jsonb_build_object(
				'v', 1, 'task_id', $3::text, 'kind', 'reindex', 'tenant_id', d.tenant_id, 'agent_id', d.agent_id,
				'document_id', d.id, 'priority', $4::text, 'filename', NULLIF(d.filename, ''), 'url', NULLIF(d.url, ''))), d.id
			FROM d
		)
		SELECT FROM d`,
		id, tenantID, taskID, priority)
	if err != nil {
		return fmt.Errorf("docstore: requeue document %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		d, err := s.GetDocument(ctx, tenantID, id)
		if err != nil {
			return err
		}
		return fmt.Errorf("docstore: requeue document %d: it is %s, not completed: %w", id, d.Status, job.ErrConflict)
	}
	return nil
}

// ChunkText is the ordinal and content of a stored chunk.
type ChunkText struct {
	Ordinal int
	Content string
}

// ChunkTexts returns the ordinal and content of every chunk of document id, by ordinal.
func (s *Store) ChunkTexts(ctx context.Context, id int64) ([]ChunkText, error) {
	rows, err := s.pool.Query(ctx, `SELECT ordinal, content FROM chunks WHERE document_id = $1 ORDER BY ordinal`, id)
	if err != nil {
		return nil, fmt.Errorf("docstore: chunks of document %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ChunkText])
	if err != nil {
		return nil, fmt.Errorf("docstore: chunks of document %d: %w", id, err)
	}
	return out, nil
}

// ReplaceEmbeddings stores new embeddings of document id made with model (vectors[i] for the
// chunk with ordinals[i]) and marks it completed, in one transaction. It fails with
// job.ErrConflict if the document was cancelled or its chunks changed meanwhile.
func (s *Store) ReplaceEmbeddings(ctx context.Context, id int64, model string, ordinals []int, vectors [][]float32) error {
	if len(ordinals) != len(vectors) {
		return fmt.Errorf("docstore: replace embeddings of document %d: %d ordinals for %d vectors", id, len(ordinals), len(vectors))
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var status string
		if err := tx.QueryRow(ctx, `SELECT status FROM documents WHERE id = $1 FOR UPDATE`, id).Scan(&status); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return job.ErrNotFound
			}
			return err
		}
		if status == job.DocCancelled {
			return fmt.Errorf("cancelled: %w", job.ErrConflict)
		}
		pos, neg := make([]pgtype.Bits, len(vectors)), make([]pgtype.Bits, len(vectors))
		for i, v := range vectors {
			pos[i], neg[i] = sketch(v)
		}
		tag, err := tx.Exec(ctx, `UPDATE chunks AS c SET embedding = v.embedding::real[], embedding_pos = v.pos, embedding_neg = v.neg,
				embedding_model = $6
			FROM unnest($2::int[], $3::text[], $4::varbit[], $5::varbit[]) AS v(ordinal, embedding, pos, neg)
			WHERE c.document_id = $1 AND c.ordinal = v.ordinal`, id, ordinals, vectorLiterals(vectors), pos, neg, model)
		if err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM chunks WHERE document_id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(vectors)) || n != int64(len(vectors)) {
			return fmt.Errorf("%d chunks, %d embeddings: %w", n, len(vectors), job.ErrConflict)
		}
		if _, err = tx.Exec(ctx, `UPDATE documents SET status = 'completed', embedding_model = $2, error = '', updated_at = now(), completed_at = now() WHERE id = $1`, id, model); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, recordReembeddingUsage, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, finishDocumentTask, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("docstore: replace embeddings of document %d: %w", id, err)
	}
	if len(vectors) > 0 {
		s.ensureVectorIndexOf(ctx, model, len(vectors[0]))
	}
	s.refreshStatisticsAfterWrite(ctx)
	return nil
}

// vectorLiterals renders vectors as PostgreSQL array literals.
func vectorLiterals(vectors [][]float32) []string {
	out := make([]string, len(vectors))
	for i, v := range vectors {
		b := make([]byte, 0, len(v)*10+2)
		b = append(b, '{')
		for k, x := range v {
			if k > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
		}
		out[i] = string(append(b, '}'))
	}
	return out
}
