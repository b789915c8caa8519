package vassal

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// A line far over logRecordMax is logged in bounded parts, and the pipe is
// read to its end: what the daemon writes after it still reaches the log.
func TestLogLinesSplitsLongLines(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	done := make(chan struct{})
	go func() { logLines(r, log); close(done) }()
	long := strings.Repeat("a", 3*logRecordMax+10)
	exact := strings.Repeat("b", 2*logRecordMax)
	if _, err := w.WriteString(long + "\nafter\r\n" + exact + "\nlast without newline"); err != nil {
		t.Fatalf("write: %v (the reader must never close the pipe early)", err)
	}
	w.Close()
	<-done
	type rec struct {
		Msg       string `json:"msg"`
		Part      int    `json:"line_part"`
		Continues *bool  `json:"line_continues"`
	}
	var recs []rec
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var x rec
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, x)
	}
	if len(recs) != 8 {
		t.Fatalf("got %d records, want 4 parts, a line, 2 parts, a line", len(recs))
	}
	var joined string
	for i, x := range recs[:4] {
		if len(x.Msg) > logRecordMax {
			t.Errorf("part %d is %d bytes, over %d", i+1, len(x.Msg), logRecordMax)
		}
		if x.Part != i+1 || x.Continues == nil || *x.Continues != (i < 3) {
			t.Errorf("record %d: part %d continues %v", i, x.Part, x.Continues)
		}
		joined += x.Msg
	}
	if joined != long {
		t.Errorf("the parts do not add up to the line (%d bytes, want %d)", len(joined), len(long))
	}
	if recs[4].Msg != "after" || recs[4].Part != 0 || recs[7].Msg != "last without newline" {
		t.Errorf("lines after the long one: %+v %+v", recs[4], recs[7])
	}
	// A line of exactly two parts: the second says it is the last, and
	// no empty record follows.
	if recs[5].Part != 1 || !*recs[5].Continues || recs[6].Part != 2 || *recs[6].Continues || recs[5].Msg+recs[6].Msg != exact {
		t.Errorf("a line of exactly 2 parts: %d/%v %d/%v", recs[5].Part, *recs[5].Continues, recs[6].Part, *recs[6].Continues)
	}
}
