// Package cron reads uWSGI 2.0's cron options (cron, unique-cron, cron2) and
// decides, for a wall-clock minute, which jobs are due. It is uWSGI's
// core/cron.c and uwsgi_cron_task_needs_execution (core/master_utils.c),
// with the values checked: uWSGI reads fields with sscanf/atoi and never
// says that a field is out of range (such a job just never runs), nor that a
// cron2 key is misspelt (it is ignored).
//
// A field is a number in its range, or a negative number: -1 is any, -N is
// every N (the field's value is a multiple of N: minute -5 is 0, 5, 10, ...;
// month -3 is March, June, September, December). When both day and weekday
// are fixed (not negative) a job runs on either, as in crontab(5);
// otherwise every field must match. Weekday 7 is Sunday, as 0 is.
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is the five fields of a job, with uWSGI's meaning.
type Schedule struct {
	Minute, Hour, Day, Month, Week int
}

// Every is the schedule that matches every minute (-1 -1 -1 -1 -1), the
// default of cron2.
var Every = Schedule{-1, -1, -1, -1, -1}

// field is one schedule field: its name and range.
type field struct {
	name, unit string
	lo, hi     int
	ptr        func(*Schedule) *int
}

var fields = []field{
	{"minute", "minutes", 0, 59, func(s *Schedule) *int { return &s.Minute }},
	{"hour", "hours", 0, 23, func(s *Schedule) *int { return &s.Hour }},
	{"day", "days", 1, 31, func(s *Schedule) *int { return &s.Day }},
	{"month", "months", 1, 12, func(s *Schedule) *int { return &s.Month }},
	{"week", "weekdays", 0, 7, func(s *Schedule) *int { return &s.Week }},
}

// set checks and stores one field's value as written.
func (f field) set(s *Schedule, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%s %q is not a number (%s)", f.name, v, f.help())
	}
	// -N means every N: N past the field's size means nothing more
	// (every 60 minutes is minute 0 only), so it is refused as a typo.
	if n > f.hi || (n >= 0 && n < f.lo) || n < -f.hi {
		return fmt.Errorf("%s %d is out of range (%s)", f.name, n, f.help())
	}
	*f.ptr(s) = n
	return nil
}

func (f field) help() string {
	r := fmt.Sprintf("%d-%d", f.lo, f.hi)
	if f.name == "week" {
		r = "0-7, 0 and 7 are Sunday"
	}
	return fmt.Sprintf("%s, -1 for any, -N for every N %s", r, f.unit)
}

// Matches says whether the job is due in the minute of t, read in t's
// location (PID 1 passes local time, as uWSGI's localtime()). It is
// uwsgi_cron_task_needs_execution.
func (s Schedule) Matches(t time.Time) bool {
	min, hour, mday, mon, wday := t.Minute(), t.Hour(), t.Day(), int(t.Month()), int(t.Weekday())
	week := s.Week
	if week == 7 {
		week = 0
	}
	at := func(want, have int) bool {
		if want < 0 {
			return have%(-want) == 0
		}
		return want == have
	}
	ok := at(s.Minute, min) && at(s.Hour, hour) && at(s.Month, mon)
	if s.Day >= 0 && s.Week >= 0 {
		// Both fixed: either one, as in crontab(5).
		return ok && (s.Day == mday || week == wday)
	}
	return ok && at(s.Day, mday) && at(week, wday)
}

// String writes the schedule as cron's five fields.
func (s Schedule) String() string {
	return fmt.Sprintf("%d %d %d %d %d", s.Minute, s.Hour, s.Day, s.Month, s.Week)
}

// Job is one cron, unique-cron or cron2 line.
type Job struct {
	// Option is the option that defined the job: cron, unique-cron, cron2.
	Option   string
	Schedule Schedule
	Command  string
	// Unique jobs never overlap themselves: a run is skipped while the
	// previous one is still running.
	Unique bool
	// Harakiri bounds a run (cron2's harakiri=N); 0 leaves it to the
	// vassal's cron-harakiri. NoHarakiri is cron2's harakiri=0: no bound.
	Harakiri   time.Duration
	NoHarakiri bool
	Line       int
	Ref        string // Line for messages: "7", or "base.ini:7" in an included file
}

