#!/usr/bin/env bash
# Where the time goes when N trivial vassals start at once: the CPU each kind
# of process spends (from /proc/PID/task/*/schedstat, all threads), how busy
# the cores were, and what one start of our binary costs against /bin/true
# and a build without cgo. Prints a Markdown section. Needs EMPEROR_BIN.
# Knobs: N (200), RUNS (3).
set -euo pipefail
: "${EMPEROR_BIN:?}"
N=${N:-200}
RUNS=${RUNS:-3}
HERE="$(cd "$(dirname "$0")/.." && pwd)"
W=$(mktemp -d /tmp/emperor-burst.XXXXXX)
EP=""
cleanup() { [ -n "$EP" ] && kill -TERM "$EP" 2>/dev/null && wait "$EP" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/www"; echo hi > "$W/www/hello.txt"

one_run() {
  rm -rf "$W/v" "$W/stage"; mkdir -p "$W/v" "$W/stage"
  local i
  for i in $(seq 1 "$N"); do
    printf '[uwsgi]\nattach-daemon = exec busybox httpd -f -p 127.0.0.1:%d -h %s\n' $((21000 + i)) "$W/www" > "$W/stage/v$i.ini"
  done
  printf '[uwsgi]\nemperor = %s\n' "$W/v" > "$W/e.ini"
  "$EMPEROR_BIN" --config "$W/e.ini" --control "$W/c.sock" > "$W/log" 2>&1 &
  EP=$!
  for i in $(seq 1 200); do grep -q 'emperor started' "$W/log" 2>/dev/null && break; sleep 0.025; done
  # One python process renames every file in, polls every port, then reads
  # the CPU time of every process under the emperor.
  python3 - "$N" "$W" "$EP" <<'PY'
import os, socket, sys, time
n, w, ep = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def busy_idle():
    f = open('/proc/stat').readline().split()[1:]
    v = list(map(int, f))
    return v[0] + v[1] + v[2] + v[5] + v[6], v[3] + v[4]
hz = os.sysconf('SC_CLK_TCK')
b0, i0 = busy_idle(); t0 = time.time()
for i in range(1, n + 1):
    os.rename(f'{w}/stage/v{i}.ini', f'{w}/v/v{i}.ini')
left = set(range(1, n + 1))
while left and time.time() - t0 < 30:
    for i in list(left):
        s = socket.socket(); s.settimeout(0.05)
        try:
            s.connect(('127.0.0.1', 21000 + i)); left.discard(i)
        except OSError:
            pass
        finally:
            s.close()
    if left:
        time.sleep(0.02)
t1 = time.time(); b1, i1 = busy_idle()
def cpu_ns(pid):
    try:
        return sum(int(open(f'/proc/{pid}/task/{t}/schedstat').read().split()[0]) for t in os.listdir(f'/proc/{pid}/task'))
    except OSError:
        return 0
ppid = {}
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            s = open(f'/proc/{d}/stat').read()
            ppid[int(d)] = int(s[s.rindex(')') + 2:].split()[1])
        except OSError:
            pass
pid1 = [p for p, pp in ppid.items() if pp == ep]
daemons = [p for p, pp in ppid.items() if pp in pid1]
emp = cpu_ns(ep) / 1e6 / n
v1 = sum(cpu_ns(p) for p in pid1) / 1e6 / n
dm = sum(cpu_ns(p) for p in daemons) / 1e6 / n
print(f"RUN up={n - len(left)}/{n} all_ms={(t1 - t0) * 1000:.0f} busy_s={(b1 - b0) / hz:.2f} idle_s={(i1 - i0) / hz:.2f} "
      f"emperor_ms_per_vassal={emp:.2f} pid1_ms_per_vassal={v1:.2f} daemon_ms_per_vassal={dm:.2f}")
PY
  kill -TERM "$EP"; wait "$EP" 2>/dev/null || true; EP=""
}

startcost() { # argv... -> mean wall ms of one start, over 300
  python3 - "$@" <<'PY'
import subprocess, sys, time
argv = sys.argv[1:]; n = 300
t = time.time()
for _ in range(n):
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"{(time.time() - t) / n * 1000:.2f}")
PY
}

echo "### Where the time goes: $N vassals at once (scripts/bench-burst.sh)"
echo
echo "Each run renames $N trivial vassal files in at once (the same vassal as phase B), waits until every port listens, then reads the CPU time of every process from \`/proc/PID/task/*/schedstat\` (all threads). The CPU columns are per vassal. Busy and idle are the machine's CPU seconds (2 cores) over the burst."
echo
echo "| run | all listening (ms) | CPU busy / idle (s) | emperor (ms) | vassal PID 1 (ms) | its httpd (ms) |"
echo "| --- | --- | --- | --- | --- | --- |"
for r in $(seq 1 "$RUNS"); do
  line=$(one_run | grep '^RUN')
  kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $line"; }
  echo "| $r | $(kv all_ms) ($(kv up)) | $(kv busy_s) / $(kv idle_s) | $(kv emperor_ms_per_vassal) | $(kv pid1_ms_per_vassal) | $(kv daemon_ms_per_vassal) |"
done
echo
NOCGO=$W/emperor-nocgo
(cd "$HERE" && CGO_ENABLED=0 go build -tags nogluster -o "$NOCGO" ./cmd/emperor)
echo "One start of a process, wall ms (mean of 300, from python's subprocess): \`/bin/true\` $(startcost /bin/true), \`/bin/sh -c 'exec /bin/true'\` $(startcost /bin/sh -c 'exec /bin/true'), our binary as \`vassal-init\` until it finds no control socket $(startcost "$EMPEROR_BIN" vassal-init none), the same built without cgo (\`-tags nogluster\`) $(startcost "$NOCGO" vassal-init none)."
echo
