package vassalfile

import (
	"fmt"
	"time"

	"github.com/emperor-dev/emperor/cron"
)

// cronDoc is what the cron options share in the reference.
const cronDoc = " A job runs in the vassal's jail as its user, in its directory and environment, through /bin/sh -c, in a process group of its own; its output goes to the vassal's log with the line of the job. PID 1 checks at second 0 of every minute (local time), and at start and reload for the current minute. A run is bounded by cron-harakiri (or cron2's harakiri=). See docs/cron.md."

func parseCronOpt(option string) func(string) (any, error) {
	return func(v string) (any, error) { return cron.ParseCron(option, v) }
}

func parseCron2(v string) (any, error) { return cron.ParseCron2(v) }

// refuseLegion rejects uWSGI's legion crons with what to write instead.
func refuseLegion(option, instead string) func(string) (any, error) {
	return func(string) (any, error) {
		return nil, fmt.Errorf("uWSGI's legions (a cluster that elects the instance that runs the job) are not part of this emperor, so %s is not supported: every vassal runs its own jobs; write %s = MINUTE HOUR DAY MONTH WEEKDAY COMMAND (without the legion name) in the one vassal that should run it", option, instead)
	}
}

// DefaultCronHarakiri is cron-harakiri's default: a hung job is killed
// after an hour. uWSGI's default is no bound.
const DefaultCronHarakiri = time.Hour

func init() {
	register(
		&Option{Name: "cron", Scope: ScopeVassal, Kind: KindString, List: true, Parse: parseCronOpt("cron"),
			Default: "(none)",
			Doc:     "MINUTE HOUR DAY MONTH WEEKDAY COMMAND: run COMMAND when the five fields match: a number, -1 for any, -N for every N (minute -5: every 5 minutes; hour -2: even hours). When day and weekday are both fixed either one matches; weekday 0 and 7 are Sunday. Runs of one job may overlap (see unique-cron)." + cronDoc,
			UWSGI:   "Same syntax and matching. Out-of-range fields and crontab syntax (*/5, 1-5, lists) are errors with the file's line (uWSGI accepts them and never runs the job). Runs start at second 0 of the minute (uWSGI: within the minute, at least 60 s after the previous run, so an every-minute job drifts to the second it first ran). A reload keeps the jobs that did not change, with their runs and last run time (uWSGI restarts its master and runs every job due in the current minute again). The job's leftovers in its process group are not killed when it exits, as in uWSGI; harakiri and stop kill the whole group. A job inherits no sockets."},
		&Option{Name: "unique-cron", Scope: ScopeVassal, Kind: KindString, List: true, Parse: parseCronOpt("unique-cron"),
			Default: "(none)",
			Doc:     "Like cron, but the job never overlaps itself: a due run is skipped (and logged) while the previous run still runs; it runs again at the next matching minute after that run ended." + cronDoc,
			UWSGI:   "Same as uWSGI (a skipped run is logged here); see cron for the other differences."},
		&Option{Name: "cron2", Scope: ScopeVassal, Kind: KindString, List: true, Parse: parseCron2,
			Default: "(none)",
			Doc:     "[KEY=VALUE,...] COMMAND: the key=value form of cron. Keys: minute, hour, day, month, week (each -1 when left out, so a bare command runs every minute), unique=1 (as unique-cron), harakiri=N (seconds a run may take before its process group is killed; 0: no bound; default cron-harakiri)." + cronDoc,
			UWSGI:   "Unknown keys, a repeated key and values that are not numbers are errors (uWSGI ignores unknown keys and reads a bad number as 0). legion= is refused (no legions here). unique also takes true/false."},
		&Option{Name: "cron-harakiri", Scope: ScopeVassal, Kind: KindSeconds, Min: 0, Max: 7 * 24 * time.Hour,
			Default: seconds(DefaultCronHarakiri),
			Doc:     "How long a run of a cron job may take. A run still going after that is reported (a log line with the job's line, command, pid and runtime) and killed with its process group (SIGKILL). 0: no bound. cron2's harakiri= overrides it for one job.",
			UWSGI:   "uWSGI's default is 0 (no bound): here a hung job is killed after an hour unless the file says otherwise."},
		&Option{Name: "legion-cron", Aliases: []string{"cron-legion"}, Scope: ScopeVassal, Kind: KindString, List: true,
			Parse: refuseLegion("legion-cron", "cron"), Default: "-",
			Doc:   "Refused with an error: legions are not supported. Put a cron line in the one vassal that should run the job.",
			UWSGI: "uWSGI runs the job only on the lord of the legion."},
		&Option{Name: "unique-legion-cron", Aliases: []string{"unique-cron-legion"}, Scope: ScopeVassal, Kind: KindString, List: true,
			Parse: refuseLegion("unique-legion-cron", "unique-cron"), Default: "-",
			Doc:   "Refused with an error: legions are not supported. Put a unique-cron line in the one vassal that should run the job.",
			UWSGI: "uWSGI runs the job only on the lord of the legion, never overlapping itself."},
	)
}
