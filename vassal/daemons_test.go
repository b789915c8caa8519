package vassal

import (
	"bytes"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emperor-dev/emperor/restart"
	"github.com/emperor-dev/emperor/vassalfile"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startTestDaemon(t *testing.T, cmd string, policy restart.Policy) (*daemon, *syncBuf) {
	t.Helper()
	lb := &syncBuf{}
	p := &proc{reaper: sharedReaper(), log: slog.New(slog.NewTextHandler(lb, nil)), env: os.Environ(), dir: t.TempDir()}
	d := newDaemon(vassalfile.Daemon{Command: cmd}, p, policy)
	go d.run()
	t.Cleanup(func() {
		d.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("log:\n%s", lb.String())
		}
	})
	return d, lb
}

// waitLog waits until the log has n lines matching re and returns the
// submatches of the n-th.
func waitLog(t *testing.T, lb *syncBuf, re string, n int) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(time.Minute)
	for {
		if all := rx.FindAllStringSubmatch(lb.String(), -1); len(all) >= n {
			return all[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d lines matching %s", n, re)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A daemon that became ready is respawned at once while its failure count
// is within the burst, then with the throttle.
func TestDaemonBurstThenThrottle(t *testing.T) {
	policy := restart.Policy{Throttle: 100 * time.Millisecond, MaxThrottle: time.Second, Burst: 2, HalfLife: time.Hour}
	_, lb := startTestDaemon(t, "exec sleep 1000", policy)
	for kill := 1; kill <= 3; kill++ {
		waitLog(t, lb, `msg="daemon ready"`, kill)
		pid, _ := strconv.Atoi(waitLog(t, lb, `msg="daemon started" attach-daemon="[^"]*" pid=(\d+)`, kill)[1])
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
		waitLog(t, lb, `msg="daemon started"`, kill+1)
	}
	log := lb.String()
	if n := strings.Count(log, `msg="respawning daemon"`); n != 1 || !regexp.MustCompile(`msg="respawning daemon" attach-daemon="[^"]*" in=100ms failures=3\.00`).MatchString(log) {
		t.Fatalf("want 2 immediate respawns, then one after the 100ms throttle; got %d waits", n)
	}
}

// A daemon that never becomes ready backs off from its second failure.
func TestDaemonNeverReadyBacksOff(t *testing.T) {
	policy := restart.Policy{Throttle: 50 * time.Millisecond, MaxThrottle: 200 * time.Millisecond, Burst: 5, HalfLife: time.Hour}
	_, lb := startTestDaemon(t, "exit 3", policy)
	var got []string
	for i := 1; i <= 4; i++ {
		got = append(got, waitLog(t, lb, `msg="respawning daemon" attach-daemon="[^"]*" in=(\S+)`, i)[1])
	}
	if want := []string{"50ms", "100ms", "200ms", "200ms"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("waits %v, want %v (the first failure is respawned at once)", got, want)
	}
	if n := strings.Count(lb.String(), `msg="daemon started"`); n < 5 {
		t.Fatalf("%d starts", n)
	}
}
