package docstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// MaxMetadataBytes caps a document's metadata object, as sent.
const MaxMetadataBytes = 8 << 10

// ErrBadMetadata reports metadata that [ParseMetadata] refuses; the message names the
// offending key.
var ErrBadMetadata = errors.New("docstore: bad metadata")

// metadataKey is what a metadata key can be (and what filters may name after "metadata.").
var metadataKey = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ParseMetadata validates a document's metadata and returns it compacted: a JSON object of at
// most [MaxMetadataBytes], keys of 1-64 characters of A-Z a-z 0-9 _ . - (each once), values
// strings, numbers, booleans or arrays of strings. Errors wrap [ErrBadMetadata] and say what
// is wrong where, e.g. `metadata.tags[2]: must be a string`.
func ParseMetadata(b []byte) (json.RawMessage, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadMetadata, fmt.Sprintf(format, a...))
	}
	if len(b) > MaxMetadataBytes {
		return nil, bad("metadata is larger than %d bytes", MaxMetadataBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, bad("metadata must be a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, bad("metadata is not valid JSON: %v", err)
		}
		key, _ := t.(string)
		if !metadataKey.MatchString(key) {
			return nil, bad("metadata key %q must be 1-64 characters of A-Z a-z 0-9 _ . -", key)
		}
		if seen[key] {
			return nil, bad("metadata.%s appears twice", key)
		}
		seen[key] = true
		t, err = dec.Token()
		if err != nil {
			return nil, bad("metadata.%s is not valid JSON: %v", key, err)
		}
		switch v := t.(type) {
		case string:
			if strings.ContainsRune(v, 0) {
				return nil, bad("metadata.%s: a NUL character cannot be stored", key)
			}
		case json.Number, bool:
		case json.Delim:
			if v != '[' {
				return nil, bad("metadata.%s: must be a string, number, boolean or array of strings", key)
			}
			for i := 0; dec.More(); i++ {
				t, err := dec.Token()
				if err != nil {
					return nil, bad("metadata.%s is not valid JSON: %v", key, err)
				}
				if e, ok := t.(string); !ok || strings.ContainsRune(e, 0) {
					return nil, bad("metadata.%s[%d]: must be a string (without NUL characters)", key, i)
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, bad("metadata.%s is not valid JSON: %v", key, err)
			}
		default: // null
			return nil, bad("metadata.%s: must be a string, number, boolean or array of strings", key)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("metadata is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bad("unexpected data after the metadata object")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, bad("metadata is not valid JSON: %v", err)
	}
	return out.Bytes(), nil
}

// metadataOrEmpty passes metadata to PostgreSQL, the empty object for none.
func metadataOrEmpty(m json.RawMessage) string {
	if len(m) == 0 {
		return "{}"
	}
	return string(m)
}

// SetMetadata replaces the metadata of document id of tenant with m (as [ParseMetadata]
// returns it) without touching its chunks or status, and returns the updated document;
// job.ErrNotFound if it is not the tenant's. Search filters see the new metadata at once.
func (s *Store) SetMetadata(ctx context.Context, tenantID string, id int64, m json.RawMessage) (*Document, error) {
	d, err := scanDocument(s.pool.QueryRow(ctx, `UPDATE documents SET metadata = $3::jsonb, updated_at = now()
		WHERE id = $1 AND tenant_id = $2 RETURNING `+documentColumns, id, tenantID, metadataOrEmpty(m)))
	if err != nil {
		return nil, fmt.Errorf("docstore: set metadata of document %d: %w", id, err)
	}
	return d, nil
}
