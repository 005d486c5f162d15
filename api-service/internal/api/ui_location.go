package api

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/quirehq/quire/shared/doctype"
)

// locationText renders a chunk's stored location for the dashboard: "page 3", "slide 2",
// "sheet Sales, rows 2–41", "chapter 4"; "" when it has none or cannot be read.
func locationText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var l doctype.Location
	if err := json.Unmarshal(raw, &l); err != nil {
		return ""
	}
	var parts []string
	if l.Page > 0 {
		parts = append(parts, fmt.Sprintf("page %d", l.Page))
	}
	if l.Slide > 0 {
		parts = append(parts, fmt.Sprintf("slide %d", l.Slide))
	}
	if l.Chapter > 0 {
		parts = append(parts, fmt.Sprintf("chapter %d", l.Chapter))
	}
	if l.Sheet != "" {
		parts = append(parts, "sheet "+l.Sheet)
	}
	switch {
	case l.RowStart > 0 && l.RowEnd > l.RowStart:
		parts = append(parts, fmt.Sprintf("rows %d–%d", l.RowStart, l.RowEnd))
	case l.RowStart > 0:
		parts = append(parts, fmt.Sprintf("row %d", l.RowStart))
	}
	return strings.Join(parts, ", ")
}
