package integration

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A storm of changes to a vassal file (100 writes, 20 ms apart) does not
// restart the vassal's daemons 100 times: while a reload is in flight, every
// further request coalesces into one pending reload, which applies the
// newest file once the flight has landed, and no sooner than the reload
// spacing (200 ms) after the last one.
func TestReloadStormCoalesces(t *testing.T) {
	e := startEmperor(t)
	const writes = 100
	file := func(gen int) string {
		return fmt.Sprintf(`[uwsgi]
env = GEN=%d
attach-daemon = echo "storm daemon gen=$GEN"; exec sleep 1000
`, gen)
	}
	e.install("storm", file(0))
	e.waitState("storm", "running", time.Minute)
	waitFor(t, time.Minute, "the first daemon", func() bool {
		return strings.Contains(e.log.String(), `msg="storm daemon gen=0"`)
	})
	tick := time.NewTicker(20 * time.Millisecond)
	for gen := 1; gen <= writes; gen++ {
		<-tick.C
		e.install("storm", file(gen))
	}
	tick.Stop()
	final := fmt.Sprintf(`msg="storm daemon gen=%d"`, writes)
	waitFor(t, 2*time.Minute, "the daemon of the last file", func() bool {
		return strings.Contains(e.log.String(), final)
	})
	v := e.waitState("storm", "running", time.Minute)
	log := e.log.String()
	starts := len(regexp.MustCompile(`msg="daemon started" vassal=storm `).FindAllString(log, -1))
	gens := regexp.MustCompile(`msg="storm daemon gen=(\d+)"`).FindAllStringSubmatch(log, -1)
	if last := gens[len(gens)-1][1]; last != fmt.Sprint(writes) {
		t.Fatalf("the last daemon runs gen=%s, want %d", last, writes)
	}
	t.Logf("%d writes: the daemon was started %d times, PID 1 %d", writes, starts, v.PID)
	if starts > writes/3 {
		t.Fatalf("the daemon was started %d times for %d writes: reloads were not coalesced", starts, writes)
	}
	if v.Restarts != 0 {
		t.Fatalf("the vassal was restarted %d times", v.Restarts)
	}
}
