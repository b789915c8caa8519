#!/usr/bin/env bash
# The restart policy, measured (make bench runs it from scripts/bench.sh;
# it also runs alone, as root: bash scripts/bench-restart.sh):
#  (a) a fuse-zip vassal whose FUSE daemon is killed KILLS times (5), GAP
#      seconds apart (3): each recovery, from the kill -9 to HTTP 200 again
#      (latprobe recover, polling every 5 ms). Target: every one < 150 ms.
#  (b) a vassal that fails at start (chdir into a missing directory), for
#      FAIL_S seconds (40): the wait before each restart against the throttle
#      schedule, and the CPU that the emperor and every vassal PID 1 it reaped
#      used over the run (/proc/EMPEROR/stat: utime+stime+cutime+cstime).
# Prints a Markdown section on stdout; progress on stderr.
# Needs fuse-zip, busybox and zip; EMPEROR_BIN (default bin/emperor, built if
# missing); LP, the anchors' latprobe (built from ANCHORS, default
# ../shared/anchors, when unset).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KILLS=${KILLS:-5}
GAP=${GAP:-3}
FAIL_S=${FAIL_S:-40}
EMPEROR_BIN=${EMPEROR_BIN:-$ROOT/bin/emperor}
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
[ "$(id -u)" = 0 ] || { echo "bench-restart.sh runs as root" >&2; exit 1; }
for c in fuse-zip busybox zip; do
  command -v "$c" >/dev/null || { echo "bench-restart.sh needs $c (make deps)" >&2; exit 1; }
done
[ -x "$EMPEROR_BIN" ] || go build -o "$EMPEROR_BIN" ./cmd/emperor
W=$(mktemp -d /tmp/emperor-bench-restart.XXXXXX)
EMP=""
stop_emperor() {
  [ -n "$EMP" ] || return 0
  kill -TERM "$EMP" 2>/dev/null || true
  local i; for i in $(seq 1 400); do kill -0 "$EMP" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$EMP" 2>/dev/null || true; wait "$EMP" 2>/dev/null || true; EMP=""
}
trap 'stop_emperor; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
if [ -z "${LP:-}" ]; then
  [ -d "$ANCHORS/tools/latprobe" ] || { echo "no latprobe: set LP, or ANCHORS to the anchors harness" >&2; exit 1; }
  cp -r "$ANCHORS/tools/latprobe" "$W/latprobe-src"; chmod -R u+w "$W/latprobe-src"
  (cd "$W/latprobe-src" && go build -o "$W/latprobe" .) >&2
  LP=$W/latprobe
fi
TCK=$(getconf CLK_TCK)
# cpu_ticks PID: utime+stime+cutime+cstime (the emperor and every child it reaped)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12+$13+$14+$15 }' "/proc/$1/stat"; }
# secs LINE: seconds since midnight of a slog time=...T15:04:05.000Z field
secs() { sed -n 's/^time=[^T]*T\([0-9]*\):\([0-9]*\):\([0-9.]*\)Z.*/\1 \2 \3/p' <<<"$1" | awk '{ printf "%.3f", $1*3600+$2*60+$3 }'; }
# fusezip MNT: the pid of the fuse-zip serving MNT, under the emperor
fusezip() { "$LP" tree -root "$EMP" | awk -v m="$1" '$4=="fuse-zip" && $NF==m {print $1; exit}'; }

# ------------------------------------------------------------------ (a)
echo "== (a) fuse-zip killed $KILLS times, ${GAP} s apart" >&2
mkdir -p "$W/a/vassals" "$W/a/stage" "$W/a/site" "$W/a/mnt"
printf 'hello from the zip\n' > "$W/a/site/hello.txt"
(cd "$W/a/site" && zip -q -r "$W/a/site.zip" .)
port=$(( 19500 + RANDOM % 400 ))
url="http://127.0.0.1:$port/hello.txt"
"$EMPEROR_BIN" --vassals "$W/a/vassals" --control "$W/a/ctl.sock" > "$W/a/emperor.log" 2>&1 &
EMP=$!
for i in $(seq 1 200); do [ -S "$W/a/ctl.sock" ] && break; sleep 0.05; done
cat > "$W/a/stage/zip.ini" <<EOF
[uwsgi]
if-not-reload =
exec-pre-jail = fuse-zip -r $W/a/site.zip $W/a/mnt
endif =
attach-daemon = exec busybox httpd -f -p 127.0.0.1:$port -h $W/a/mnt
mountpoint-check = $W/a/mnt
EOF
r=$("$LP" spawn -rename "$W/a/stage/zip.ini:$W/a/vassals/zip.ini" -url "$url" -interval 5ms -timeout 60s)
echo "spawn: $r" >&2
: > "$W/a/ms"; : > "$W/a/rows"
for k in $(seq 1 "$KILLS"); do
  sleep "$GAP"
  fz=$(fusezip "$W/a/mnt")
  if [ -z "$fz" ]; then echo "| $k | no fuse-zip found | | |" >> "$W/a/rows"; continue; fi
  at=$(date -u +%H:%M:%S.%3N)
  r=$("$LP" recover -kill "$fz" -url "$url" -interval 5ms -timeout 60s)
  echo "kill $k (fuse-zip $fz) at $at: $r" >&2
  ms=$(sed -n 's/.*ms=\([0-9.]*\).*/\1/p' <<<"$r"); before=$(sed -n 's/.*before=\(.*\)$/\1/p' <<<"$r")
  died=$(grep 'msg="vassal died" vassal=zip' "$W/a/emperor.log" | sed -n "${k}p")
  wait_=$(sed -n 's/.*restart_in=\([^ ]*\).*/\1/p' <<<"$died"); fails=$(sed -n 's/.*failures=\([^ ]*\).*/\1/p' <<<"$died")
  case "$r" in ok=true*) echo "$ms" >> "$W/a/ms";; esac
  echo "| $k | ${ms:-none} | ${wait_:-?} | ${fails:-?} | $before |" >> "$W/a/rows"
