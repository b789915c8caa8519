// Command appload is the load generator and clock of scripts/bench-app.sh
// (make bench): the same client measures this emperor and the real uWSGI
// Emperor.
//
//	appload load -url URL -touch FILE [-rate 200] [-before 2s] [-after 2s] [-timeout 60s]
//
// sends GET URL at a constant rate (open loop: a request starts at its
// scheduled time whatever the others do, on a connection of its own, and its
// latency counts from that time, so a stall shows in full), touches FILE
// once -before has passed, and goes on until a response body that was never
// seen before the touch arrives (the app answers with its worker's pid: a
// new body is a new worker, the reload happened) and -after more has passed.
// It prints one line: requests, failed (a connection error or a status
// other than 200), p50/p99/max latency in ms over the whole run, reload_ms
// (from the touch to the first new body) and the first error seen.
//
//	appload start -url URL [-interval 10ms] [-timeout 60s] -- CMD ARG...
//
// runs CMD, polls URL every -interval until the first 200 (spawn time, from
// just before the fork), then stops CMD with SIGINT (uWSGI's shutdown) and
// waits for it; SIGKILL after -timeout.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"
)

func die(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "appload: "+f+"\n", a...)
	os.Exit(2)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// newClient gives every request a fresh connection: what is measured is
// the listener, and uWSGI's http-socket closes after each response anyway.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
	}}
}

// fetch GETs url and returns the status and body; an error is a failure.
func fetch(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

type result struct {
	sched time.Time
	lat   time.Duration
	body  string
	err   string // "" when the answer was a 200
}

func load(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	touch := fs.String("touch", "", "file to touch once -before has passed")
	rate := fs.Int("rate", 200, "requests per second")
	before := fs.Duration("before", 2*time.Second, "load before the touch")
	after := fs.Duration("after", 2*time.Second, "load after the first new body")
	timeout := fs.Duration("timeout", 60*time.Second, "give up waiting for a new body after the touch; also each request's limit")
	fs.Parse(args)
	if *url == "" || *touch == "" || *rate <= 0 {
		die("load needs -url, -touch and a positive -rate")
	}
	client := newClient(*timeout)
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	start := time.Now()
	every := time.Second / time.Duration(*rate)
	var touchedAt time.Time
	seenBefore := map[string]bool{}
	var newAt time.Time
	for i := 0; ; i++ {
		sched := start.Add(time.Duration(i) * every)
		time.Sleep(time.Until(sched))
		now := time.Now()
		if touchedAt.IsZero() && now.Sub(start) >= *before {
			mu.Lock()
			for _, r := range results {
				if r.err == "" {
					seenBefore[r.body] = true
				}
			}
			mu.Unlock()
			if len(seenBefore) == 0 {
				die("no request succeeded in the %v before the touch", *before)
			}
			if err := os.Chtimes(*touch, now, now); err != nil {
				die("touch %s: %v", *touch, err)
			}
			touchedAt = now
		}
		if !touchedAt.IsZero() {
			mu.Lock()
			if newAt.IsZero() {
				for _, r := range results {
					if r.err == "" && !seenBefore[r.body] && r.sched.After(touchedAt) {
						if newAt.IsZero() || r.sched.Add(r.lat).Before(newAt) {
							newAt = r.sched.Add(r.lat)
						}
					}
				}
			}
			mu.Unlock()
			if !newAt.IsZero() && now.Sub(newAt) >= *after {
				break
			}
			if newAt.IsZero() && now.Sub(touchedAt) > *timeout {
				break
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, err := fetch(client, *url)
			r := result{sched: sched, lat: time.Since(sched), body: body}
			switch {
			case err != nil:
				r.err = err.Error()
			case code != 200:
				r.err = fmt.Sprintf("HTTP %d", code)
			}
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	var lats []time.Duration
	failed, firstErr := 0, ""
	for _, r := range results {
		lats = append(lats, r.lat)
		if r.err != "" {
			failed++
			if firstErr == "" {
				firstErr = r.err
			}
		}
	}
	slices.Sort(lats)
	pct := func(p float64) time.Duration { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	reload := "NA"
	if !newAt.IsZero() {
		reload = ms(newAt.Sub(touchedAt))
	}
	fmt.Printf("reloaded=%v requests=%d failed=%d p50_ms=%s p99_ms=%s max_ms=%s reload_ms=%s rate=%d first_error=%q\n",
		!newAt.IsZero(), len(results), failed, ms(pct(0.50)), ms(pct(0.99)), ms(lats[len(lats)-1]), reload, *rate, firstErr)
}

func startCmd(args []string) {
	fs := flag.NewFlagSet("start", flag.ExitOnError)
	url := fs.String("url", "", "URL to poll")
	interval := fs.Duration("interval", 10*time.Millisecond, "poll interval")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	fs.Parse(args)
	argv := fs.Args()
	if *url == "" || len(argv) == 0 {
		die("start needs -url URL -- CMD ARG...")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	client := newClient(2 * time.Second)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		die("start %s: %v", argv[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ok := false
	var el time.Duration
	for {
		code, _, err := fetch(client, *url)
		el = time.Since(start)
		if err == nil && code == 200 {
			ok = true
			break
		}
		if el > *timeout {
			break
		}
		select {
		case err := <-exited:
			die("%s exited before answering: %v", argv[0], err)
		case <-time.After(*interval):
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(*timeout):
		cmd.Process.Kill()
		<-exited
	}
	fmt.Printf("ok=%v ms=%s\n", ok, ms(el))
}

func main() {
	if len(os.Args) < 2 {
		die("usage: appload load|start ...")
	}
	switch os.Args[1] {
	case "load":
		load(os.Args[2:])
	case "start":
		startCmd(os.Args[2:])
	default:
		die("unknown command %q: usage: appload load|start ...", os.Args[1])
	}
}
