package cron

import (
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustCron(t *testing.T, v string) Job {
	t.Helper()
	j, err := ParseCron("cron", v)
	if err != nil {
		t.Fatalf("ParseCron(%q): %v", v, err)
	}
	return j
}

// The every-N semantics of uwsgi_cron_task_needs_execution: a field -N
// matches when the value is a multiple of N (so hour -5 is 0, 5, 10, 15, 20
// and, like uWSGI, not 5 hours after 20:00).
func TestMatchesEveryN(t *testing.T) {
	for _, c := range []struct {
		sched string
		at    string
		want  bool
	}{
		{"-1 -1 -1 -1 -1", "2026-12-02 13:07", true},
		{"-5 -1 -1 -1 -1", "2026-12-02 13:05", true},
		{"-5 -1 -1 -1 -1", "2026-12-02 13:00", true},
		{"-5 -1 -1 -1 -1", "2026-12-02 13:07", false},
		{"-15 -1 -1 -1 -1", "2026-12-02 13:45", true},
		{"-15 -1 -1 -1 -1", "2026-12-02 13:50", false},
		{"0 -5 -1 -1 -1", "2026-12-02 20:00", true},
		{"0 -5 -1 -1 -1", "2026-12-03 01:00", false},
		{"0 -5 -1 -1 -1", "2026-12-02 20:01", false},
		{"30 3 -1 -1 -1", "2026-12-02 03:30", true},
		{"30 3 -1 -1 -1", "2026-12-02 04:30", false},
		{"0 0 -2 -1 -1", "2026-12-02 00:00", true},  // even days
		{"0 0 -2 -1 -1", "2026-12-03 00:00", false}, // odd day
		{"0 0 1 -3 -1", "2026-12-01 00:00", true},   // December is a multiple of 3
		{"0 0 1 -3 -1", "2026-11-01 00:00", false},
		{"0 0 -1 -1 3", "2026-12-02 00:00", true},  // a Wednesday
		{"0 0 -1 -1 3", "2026-12-03 00:00", false}, // a Thursday
		{"0 0 -1 -1 7", "2026-12-06 00:00", true},  // 7 is Sunday
		{"0 0 -1 -1 0", "2026-12-06 00:00", true},
		{"0 0 -1 -1 -2", "2026-12-06 00:00", true},  // Sunday is 0, even
		{"0 0 -1 -1 -2", "2026-12-07 00:00", false}, // Monday
		// day and weekday both fixed: either one (crontab's OR).
		{"0 0 15 -1 1", "2026-12-15 00:00", true}, // the 15th, a Tuesday
		{"0 0 15 -1 1", "2026-12-07 00:00", true}, // a Monday
		{"0 0 15 -1 1", "2026-12-08 00:00", false},
		// one of them every-N: both must match.
		{"0 0 -2 -1 1", "2026-12-14 00:00", true},  // even day and Monday
		{"0 0 -2 -1 1", "2026-12-07 00:00", false}, // Monday, odd day
	} {
		j := mustCron(t, c.sched+" true")
		if got := j.Schedule.Matches(at(c.at)); got != c.want {
			t.Errorf("%s at %s (%s): got %v, want %v", c.sched, c.at, at(c.at).Weekday(), got, c.want)
		}
	}
}

// Within an hour, minute -N runs 60/N times when N divides 60, and at
// minute 0 too when it does not (the multiples restart every hour).
func TestEveryNCountsPerHour(t *testing.T) {
	for n, want := range map[int]int{1: 60, 2: 30, 5: 12, 15: 4, 7: 9, 59: 2} {
		s := Schedule{-n, -1, -1, -1, -1}
		got := 0
		for m, base := 0, at("2026-12-02 13:00"); m < 60; m++ {
			if s.Matches(base.Add(time.Duration(m) * time.Minute)) {
				got++
			}
		}
		if got != want {
			t.Errorf("minute -%d: %d runs an hour, want %d", n, got, want)
		}
	}
}

func TestParseCron(t *testing.T) {
	j := mustCron(t, "  -5  3\t-1 -1 -1   /usr/bin/php  artisan schedule:run >/dev/null ")
	if j.Schedule != (Schedule{-5, 3, -1, -1, -1}) || j.Command != "/usr/bin/php  artisan schedule:run >/dev/null" || j.Unique {
		t.Errorf("got %+v", j)
	}
	u, err := ParseCron("unique-cron", "-1 -1 -1 -1 -1 sleep 100")
	if err != nil || !u.Unique || u.Command != "sleep 100" {
		t.Errorf("unique-cron: %+v, %v", u, err)
	}
	if j.Key() == u.Key() {
		t.Error("different jobs have one key")
	}
}

func TestParseCronErrors(t *testing.T) {
	for v, want := range map[string]string{
		"":                         "the minute field is missing",
		"-1 -1 -1 -1":              "the week field is missing",
		"-1 -1 -1 -1 -1":           "no command",
		"-1 -1 -1 -1 -1   ":        "no command",
		"60 -1 -1 -1 -1 true":      "minute 60 is out of range (0-59, -1 for any, -N for every N minutes)",
		"-60 -1 -1 -1 -1 true":     "minute -60 is out of range",
		"0 24 -1 -1 -1 true":       "hour 24 is out of range",
		"0 0 0 -1 -1 true":         "day 0 is out of range (1-31",
		"0 0 -1 13 -1 true":        "month 13 is out of range",
		"0 0 -1 -1 8 true":         "week 8 is out of range (0-7, 0 and 7 are Sunday",
		"*/5 -1 -1 -1 -1 true":     `minute "*/5" is crontab syntax`,
		"0 1-5 -1 -1 -1 true":      `hour "1-5" is crontab syntax`,
		"0,30 -1 -1 -1 -1 true":    `minute "0,30" is crontab syntax`,
		"x -1 -1 -1 -1 true":       `minute "x" is not a number`,
		"-1 -1 -1 -1 monday true":  `week "monday" is not a number`,
		"-1 -1 -1 -1 -1true":       `week "-1true" is not a number`,
		"0 0 -1 -1 -8 echo hello!": "week -8 is out of range",
	} {
		_, err := ParseCron("cron", v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCron(%q) = %v, want an error with %q", v, err, want)
		}
	}
}

func TestParseCron2(t *testing.T) {
	for v, want := range map[string]Job{
		"echo hello":       {Option: "cron2", Schedule: Every, Command: "echo hello"},
		"/usr/bin/backup":  {Option: "cron2", Schedule: Every, Command: "/usr/bin/backup"},
		"minute=-5 run.sh": {Option: "cron2", Schedule: Schedule{-5, -1, -1, -1, -1}, Command: "run.sh"},
		"hour=3,minute=30,unique=1,harakiri=600 /app/backup.sh --all": {Option: "cron2",
			Schedule: Schedule{30, 3, -1, -1, -1}, Command: "/app/backup.sh --all", Unique: true, Harakiri: 10 * time.Minute},
		"day=1,month=-3,week=-1 report": {Option: "cron2", Schedule: Schedule{-1, -1, 1, -3, -1}, Command: "report"},
		"harakiri=0,unique=true x":      {Option: "cron2", Schedule: Every, Command: "x", NoHarakiri: true, Unique: true},
		"unique=0 x":                    {Option: "cron2", Schedule: Every, Command: "x"},
	} {
		got, err := ParseCron2(v)
		if err != nil || got != want {
			t.Errorf("ParseCron2(%q) = %+v, %v; want %+v", v, got, err, want)
		}
	}
}

func TestParseCron2Errors(t *testing.T) {
	for v, want := range map[string]string{
		"":                           "got no command",
		"minute=5":                   "no command after the key=value list",
		"minute=5,hour=3   ":         "no command after the key=value list",
		"minute=61 x":                "minute 61 is out of range",
		"minute=abc x":               `minute "abc" is not a number`,
		"minite=5 x":                 `unknown key "minite" (keys: minute, hour, day, month, week, unique, harakiri)`,
		"minute=5,,hour=1 x":         `"" is not key=value`,
		"minute=5,hour x":            `"hour" is not key=value`,
		"minute=5,minute=6 x":        "minute is given twice",
		"harakiri=-1 x":              "harakiri \"-1\" is not a number of seconds",
		"harakiri=10s x":             "harakiri \"10s\" is not a number of seconds",
		"unique=maybe x":             `unique "maybe" is not 0 or 1`,
		"legion=mylegion,minute=1 x": "legion= is not supported",
	} {
		_, err := ParseCron2(v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCron2(%q) = %v, want an error with %q", v, err, want)
		}
	}
}