// Key identifies a job across reloads: two lines that define the same job
// (the same option, schedule, command and settings) are the same job, on
// whichever line they are.
func (j Job) Key() string {
	return fmt.Sprintf("%s|%s|%t|%d|%t|%s", j.Option, j.Schedule, j.Unique, j.Harakiri, j.NoHarakiri, j.Command)
}

const classicSyntax = "MINUTE HOUR DAY MONTH WEEKDAY COMMAND (-1 for any, -N for every N)"

// ParseCron reads a cron or unique-cron value: five fields, then the
// command (the rest of the line, run by /bin/sh -c).
func ParseCron(option, v string) (Job, error) {
	j := Job{Option: option, Unique: option == "unique-cron"}
	rest := v
	for _, f := range fields {
		rest = strings.TrimLeft(rest, " \t")
		word := rest
		if i := strings.IndexAny(rest, " \t"); i >= 0 {
			word, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		if word == "" {
			return j, fmt.Errorf("wants %s, got %q: the %s field is missing", classicSyntax, v, f.name)
		}
		if err := f.set(&j.Schedule, word); err != nil {
			if strings.ContainsAny(word, "*/,") || strings.LastIndex(word, "-") > 0 {
				return j, fmt.Errorf("%s %q is crontab syntax: uWSGI's %s takes numbers (-1 for *, -N for */N; no lists or ranges)", f.name, word, option)
			}
			return j, err
		}
	}
	j.Command = strings.TrimSpace(rest)
	if j.Command == "" {
		return j, fmt.Errorf("wants %s, got %q: no command", classicSyntax, v)
	}
	return j, nil
}

// cron2Keys are the keys cron2 knows; legion is uWSGI's and refused.
const cron2Keys = "minute, hour, day, month, week, unique, harakiri"

// ParseCron2 reads a cron2 value: an optional first word of key=value
// pairs separated by commas (minute, hour, day, month, week, unique,
// harakiri; a field left out is -1), then the command. A value whose first
// word has no = is all command: it runs every minute.
func ParseCron2(v string) (Job, error) {
	j := Job{Option: "cron2", Schedule: Every}
	v = strings.TrimSpace(v)
	first, rest, _ := strings.Cut(v, " ")
	if !strings.Contains(first, "=") {
		j.Command = v
		if j.Command == "" {
			return j, fmt.Errorf("wants [KEY=VALUE,...] COMMAND (keys: %s), got no command", cron2Keys)
		}
		return j, nil
	}
	j.Command = strings.TrimSpace(rest)
	if j.Command == "" {
		return j, fmt.Errorf("wants [KEY=VALUE,...] COMMAND (keys: %s), got %q: no command after the key=value list", cron2Keys, v)
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(first, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return j, fmt.Errorf("%q is not key=value (keys: %s)", kv, cron2Keys)
		}
		if seen[k] {
			return j, fmt.Errorf("%s is given twice", k)
		}
		seen[k] = true
		if err := j.setKey(k, val); err != nil {
			return j, err
		}
	}
	return j, nil
}

func (j *Job) setKey(k, val string) error {
	for _, f := range fields {
		if f.name == k {
			return f.set(&j.Schedule, val)
		}
	}
	switch k {
	case "unique":
		// uWSGI reads an integer (non-zero is unique); the usual
		// boolean words are accepted too.
		switch strings.ToLower(val) {
		case "1", "true", "yes", "on":
			j.Unique = true
			return nil
		case "0", "false", "no", "off":
			j.Unique = false
			return nil
		}
		if n, err := strconv.Atoi(val); err == nil {
			j.Unique = n != 0
			return nil
		}
		return fmt.Errorf("unique %q is not 0 or 1", val)
	case "harakiri":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 || n > MaxHarakiriSeconds {
			return fmt.Errorf("harakiri %q is not a number of seconds from 0 to %d (0: no bound)", val, MaxHarakiriSeconds)
		}
		if n == 0 {
			j.NoHarakiri = true
		} else {
			j.Harakiri = time.Duration(n) * time.Second
		}
		return nil
	case "legion":
		return fmt.Errorf("legion= is not supported: uWSGI's legions (a cluster electing the instance that runs the job) are not part of this emperor; every vassal runs its own jobs, so drop legion= or give the job to one vassal only")
	}
	return fmt.Errorf("unknown key %q (keys: %s)", k, cron2Keys)
}

// MaxHarakiriSeconds bounds cron2's harakiri= (a week).
const MaxHarakiriSeconds = 7 * 24 * 3600
