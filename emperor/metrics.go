package emperor

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the emperor's Prometheus metrics (docs/api.md lists them):
// counters the loop and the supervisors update, and the vassal table read
// from Status at each scrape.
type metrics struct {
	reg          *prometheus.Registry
	events       prometheus.Counter
	rescans      prometheus.Counter
	configErrors prometheus.Counter
	spawn        prometheus.Histogram
}

// states are the vassal states, each with a series even at zero.
var states = []string{StateStarting, StateRunning, StateReloading, StateStopping, StateBackoff, StateFailedConfig, StateHeld}

func newMetrics(e *Emperor) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "emperor_inotify_events_total",
			Help: "Events inotify reported for vassal files."}),
		rescans: prometheus.NewCounter(prometheus.CounterOpts{Name: "emperor_rescans_total",
			Help: "Scans of the vassal directory (the safety net under inotify, and after an inotify overflow)."}),
		configErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "emperor_config_errors_total",
			Help: "Vassal files refused: unreadable, invalid, or whose check did not finish in time."}),
		spawn: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "emperor_spawn_duration_seconds",
			Help:    "From the clone of a vassal's PID 1 to its ready message.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
	}
	m.reg.MustRegister(m.events, m.rescans, m.configErrors, m.spawn, &tableCollector{e: e},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Metrics is the handler of /metrics, in Prometheus's text format.
func (e *Emperor) Metrics() http.Handler {
	return promhttp.HandlerFor(e.metrics.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// tableCollector turns the vassal table into metrics at each scrape.
type tableCollector struct{ e *Emperor }

var (
	descVassals = prometheus.NewDesc("emperor_vassals", "Vassals by state.", []string{"state"}, nil)
	descPaused  = prometheus.NewDesc("emperor_paused", "1 while the reaction to vassal file changes is paused.", nil, nil)
	descState   = prometheus.NewDesc("emperor_vassal_state", "1 for the state the vassal is in.", []string{"vassal", "state"}, nil)
	descRestart = prometheus.NewDesc("emperor_vassal_restarts_total", "Restarts of the vassal since its file appeared.", []string{"vassal"}, nil)
	descFailure = prometheus.NewDesc("emperor_vassal_failures", "The restart policy's decayed failure count.", []string{"vassal"}, nil)
	descUptime  = prometheus.NewDesc("emperor_vassal_uptime_seconds", "Time since the vassal's PID 1 started (0 when none runs).", []string{"vassal"}, nil)
	descMount   = prometheus.NewDesc("emperor_vassal_mount_state", "1 for the state each served mount is in.", []string{"vassal", "prefix", "kind", "source", "state"}, nil)
)

func (c *tableCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descVassals, descPaused, descState, descRestart, descFailure, descUptime, descMount} {
		ch <- d
	}
}

func (c *tableCollector) Collect(ch chan<- prometheus.Metric) {
	table := c.e.Status()
	by := map[string]int{}
	now := time.Now()
	for _, v := range table {
		by[v.State]++
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, 1, v.Name, v.State)
		ch <- prometheus.MustNewConstMetric(descRestart, prometheus.CounterValue, float64(v.Restarts), v.Name)
		ch <- prometheus.MustNewConstMetric(descFailure, prometheus.GaugeValue, v.Failures, v.Name)
		up := 0.0
		if v.PID != 0 && !v.StartedAt.IsZero() {
			up = now.Sub(v.StartedAt).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descUptime, prometheus.GaugeValue, up, v.Name)
		for _, m := range v.Mounts {
			ch <- prometheus.MustNewConstMetric(descMount, prometheus.GaugeValue, 1, v.Name, m.Prefix, m.Kind, m.Source, m.State)
		}
	}
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(descVassals, prometheus.GaugeValue, float64(by[s]), s)
	}
	paused := 0.0
	if c.e.Info().Paused {
		paused = 1
	}
	ch <- prometheus.MustNewConstMetric(descPaused, prometheus.GaugeValue, paused)
}
