package doctype

import "encoding/json"

// Location is where a piece of text sits in its document: the page of a PDF, the slide of a
// presentation, the sheet and row range of a spreadsheet or table, the chapter of an e-book.
// Fields that do not apply are zero and left out of its JSON form ({"page":3},
// {"sheet":"Sales","row_start":2,"row_end":41}).
type Location struct {
	// Page is the 1-based page (PDF).
	Page int `json:"page,omitempty"`
	// Slide is the 1-based slide (PPTX, ODP).
	Slide int `json:"slide,omitempty"`
	// Sheet is the sheet's name (XLSX, ODS); empty for CSV and TSV, which have one table.
	Sheet string `json:"sheet,omitempty"`
	// RowStart and RowEnd are the 1-based rows covered, as the spreadsheet numbers them (the
	// header row is row 1 when there is one).
	RowStart int `json:"row_start,omitempty"`
	RowEnd   int `json:"row_end,omitempty"`
	// Chapter is the 1-based position of the chapter in the reading order (EPUB spine).
	Chapter int `json:"chapter,omitempty"`
}

// IsZero reports whether l records no position.
func (l Location) IsZero() bool { return l == Location{} }

// Extend widens l, the location of the start of a run of text, to cover next, the location
// of text after it: a row range grows when both are in the same sheet. Other fields keep
// where the text starts.
func (l Location) Extend(next Location) Location {
	if l.RowStart > 0 && next.RowEnd > l.RowEnd && next.Sheet == l.Sheet && next.Slide == l.Slide && next.Chapter == l.Chapter {
		l.RowEnd = next.RowEnd
	}
	return l
}

// JSON returns the JSON form of l, or nil when l is zero (stored as SQL NULL).
func (l Location) JSON() []byte {
	if l.IsZero() {
		return nil
	}
	b, _ := json.Marshal(l) // a struct of ints and a string cannot fail to marshal
	return b
}
