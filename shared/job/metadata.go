package job

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Metadata is a JSON object carried as its compact text (so that a [Job] stays comparable).
// The empty Metadata is no object at all; encoded it is left out of a job, and JSON null
// decodes to it. Any other value than an object or null fails to decode.
type Metadata string

// MarshalJSON returns the object's text, or null for the empty Metadata.
func (m Metadata) MarshalJSON() ([]byte, error) {
	if m == "" {
		return []byte("null"), nil
	}
	return []byte(m), nil
}

// UnmarshalJSON keeps a JSON object in the compact, HTML-escaped form that encoding/json
// writes it back in, so a decoded job encodes to the same bytes.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*m = ""
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return errors.New("job: metadata is not a JSON object")
	}
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		return err
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	*m = Metadata(escaped.String())
	return nil
}
