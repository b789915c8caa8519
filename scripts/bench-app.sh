#!/usr/bin/env bash
# Issue 8's figures: a PSGI hello app on uWSGI's app server, under this
# emperor and under the real uWSGI Emperor (`uwsgi --emperor DIR
# --emperor-use-clone fs,pid --emperor-freq F`, started as
# ../shared/anchors/emperor.sh starts it), with the same vassal file, in the
# same run (make bench runs it from scripts/bench.sh; it also runs alone,
# as root: bash scripts/bench-app.sh):
#  spawn   the vassal file renamed into the directory -> the first HTTP 200
#          (the anchors' latprobe spawn, polling every 10 ms), REPS (5)
#          times, each after a pause of 0.3 s + U(0, freq) s so that the file
#          lands at a random phase of uWSGI's scan. The floor: `uwsgi --ini
#          FILE` alone, from the fork to the first 200 (appload start).
#  reload  one vassal up; appload sends RATE (200) requests a second, each
#          on a new connection, touches the file after 2 s, and goes on
#          until a new worker answers and 2 s more: failed requests, p99
#          and max latency, touch -> first answer of a new worker. RELOADS
#          (3) times per emperor.
# Prints a Markdown section on stdout; progress and raw lines on stderr.
# Needs uwsgi-core and uwsgi-plugin-psgi (make deps); EMPEROR_BIN (default
# bin/emperor, built if missing); LP, the anchors' latprobe (built from
# ANCHORS, default ../shared/anchors, when unset).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REPS=${REPS:-5}
RELOADS=${RELOADS:-3}
RATE=${RATE:-200}
UWSGI_FREQS=${UWSGI_FREQS:-3 1}
EMPEROR_BIN=${EMPEROR_BIN:-$ROOT/bin/emperor}
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
[ "$(id -u)" = 0 ] || { echo "bench-app.sh runs as root" >&2; exit 1; }
command -v uwsgi >/dev/null && [ -f /usr/lib/uwsgi/plugins/psgi_plugin.so ] ||
  { echo "bench-app.sh needs uwsgi-core and uwsgi-plugin-psgi (make deps)" >&2; exit 1; }
[ -x "$EMPEROR_BIN" ] || go build -o "$EMPEROR_BIN" ./cmd/emperor
W=$(mktemp -d /tmp/emperor-bench-app.XXXXXX)
chmod 755 "$W"
EMP=""
stop_emperor() { # $1: the emperor's stop signal (uWSGI: INT, ours: TERM)
  [ -n "$EMP" ] || return 0
  kill "-${1:-TERM}" "$EMP" 2>/dev/null || true
  local i; for i in $(seq 1 600); do kill -0 "$EMP" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$EMP" 2>/dev/null || true; wait "$EMP" 2>/dev/null || true; EMP=""
}
STOPSIG=TERM
trap 'stop_emperor $STOPSIG; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
if [ -z "${LP:-}" ]; then
  [ -d "$ANCHORS/tools/latprobe" ] || { echo "no latprobe: set LP, or ANCHORS to the anchors harness" >&2; exit 1; }
  cp -r "$ANCHORS/tools/latprobe" "$W/latprobe-src"; chmod -R u+w "$W/latprobe-src"
  (cd "$W/latprobe-src" && go build -o "$W/latprobe" .) >&2
  LP=$W/latprobe
fi
go build -o "$W/appload" ./scripts/appload
AL=$W/appload

mkdir -p "$W/app" "$W/stage" "$W/logs"
cat > "$W/app/hello.pl" <<'EOF'
# a PSGI hello app; the body names the worker, so a reload shows
my $app = sub { return [200, ['Content-Type' => 'text/plain'], ["hello from worker $$\n"]]; };
EOF
# vassal PORT: the one vassal file both emperors run.
vassal() {
  cat <<EOF
[uwsgi]
plugin = psgi
master = true
processes = 2
http-socket = 127.0.0.1:$1
psgi = $W/app/hello.pl
EOF
}

