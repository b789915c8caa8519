package vassalfile

import (
	"strings"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/cron"
)

// TestCronOptions: cron, unique-cron and cron2 decode in file order with
// their lines; cron-harakiri has its documented default.
func TestCronOptions(t *testing.T) {
	s, err := Decode(mustParse(t, `[uwsgi]
cron = -5 -1 -1 -1 -1 /app/bin/poll
unique-cron = 0 3 -1 -1 -1 /app/bin/backup
cron2 = minute=30,harakiri=60 /app/bin/report
`, ParseOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	want := []cron.Job{
		{Option: "cron", Schedule: cron.Schedule{Minute: -5, Hour: -1, Day: -1, Month: -1, Week: -1}, Command: "/app/bin/poll", Line: 2, Ref: "2"},
		{Option: "unique-cron", Schedule: cron.Schedule{Minute: 0, Hour: 3, Day: -1, Month: -1, Week: -1}, Command: "/app/bin/backup", Unique: true, Line: 3, Ref: "3"},
		{Option: "cron2", Schedule: cron.Schedule{Minute: 30, Hour: -1, Day: -1, Month: -1, Week: -1}, Command: "/app/bin/report", Harakiri: time.Minute, Line: 4, Ref: "4"},
	}
	if len(s.Crons) != len(want) {
		t.Fatalf("crons: %+v", s.Crons)
	}
	for i := range want {
		if s.Crons[i] != want[i] {
			t.Errorf("job %d: got %+v, want %+v", i, s.Crons[i], want[i])
		}
	}
	if s.CronHarakiri != DefaultCronHarakiri || DefaultCronHarakiri != time.Hour {
		t.Errorf("cron-harakiri default: %v", s.CronHarakiri)
	}
	s, err = Decode(mustParse(t, "[uwsgi]\ncron-harakiri = 0\n", ParseOptions{}))
	if err != nil || s.CronHarakiri != 0 {
		t.Fatalf("cron-harakiri = 0: %v, %v", s.CronHarakiri, err)
	}
}

// TestCronErrorsNameTheLine: every bad cron line is reported at once, with
// its line and what to write; legion crons are refused clearly.
func TestCronErrorsNameTheLine(t *testing.T) {
	_, err := parse(t, `[uwsgi]
cron = */5 * * * * /app/poll
unique-cron = 0 3 -1 -1 -1
cron2 = minite=5 /app/x
legion-cron = mylegion -1 -1 -1 -1 -1 /app/x
cron-legion = mylegion -1 -1 -1 -1 -1 /app/x
unique-legion-cron = mylegion -1 -1 -1 -1 -1 /app/x
cron2 = legion=mylegion /app/x
cron-harakiri = forever
`, ParseOptions{})
	d := diags(t, err)
	want := []struct {
		line int
		text string
	}{
		{2, `cron: minute "*/5" is crontab syntax: uWSGI's cron takes numbers (-1 for *, -N for */N`},
		{3, "unique-cron: wants MINUTE HOUR DAY MONTH WEEKDAY COMMAND (-1 for any, -N for every N), got \"0 3 -1 -1 -1\": no command"},
		{4, `cron2: unknown key "minite" (keys: minute, hour, day, month, week, unique, harakiri)`},
		{5, "legion-cron is not supported: every vassal runs its own jobs; write cron = MINUTE HOUR DAY MONTH WEEKDAY COMMAND"},
		{6, "legion-cron is not supported"},
		{7, "write unique-cron = MINUTE"},
		{8, "legion= is not supported"},
		{9, `cron-harakiri: "forever" is not a duration`},
	}
	if len(d) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(d), len(want), err)
	}
	for i, w := range want {
		if d[i].Line != w.line || !strings.Contains(d[i].Message, w.text) {
			t.Errorf("error %d: got %v, want line %d with %q", i, d[i], w.line, w.text)
		}
	}
}