done
stop_emperor

# ------------------------------------------------------------------ (b)
echo "== (b) a vassal that fails at start, ${FAIL_S} s" >&2
mkdir -p "$W/b/vassals"
"$EMPEROR_BIN" --vassals "$W/b/vassals" --control "$W/b/ctl.sock" > "$W/b/emperor.log" 2>&1 &
EMP=$!
for i in $(seq 1 200); do [ -S "$W/b/ctl.sock" ] && break; sleep 0.05; done
c0=$(cpu_ticks "$EMP"); t0=$(date +%s.%N)
printf '[uwsgi]\nchdir = %s/missing\nattach-daemon = exec sleep 1000\n' "$W/b" > "$W/b/vassals/fail.ini"
sleep "$FAIL_S"
c1=$(cpu_ticks "$EMP"); t1=$(date +%s.%N)
"$EMPEROR_BIN" status --control "$W/b/ctl.sock" > "$W/b/status" 2>&1 || true
stop_emperor
grep -E 'msg="vassal (spawned|died)" vassal=fail' "$W/b/emperor.log" > "$W/b/events" || true
: > "$W/b/rows"
n=0; died_at=""; sched=""
while IFS= read -r l; do
  case "$l" in
    *'msg="vassal died"'*) died_at=$(secs "$l"); sched=$(sed -n 's/.*restart_in=\([^ ]*\).*/\1/p' <<<"$l") ;;
    *'msg="vassal spawned"'*)
      if [ -n "$died_at" ]; then
        n=$((n + 1))
        echo "| $n | $sched | $(awk -v a="$died_at" -v b="$(secs "$l")" 'BEGIN{ printf "%.0f ms", (b-a)*1000 }') |" >> "$W/b/rows"
        died_at=""
      fi ;;
  esac
done < "$W/b/events"
spawns=$(grep -c 'msg="vassal spawned"' "$W/b/events" || true)
cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$TCK" 'BEGIN{ printf "%.2f", (b-a)/t }')
wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{ printf "%.1f", b-a }')
cpu_pct=$(awk -v c="$cpu_s" -v w="$wall_s" 'BEGIN{ printf "%.2f", 100*c/w }')

# ------------------------------------------------------------------ report
sort -g "$W/a/ms" > "$W/a/ms.sorted"
nrec=$(wc -l < "$W/a/ms.sorted")
maxrec=$(tail -1 "$W/a/ms.sorted" 2>/dev/null || true)
medrec=$(awk '{a[NR]=$1} END{ if (NR) { m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; print m } }' "$W/a/ms.sorted")
echo "### Restart policy (scripts/bench-restart.sh)"
echo
echo "Default policy: emperor-throttle 1000 ms, emperor-max-throttle 180000 ms, emperor-restart-burst 5, emperor-restart-half-life 30 s."
echo
echo "(a) A fuse-zip vassal (the phase A recipe: fuse-zip in the pre-jail phase, mountpoint-check, busybox httpd) whose fuse-zip is killed with SIGKILL $KILLS times, $GAP s apart. Recovery: from the kill to the first HTTP 200 of a file in the mount (latprobe recover, polling every 5 ms). The wait and the failure count are the emperor's \`vassal died\` log line; \"before\" is what the probe saw between (status:count, 0 = no answer)."
echo
echo "| kill | recovery (ms) | policy's wait | failures | before |"
echo "| --- | --- | --- | --- | --- |"
cat "$W/a/rows"
echo
echo "Recovered $nrec of $KILLS; median ${medrec:-none} ms, max ${maxrec:-none} ms."
echo
echo "(b) A vassal that fails at start (\`chdir\` into a missing directory), left alone for $wall_s s: the wait before each restart, as the policy scheduled it and as measured from the \`vassal died\` line to the next \`vassal spawned\` line."
echo
echo "| restart | scheduled | measured |"
echo "| --- | --- | --- |"
cat "$W/b/rows"
echo
echo "$spawns starts in $wall_s s. CPU of the emperor and of every vassal PID 1 it reaped (utime+stime+cutime+cstime of the emperor): $cpu_s s over $wall_s s, $cpu_pct % of one core."
echo
echo "| target | figure | |"
echo "| --- | --- | --- |"
echo "| every recovery after kill -9 of the FUSE daemon < 150 ms ($KILLS kills, $GAP s apart) | max ${maxrec:-none} ms, $nrec of $KILLS recovered | $(awk -v m="$maxrec" -v n="$nrec" -v k="$KILLS" 'BEGIN{ if (n==k && m!="" && m+0<150) print "met"; else print "**missed**" }') |"
echo "| a vassal failing at start follows the throttle schedule | see (b) | $(awk -F'|' '{ gsub(/ /,"",$3); gsub(/ ms/,"",$4); s=$3; v=$4+0; if (s ~ /ms$/) { sub(/ms$/,"",s); s=s+0 } else if (s ~ /m/) { split(s,p,"m"); sub(/s$/,"",p[2]); s=(p[1]*60+p[2])*1000 } else { sub(/s$/,"",s); s=s*1000 } if (v < s || v > s+250) bad++ } END{ if (NR==0) print "no figure"; else if (bad) print "**missed** (" bad " off by more than 250 ms)"; else print "met (each within 250 ms)" }' "$W/b/rows") |"
echo "| near-zero CPU while failing at start | $cpu_pct % of one core | $(awk -v p="$cpu_pct" 'BEGIN{ if (p+0 < 1) print "met (< 1 %)"; else print "**missed**" }') |"
