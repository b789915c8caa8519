package reexec

import (
	"fmt"
	"io"
	"log/slog"
)

// LogFormat is the format of the log lines on the stderr that the emperor
// and every vassal's PID 1 share. The emperor sends its own in the start
// message, so that the stream is in one format (--log-format).
type LogFormat string

// The log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// ParseLogFormat reads a --log-format value; empty is text.
func ParseLogFormat(s string) (LogFormat, error) {
	switch LogFormat(s) {
	case LogText, "":
		return LogText, nil
	case LogJSON:
		return LogJSON, nil
	}
	return "", fmt.Errorf("log format %q: use text or json", s)
}

// Handler writes slog records to w in the format (text unless json).
func (f LogFormat) Handler(w io.Writer) slog.Handler {
	if f == LogJSON {
		return slog.NewJSONHandler(w, nil)
	}
	return slog.NewTextHandler(w, nil)
}
