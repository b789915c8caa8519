package fileserver

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
)

// gfapiLog carries libgfapi's own log lines into the vassal's log, each as
// a record of the logger it was given (so with vassal=NAME and the volume)
// and source=libgfapi, at the level of the line.
//
// libgfapi writes with a blocking write(2) from whichever of its threads
// logs, holding its log lock: if nobody drained the pipe, every libgfapi
// thread would stop at its next log line. So the reader only reads and
// queues; a line that finds the queue full is dropped and counted, and the
// count is logged once the queue has room again.
type gfapiLog struct {
	w       *os.File // the pipe's write end, lent to every glfs_t (see gfapi.Volume.SetLoggingFD)
	queue   chan string
	dropped atomic.Int64
	done    chan struct{} // closed when the last line has been logged
}

const (
	gfapiLogQueue   = 256
	gfapiLogMaxLine = 4096 // longer lines are cut (marked with "...")
)

func newGfapiLog(log *slog.Logger) (*gfapiLog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe for libgfapi's log: %w", err)
	}
	l := &gfapiLog{w: w, queue: make(chan string, gfapiLogQueue), done: make(chan struct{})}
	go l.read(r)
	go l.write(log.With("source", "libgfapi"))
	return l, nil
}

// fd is the descriptor to give to SetLoggingFD.
func (l *gfapiLog) fd() int { return int(l.w.Fd()) }

// Close gives up our write end. The reader ends when every glfs_t that was
// given the pipe has been finalized too (glfs_fini closes its copy).
func (l *gfapiLog) Close() { l.w.Close() }

func (l *gfapiLog) read(r *os.File) {
	defer close(l.queue)
	defer r.Close()
	br := bufio.NewReaderSize(r, gfapiLogMaxLine)
	for {
		line, isPrefix, err := br.ReadLine()
		if err != nil {
			return
		}
		s := string(line)
		if isPrefix {
			s += "..."
			for isPrefix && err == nil { // skip the rest of an overlong line
				_, isPrefix, err = br.ReadLine()
			}
		}
		if s == "" {
			continue
		}
		select {
		case l.queue <- s:
		default:
			l.dropped.Add(1)
		}
	}
}

func (l *gfapiLog) write(log *slog.Logger) {
	defer close(l.done)
	for s := range l.queue {
		if n := l.dropped.Swap(0); n > 0 {
			log.Warn("libgfapi log lines dropped: the log could not keep up", "lines", n)
		}
		level, msg := parseGfapiLine(s)
		log.Log(context.Background(), level, msg)
	}
	if n := l.dropped.Swap(0); n > 0 {
		log.Warn("libgfapi log lines dropped: the log could not keep up", "lines", n)
	}
}

// parseGfapiLine reads a GlusterFS log line,
//
//	[2026-12-02 10:00:00.123456 +0000] E [MSGID: 114058] [client-handshake.c:1457:...] 0-vol-client-0: failed ...
//
// into its level and the text after the level letter (the record has its
// own time). A line of another shape is logged whole at info.
func parseGfapiLine(s string) (slog.Level, string) {
	if !strings.HasPrefix(s, "[") {
		return slog.LevelInfo, s
	}
	i := strings.Index(s, "] ")
	if i < 0 || len(s) < i+4 || s[i+3] != ' ' {
		return slog.LevelInfo, s
	}
	msg := s[i+4:]
	switch s[i+2] {
	case 'E', 'C', 'A', 'M':
		return slog.LevelError, msg
	case 'W':
		return slog.LevelWarn, msg
	case 'N', 'I':
		return slog.LevelInfo, msg
	case 'D', 'T':
		return slog.LevelDebug, msg
	}
	return slog.LevelInfo, s
}
