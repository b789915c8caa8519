package fileserver

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestParseGfapiLine(t *testing.T) {
	for _, c := range []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"[2026-12-02 10:00:00.123456 +0000] E [MSGID: 114058] [client-handshake.c:1457:client_query_portmap_cbk] 0-v-client-0: failed to get the port number",
			slog.LevelError, "[MSGID: 114058] [client-handshake.c:1457:client_query_portmap_cbk] 0-v-client-0: failed to get the port number"},
		{"[2026-12-02 10:00:00.1 +0000] W [socket.c:1] 0-x: warned", slog.LevelWarn, "[socket.c:1] 0-x: warned"},
		{"[2026-12-02 10:00:00.1 +0000] I [x.c:1] 0-x: told", slog.LevelInfo, "[x.c:1] 0-x: told"},
		{"[2026-12-02 10:00:00.1 +0000] D [x.c:1] 0-x: debug", slog.LevelDebug, "[x.c:1] 0-x: debug"},
		{"[2026-12-02 10:00:00.1 +0000] C [x.c:1] 0-x: critical", slog.LevelError, "[x.c:1] 0-x: critical"},
		{"pending frames:", slog.LevelInfo, "pending frames:"},
		{"[odd", slog.LevelInfo, "[odd"},
		{"[t] ", slog.LevelInfo, "[t] "},
		{"[t] Q x", slog.LevelInfo, "[t] Q x"},
	} {
		level, msg := parseGfapiLine(c.line)
		if level != c.level || msg != c.msg {
			t.Errorf("parseGfapiLine(%q) = %v %q, want %v %q", c.line, level, msg, c.level, c.msg)
		}
	}
}

// Lines written to the pipe arrive as records of the given logger: its
// attrs (vassal, volume), source=libgfapi, the line's level.
func TestGfapiLogRecords(t *testing.T) {
	recs := make(chan slog.Record, 8)
	var attrs []slog.Attr
	h := attrHandler{recs: recs, attrs: &attrs}
	l, err := newGfapiLog(slog.New(h).With("vassal", "v1", "volume", "vol"))
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 3*gfapiLogMaxLine)
	if _, err := l.w.WriteString("[2026-12-02 10:00:00.1 +0000] E [x.c:1] 0-vol: it broke\n" + long + "\nlast\n"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	var got []slog.Record
	for len(got) < 3 {
		select {
		case r := <-recs:
			got = append(got, r)
		case <-time.After(time.Minute):
			t.Fatalf("got %d records, want 3", len(got))
		}
	}
	<-l.done
	if got[0].Level != slog.LevelError || got[0].Message != "[x.c:1] 0-vol: it broke" {
		t.Fatalf("first record: %v %q", got[0].Level, got[0].Message)
	}
	if len(got[1].Message) != gfapiLogMaxLine+3 || !strings.HasSuffix(got[1].Message, "...") {
		t.Fatalf("an overlong line was not cut: %d bytes", len(got[1].Message))
	}
	if got[2].Message != "last" {
		t.Fatalf("after the overlong line: %q", got[2].Message)
	}
	want := map[string]string{"vassal": "v1", "volume": "vol", "source": "libgfapi"}
	for _, a := range attrs {
		if want[a.Key] == a.Value.String() {
			delete(want, a.Key)
		}
	}
	if len(want) > 0 {
		t.Fatalf("records lack %v (attrs %v)", want, attrs)
	}
}

// A log that does not keep up never blocks libgfapi's writes: lines are
// dropped, counted, and the count is logged.
func TestGfapiLogNeverBlocksTheWriter(t *testing.T) {
	unblock := make(chan struct{})
	recs := make(chan slog.Record, 1<<16)
	l, err := newGfapiLog(slog.New(blockingHandler{unblock: unblock, recs: recs}))
	if err != nil {
		t.Fatal(err)
	}
	line := "[2026-12-02 10:00:00.1 +0000] E [x.c:1] 0-vol: " + strings.Repeat("y", 200) + "\n"
	// Far more than the pipe (64 KiB) and the queue hold together.
	for range 20000 {
		if _, err := l.w.WriteString(line); err != nil {
			t.Fatal(err)
		}
	}
	if l.dropped.Load() == 0 {
		t.Fatal("nothing was dropped, yet the handler is blocked")
	}
	close(unblock)
	l.Close()
	<-l.done
	close(recs)
	var sawDrops bool
	for r := range recs {
		if strings.Contains(r.Message, "dropped") {
			sawDrops = true
		}
	}
	if !sawDrops {
		t.Fatal("the dropped lines were not reported")
	}
}

type attrHandler struct {
	recs  chan slog.Record
	attrs *[]slog.Attr
	with  []slog.Attr
}

func (h attrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h attrHandler) Handle(_ context.Context, r slog.Record) error {
	*h.attrs = append(*h.attrs, h.with...)
	h.recs <- r
	return nil
}
func (h attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.with = append(append([]slog.Attr(nil), h.with...), as...)
	return h
}
func (h attrHandler) WithGroup(string) slog.Handler { return h }

type blockingHandler struct {
	unblock chan struct{}
	recs    chan slog.Record
}

func (h blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h blockingHandler) Handle(_ context.Context, r slog.Record) error {
	<-h.unblock
	h.recs <- r
	return nil
}
func (h blockingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h blockingHandler) WithGroup(string) slog.Handler      { return h }
