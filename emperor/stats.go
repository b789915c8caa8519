package emperor

import (
	"encoding/json"
	"net"
	"os"

	"github.com/emperor-dev/emperor/statsock"
)

// emperorStats is the emperor-stats document: uWSGI's fields
// (core/emperor.c, emperor_send_stats), in valid JSON.
type emperorStats struct {
	Version       string        `json:"version"`
	PID           int           `json:"pid"`
	UID           int           `json:"uid"`
	GID           int           `json:"gid"`
	CWD           string        `json:"cwd"`
	Emperor       []string      `json:"emperor"`
	EmperorTyrant int           `json:"emperor_tyrant"`
	ThrottleLevel int           `json:"throttle_level"`
	Vassals       []vassalStats `json:"vassals"`
}

// vassalStats is one vassal in it. uWSGI's fields that have no meaning
// here are there with uWSGI's "none" value (0, ""), so dashboards that read
// them keep working: last_heartbeat, loyal/last_loyal (heartbeats), zerg,
// on_demand, suspended, adopted, cursed. attrs is an object (uWSGI writes
// key/values in a list, which is not JSON).
type vassalStats struct {
	ID            string            `json:"id"`
	PID           int               `json:"pid"`
	Born          int64             `json:"born"`
	LastMod       int64             `json:"last_mod"`
	LastHeartbeat int64             `json:"last_heartbeat"`
	Loyal         int64             `json:"loyal"`
	Ready         int               `json:"ready"`
	Accepting     int               `json:"accepting"`
	LastLoyal     int64             `json:"last_loyal"`
	LastReady     int64             `json:"last_ready"`
	LastAccepting int64             `json:"last_accepting"`
	FirstRun      int64             `json:"first_run"`
	LastRun       int64             `json:"last_run"`
	Cursed        int64             `json:"cursed"`
	Zerg          int               `json:"zerg"`
	OnDemand      string            `json:"on_demand"`
	Suspended     int               `json:"suspended"`
	Adopted       int               `json:"adopted"`
	UID           int               `json:"uid"`
	GID           int               `json:"gid"`
	Monitor       string            `json:"monitor"`
	Attrs         map[string]string `json:"attrs"`
	Respawns      int               `json:"respawns"`
	// Ours, after uWSGI's.
	State string `json:"state"`
}

// Version is what emperor-stats reports as "version"; the CLI sets it.
var Version = "dev"

// listenStats starts the emperor-stats server of Config.Stats, if any; the
// returned func closes it.
func (e *Emperor) listenStats() (func(), error) {
	if e.cfg.Stats == "" {
		return func() {}, nil
	}
	ln, path, err := statsock.Listen(e.cfg.Stats)
	if err != nil {
		return nil, &StatsError{Addr: e.cfg.Stats, Err: err}
	}
	e.log.Info("emperor stats server listening", "addr", ln.Addr().String())
	go statsock.Serve(ln, e.log, func(c net.Conn) {
		b, err := json.MarshalIndent(e.statsDocument(), "", "\t")
		if err != nil {
			e.log.Error("emperor stats document", "err", err)
			return
		}
		statsock.Write(c, append(b, '\n'), false)
	})
	return func() {
		ln.Close()
		if path != "" {
			_ = os.Remove(path)
		}
	}, nil
}

// StatsError is an emperor-stats address that could not be listened on.
type StatsError struct {
	Addr string
	Err  error
}

func (e *StatsError) Error() string { return "emperor-stats " + e.Addr + ": " + e.Err.Error() }
func (e *StatsError) Unwrap() error { return e.Err }

func (e *Emperor) statsDocument() emperorStats {
	cwd, _ := os.Getwd()
	doc := emperorStats{Version: Version, PID: os.Getpid(), UID: os.Getuid(), GID: os.Getgid(), CWD: cwd,
		Emperor: []string{e.dir}, Vassals: []vassalStats{}}
	for _, v := range e.Status() {
		vs := vassalStats{ID: v.Name + ".ini", PID: v.PID, Respawns: v.Restarts, Monitor: e.dir,
			Attrs: map[string]string{}, State: v.State}
		if !v.StartedAt.IsZero() {
			vs.Born, vs.LastRun = v.StartedAt.Unix(), v.StartedAt.Unix()
		}
		if !v.ReadyAt.IsZero() {
			vs.Ready, vs.LastReady = 1, v.ReadyAt.Unix()
			if v.State == StateRunning {
				vs.Accepting, vs.LastAccepting = 1, v.ReadyAt.Unix()
			}
		}
		e.mu.Lock()
		if m, ok := e.mtimes[v.Name]; ok {
			vs.LastMod = m.Unix()
		}
		e.mu.Unlock()
		doc.Vassals = append(doc.Vassals, vs)
	}
	return doc
}
