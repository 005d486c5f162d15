package main

import (
	"fmt"
	"io"
	"strings"
)

// row is one line of the results table. Raw and Goal may be empty.
type row struct {
	Figure string
	Quire  string
	Raw    string
	Ratio  string
	Goal   string
	Met    string
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func writeTable(w io.Writer, rows []row) {
	head := row{"figure", "Quire", "raw JetStream / reference", "ratio", "goal", "met?"}
	cells := func(r row) []string { return []string{r.Figure, r.Quire, r.Raw, r.Ratio, r.Goal, r.Met} }
	fmt.Fprintln(w, "| "+strings.Join(cells(head), " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat("---|", 6))
	for _, r := range rows {
		c := cells(r)
		for i := range c {
			if c[i] == "" {
				c[i] = "–"
			}
		}
		fmt.Fprintln(w, "| "+strings.Join(c, " | ")+" |")
	}
}
