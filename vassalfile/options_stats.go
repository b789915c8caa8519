package vassalfile

import (
	"fmt"
	"strings"
)

// validateStats checks a stats address as uWSGI reads it: with a colon it
// is [ADDR]:PORT (TCP), else a unix socket path (@NAME: abstract).
func validateStats(v string) error {
	if strings.TrimSpace(v) == "" || v != strings.TrimSpace(v) {
		return fmt.Errorf("%s is not an address: write 127.0.0.1:PORT or a unix socket path", QuoteValue(v))
	}
	if strings.Contains(v, ":") {
		return validateSocket(v)
	}
	if v == "@" {
		return fmt.Errorf("an abstract socket needs a name after @")
	}
	return nil
}

func init() {
	register(
		&Option{Name: "stats", Aliases: []string{"stats-server"}, Owner: OwnerShared, Scope: ScopeVassal, Kind: KindString,
			Validate: validateStats, Default: "(none)",
			Doc:   "Address of the stats server: [ADDR]:PORT (TCP; an empty ADDR is every interface, so write 127.0.0.1:PORT) or a unix socket path (@NAME: abstract). In a vassal without an app, PID 1 answers every connection with one JSON document of the vassal's status, then closes it (fields in docs/stats.md). It listens after the privilege drop and the chdir, as the vassal's user, in the jail's view (a relative path is relative to the chdir); a stale unix socket at the path is replaced and the file is removed at stop. A reload that changes the address listens on the new one before it closes the old one. In a vassal that runs an app, the line goes to uWSGI, whose stats server reports its master and workers.",
			UWSGI: "Same address forms and framing. Without an app the JSON is ours (the vassal, its daemons, its cron jobs), not uWSGI's master/worker document; its crons entries have uWSGI's fields."},
		&Option{Name: "stats-http", Owner: OwnerShared, Scope: ScopeVassal, Kind: KindBool, Default: "false",
			Doc:   "Frames the stats server's answer as HTTP: it reads the request (up to its blank line, 8 KiB at most), then answers 200 with Content-Type: application/json and Connection: close, whatever the request was.",
			UWSGI: "same (uWSGI reads one packet of the request, up to 4 KiB)"},
		&Option{Name: "stats-minified", Aliases: []string{"stats-min"}, Owner: OwnerShared, Scope: ScopeVassal, Kind: KindBool, Default: "false",
			Doc:   "The stats JSON on one line, without indentation.",
			UWSGI: "same"},
	)
}