# start_uwsgi DIR LOG FREQ: as ../shared/anchors/emperor.sh starts it.
start_uwsgi() {
  ( cd "$W" && exec uwsgi --emperor "$1" --emperor-use-clone fs,pid --emperor-freq "$3" ) >"$2" 2>&1 &
  EMP=$!; STOPSIG=INT
  local i; for i in $(seq 1 200); do grep -q 'starting uWSGI Emperor' "$2" 2>/dev/null && return 0; sleep 0.05; done
  echo "uWSGI Emperor did not start: $(tail -3 "$2")" >&2; return 1
}
# start_ours DIR LOG: as scripts/anchors-impl.sh starts it.
start_ours() {
  printf '[uwsgi]\nemperor = %s\nemperor-use-clone = fs,pid\nreload-mercy = 10\n' "$1" > "$W/ours.ini"
  "$EMPEROR_BIN" --config "$W/ours.ini" --control "$W/ours.sock" >"$2" 2>&1 &
  EMP=$!; STOPSIG=TERM
  local i; for i in $(seq 1 200); do grep -q 'emperor started' "$2" 2>/dev/null && return 0; sleep 0.05; done
  echo "this emperor did not start: $(tail -3 "$2")" >&2; return 1
}
# closed PORT: wait until nothing accepts on PORT (bounded).
closed() {
  local i; for i in $(seq 1 600); do
    curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/" || return 0; sleep 0.1
  done
  echo "port $1 still answers 60 s after its vassal file was deleted" >&2; return 1
}
kv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
stats() { sort -g | awk '{a[NR]=$1} END{ if(NR==0){print "n=0"; exit}
  m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "n=%d min=%.1f median=%.1f max=%.1f", NR, a[1], m, a[NR]}'; }
med() { sed -n 's/.*median=\([0-9.]*\).*/\1/p' <<<"$1"; }
mmm() { awk '{ for(i=1;i<=NF;i++){split($i,a,"="); v[a[1]]=a[2]} printf "%s / %s / %s", v["min"], v["median"], v["max"] }' <<<"$1"; }

# measure IMPL FREQ BASEPORT: spawn REPS times, then RELOADS reloads under
# load; raw lines to $W/IMPL-FREQ.{spawn,reload}.
measure() {
  local impl=$1 freq=$2 base=$3 vd=$W/vassals-$1-$2 i port r tag=$1-$2
  mkdir -p "$vd"; : > "$W/$tag.spawn"; : > "$W/$tag.reload"
  if [ "$impl" = uwsgi ]; then start_uwsgi "$vd" "$W/logs/$tag.log" "$freq"; else start_ours "$vd" "$W/logs/$tag.log"; fi
  for i in $(seq 1 "$REPS"); do
    port=$((base + i))
    vassal "$port" > "$W/stage/s$i.ini"
    # ours has no scan phase: its pause spans 1 s like uWSGI's fastest scan
    sleep "$(awk -v r="$RANDOM$RANDOM" -v f="$freq" 'BEGIN{ if (f < 1) f = 1; printf "%.3f", 0.3 + (r % (f * 1000)) / 1000}')"
    r=$("$LP" spawn -rename "$W/stage/s$i.ini:$vd/s$i.ini" -url "http://127.0.0.1:$port/" -interval 10ms -timeout 60s)
    echo "$tag spawn $i: $r" >&2
    [ "$(kv ok "$r")" = true ] && kv ms "$r" >> "$W/$tag.spawn"
    rm -f "$vd/s$i.ini"; closed "$port"
  done
  port=$((base + 50))
  vassal "$port" > "$W/stage/r.ini"
  r=$("$LP" spawn -rename "$W/stage/r.ini:$vd/r.ini" -url "http://127.0.0.1:$port/" -interval 10ms -timeout 60s)
  echo "$tag reload vassal up: $r" >&2
  for i in $(seq 1 "$RELOADS"); do
    r=$("$AL" load -url "http://127.0.0.1:$port/" -touch "$vd/r.ini" -rate "$RATE" -before 2s -after 2s -timeout 60s)
    echo "$tag reload $i: $r" >&2
    echo "$r" >> "$W/$tag.reload"
  done
  rm -f "$vd/r.ini"; closed "$port"
  stop_emperor "$STOPSIG"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== bench-app: this emperor" >&2
measure ours 0 19700
for f in $UWSGI_FREQS; do
  echo "== bench-app: uWSGI Emperor, emperor-freq $f" >&2
  measure uwsgi "$f" $((19700 + 100 * f))
done
echo "== bench-app: uwsgi --ini alone" >&2
: > "$W/alone.spawn"
for i in $(seq 1 "$REPS"); do
  vassal $((19690)) > "$W/alone.ini"
  r=$("$AL" start -url "http://127.0.0.1:19690/" -interval 10ms -timeout 60s -- uwsgi --ini "$W/alone.ini" 2>"$W/logs/alone-$i.log")
  echo "alone spawn $i: $r" >&2
  [ "$(kv ok "$r")" = true ] && kv ms "$r" >> "$W/alone.spawn"
done

LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
# ---------------------------------------------------------------- report
best=""; for f in $UWSGI_FREQS; do best=$f; done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || b=="" || b+0==0) print "-"; else printf "%.2f×", a/b }'; }
# reload_row FILE: failed / requests, p99 and max (worst of the runs), reload_ms median
reload_sum() {
  awk '{ for(i=1;i<=NF;i++){split($i,a,"="); v[a[1]]=a[2]}
         req+=v["requests"]; fail+=v["failed"]; n++; if (v["reloaded"]=="true") ok++
         if (v["p99_ms"]+0>p99) p99=v["p99_ms"]+0; if (v["max_ms"]+0>mx) mx=v["max_ms"]+0
         r[n]=v["reload_ms"] }
       END{ printf "%d of %d | %d / %d | %.1f | %.1f |", ok, n, fail, req, p99, mx
            for(i=1;i<=n;i++) printf " %s", r[i]; print " |" }' "$1"
}
os=$(stats < "$W/ours-0.spawn"); as=$(stats < "$W/alone.spawn")
echo "### App server: a PSGI hello app under both emperors (scripts/bench-app.sh, issue 8)"
echo
echo "Run of $(date -u +%Y-%m-%dT%H:%MZ). uWSGI $(uwsgi --version), its psgi plugin; the same vassal file for both (\`plugin = psgi\`, \`master = true\`, \`processes = 2\`, \`http-socket\`, \`psgi = hello.pl\`), under \`emperor-use-clone = fs,pid\`; load average $LOAD0 before, $LOAD1 after ($(nproc) cores). Ours runs uWSGI's app server as the child of the vassal's PID 1; uWSGI runs it as the vassal. ms as min / median / max of $REPS spawns."
echo
echo "| spawn: file renamed in → first HTTP 200 (ms) | figure | ours / it |"
echo "| --- | --- | --- |"
echo "| ours | $(mmm "$os") | |"
for f in $UWSGI_FREQS; do
  us=$(stats < "$W/uwsgi-$f.spawn")
  echo "| uWSGI Emperor, emperor-freq $f | $(mmm "$us") | $(ratio "$(med "$os")" "$(med "$us")") |"
