// Package logging builds the services' structured JSON loggers.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ParseLevel parses LOG_LEVEL: debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", s)
	}
	return l, nil
}

// New returns a JSON logger writing to w at level, tagged with the service name.
func New(w io.Writer, level, service string) (*slog.Logger, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("service", service), nil
}