done
echo "| \`uwsgi --ini FILE\` alone, fork → first 200 (no emperor, no scan) | $(mmm "$as") | $(ratio "$(med "$os")" "$(med "$as")") |"
echo
echo "Graceful reload under load: $RATE requests a second (open loop, a new connection each, latency from the request's scheduled time), the file touched after 2 s, the load kept on until a new worker answers and 2 s more; $RELOADS runs per emperor. p99 and max are the worst of the runs; the last column is each run's touch → first answer of a new worker (ms)."
echo
echo "| emperor | reloaded | failed / requests | p99 (ms) | max (ms) | touch → new worker (ms) |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| ours | $(reload_sum "$W/ours-0.reload")"
for f in $UWSGI_FREQS; do echo "| uWSGI Emperor, emperor-freq $f | $(reload_sum "$W/uwsgi-$f.reload")"; done
echo
ofail=$(awk '{ for(i=1;i<=NF;i++){split($i,a,"="); if(a[1]=="failed") s+=a[2]} } END{print s+0}' "$W/ours-0.reload")
oreloaded=$(grep -c 'reloaded=true' "$W/ours-0.reload" || true)
ub=$(med "$(stats < "$W/uwsgi-$best.spawn")")
echo "| target | figure | |"
echo "| --- | --- | --- |"
echo "| spawn ≤ 1.2× uWSGI's (its Emperor at emperor-freq $best, medians) | $(ratio "$(med "$os")" "$ub") | $(awk -v o="$(med "$os")" -v u="$ub" 'BEGIN{ if (o=="" || u=="") print "no figure"; else if (o <= 1.2*u) print "met"; else print "**missed**" }') |"
echo "| zero failed requests on reload | $ofail failed, $oreloaded of $RELOADS reloads seen | $( [ "$ofail" = 0 ] && [ "$oreloaded" = "$RELOADS" ] && echo met || echo '**missed**') |"
