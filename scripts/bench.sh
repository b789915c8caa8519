#!/usr/bin/env bash
# make bench: this emperor and the real uWSGI Emperor measured in the same
# run, through the same harness (../shared/anchors/emperor.sh and its
# latprobe clock), then docs/benchmarks.md written from the figures.
# Knobs: REPS (10), SCALE (200), ANCHORS (../shared/anchors), UWSGI_FREQS ("3 1").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
REPS=${REPS:-10}
SCALE=${SCALE:-200}
UWSGI_FREQS=${UWSGI_FREQS:-3 1}
[ "$(id -u)" = 0 ] || { echo "make bench runs as root" >&2; exit 1; }
[ -f "$ANCHORS/emperor.sh" ] || { echo "no anchors harness at $ANCHORS (set ANCHORS=)" >&2; exit 1; }
# The baseline itself is a bench-only dependency.
if ! command -v uwsgi >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq uwsgi-core
fi
WORKDIR=$(mktemp -d /tmp/emperor-bench.XXXXXX)
trap 'rm -rf "$WORKDIR"' EXIT
# A private copy: the harness builds its probe next to itself.
cp -r "$ANCHORS" "$WORKDIR/anchors"; chmod -R u+w "$WORKDIR/anchors"
export RESULTS_DIR=$WORKDIR/results
LP=$WORKDIR/anchors/tools/latprobe/latprobe

echo "== uWSGI Emperor (emperor-freq $UWSGI_FREQS), $REPS reps, $SCALE vassals" >&2
EMPEROR_FREQS="$UWSGI_FREQS" REPS=$REPS COUNTS=$SCALE PHASES="A B" bash "$WORKDIR/anchors/emperor.sh" > "$WORKDIR/uwsgi.out" 2>&1
echo "== this emperor, $REPS reps, $SCALE vassals" >&2
EMPEROR_BIN=$ROOT/bin/emperor EMPEROR_IMPL_FILE=$ROOT/scripts/anchors-impl.sh \
  EMPEROR_FREQS=3 REPS=$REPS COUNTS=$SCALE PHASES="A B" bash "$WORKDIR/anchors/emperor.sh" > "$WORKDIR/ours.out" 2>&1
echo "== hung FUSE daemon (SIGSTOP)" >&2
LP=$LP WORKDIR=$WORKDIR EMPEROR_BIN=$ROOT/bin/emperor bash scripts/bench-hung.sh goemperor "$REPS" 20s > "$WORKDIR/hung-ours.out" 2>&1
LP=$LP WORKDIR=$WORKDIR bash scripts/bench-hung.sh uwsgi 2 15s > "$WORKDIR/hung-uwsgi.out" 2>&1
echo "== restart policy: fuse-zip killed 5 times 3 s apart; a vassal failing at start" >&2
LP=$LP EMPEROR_BIN=$ROOT/bin/emperor bash scripts/bench-restart.sh > "$WORKDIR/restart.md" 2>"$WORKDIR/restart.err" \
  || { echo "(restart policy benchmark failed: $(tail -3 "$WORKDIR/restart.err"))" > "$WORKDIR/restart.md"; }
echo "== app server: a PSGI hello app, spawn and graceful reload under load, beside the uWSGI Emperor" >&2
LP=$LP EMPEROR_BIN=$ROOT/bin/emperor bash scripts/bench-app.sh > "$WORKDIR/app.md" 2>"$WORKDIR/app.err" \
  || { echo "(app server benchmark failed: $(tail -3 "$WORKDIR/app.err"))" > "$WORKDIR/app.md"; }
echo "== static files from GlusterFS (anchors setup.sh + static.sh)" >&2
ANCHOR_COPY=$WORKDIR/anchors EMPEROR_BIN=$ROOT/bin/emperor WORKDIR=$WORKDIR bash scripts/bench-static.sh > "$WORKDIR/static.md" 2>"$WORKDIR/static.err" \
  || { echo "(static files benchmark failed: $(tail -3 "$WORKDIR/static.err"))" > "$WORKDIR/static.md"; }
echo "== where the time goes at $SCALE vassals" >&2
N=$SCALE EMPEROR_BIN=$ROOT/bin/emperor bash scripts/bench-burst.sh > "$WORKDIR/burst.md" 2>"$WORKDIR/burst.err" \
  || { echo "(burst profile failed: $(tail -3 "$WORKDIR/burst.err"))" > "$WORKDIR/burst.md"; }
echo "== Go benchmarks" >&2
go test -run '^$' -bench . -benchtime 2000x ./vassalfile ./fileserver > "$WORKDIR/gobench.out" 2>&1

# ---------------------------------------------------------------- figures
# stat FILE 'A freq=1 spawn_ms' -> "min / median / max"
stat3() { awk -v k="$2" 'index($0, k)==1 { for(i=1;i<=NF;i++){split($i,a,"="); v[a[1]]=a[2]} printf "%s / %s / %s", v["min"], v["median"], v["max"]; exit }' "$1"; }
med() { awk -v k="$2" 'index($0, k)==1 { for(i=1;i<=NF;i++){split($i,a,"="); if(a[1]=="median") print a[2]} exit }' "$1"; }
# kvB FILE LINEPREFIX KEY: key=value from the first line of phase B starting with LINEPREFIX
kvB() { awk -v p="$2" -v k="$3" 'index($0, p)>0 { for(i=1;i<=NF;i++){split($i,a,"="); if(a[1]==k){print a[2]; exit}} }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || b=="" || b+0==0) print "-"; else printf "%.1f×", a/b }'; }
mib() { awk -v k="$1" 'BEGIN{ if (k=="") print "-"; else printf "%.1f MiB", k/1024 }'; }
U=$WORKDIR/uwsgi.out O=$WORKDIR/ours.out
best=1; for f in $UWSGI_FREQS; do best=$f; done

ospawn=$(med "$O" "A freq=3 spawn_ms"); uspawn=$(med "$U" "A freq=$best spawn_ms")
orec=$(med "$O" "A freq=3 recovery_ms"); urec=$(med "$U" "A freq=$best recovery_ms")
otd=$(med "$O" "A freq=3 teardown_reaped_ms"); utd=$(med "$U" "A freq=$best teardown_reaped_ms")
oup=$(kvB "$O" "all-up:" all_ms); uup=$(kvB "$U" "all-up:" all_ms)
oemp=$(kvB "$O" "steady:" root_rss_kb); uemp=$(kvB "$U" "steady:" root_rss_kb)
otot=$(kvB "$O" "steady:" total_rss_kb); utot=$(kvB "$U" "steady:" total_rss_kb)
opss=$(kvB "$O" "per vassal:" total_pss_kb/n); upss=$(kvB "$U" "per vassal:" total_pss_kb/n)
odown=$(kvB "$O" "all-down" ms); udown=$(kvB "$U" "all-down" ms)
ohung=$(grep '^HUNG' "$WORKDIR/hung-ours.out" || echo "HUNG (no result)"); uhung=$(grep '^HUNG' "$WORKDIR/hung-uwsgi.out" || echo "HUNG (no result)")
ohungmed=$(sed -n 's/.*median=\([0-9.]*\).*/\1/p' <<<"$ohung")
verdict() { awk -v v="$1" -v lim="$2" 'BEGIN{ if (v=="") print "no figure"; else if (v+0 < lim+0) print "met"; else print "**missed**" }'; }

ucols=""; for f in $UWSGI_FREQS; do ucols="$ucols | uWSGI, emperor-freq $f"; done
row() { # label key(file-prefix without freq) 
  local label=$1 key=$2 line="| $1 | $(stat3 "$O" "A freq=3 $2")"
  for f in $UWSGI_FREQS; do line="$line | $(stat3 "$U" "A freq=$f $2")"; done
  echo "$line | $(ratio "$(med "$U" "A freq=$best $2")" "$(med "$O" "A freq=3 $2")") |"
}
sep="| --- | --- |"; for f in $UWSGI_FREQS; do sep="$sep --- |"; done; sep="$sep --- |"

{
cat docs/benchmarks.head.md
echo
echo "## Run of $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, kernel $(uname -r)"
echo
echo "uWSGI $(uwsgi --version), fuse-zip $(dpkg-query -W -f='${Version}' fuse-zip 2>/dev/null), $REPS repetitions for phase A, $SCALE vassals for phase B. ms as min / median / max. The ratio column is uWSGI at its fastest scan setting (emperor-freq $best) divided by ours, medians."
echo
echo "### A fuse-zip vassal: spawn, recovery, teardown (emperor.sh phase A)"
echo
echo "| figure | ours$ucols | uWSGI / ours |"
echo "$sep"
row "spawn: file renamed in → first HTTP 200 (ms)" "spawn_ms"
row "recovery: kill -9 of fuse-zip → HTTP 200 again (ms)" "recovery_ms"
row "teardown: file deleted → every vassal pid exited (ms)" "teardown_exited_ms"
row "teardown: file deleted → mount gone from every namespace (ms)" "teardown_mount_ms"
row "teardown: file deleted → every vassal pid reaped (ms)" "teardown_reaped_ms"
echo
echo "### A hung FUSE daemon (SIGSTOP of fuse-zip → HTTP 200 again)"
echo
echo "| | result (ms) |"
echo "| --- | --- |"
echo "| ours (mountpoint-check-timeout 3 s, check-interval 1 s) | ${ohung#HUNG } |"
echo "| uWSGI, emperor-freq 1 | ${uhung#HUNG } |"
echo
cat "$WORKDIR/restart.md"
echo
cat "$WORKDIR/app.md"
echo
echo "### $SCALE trivial vassals (emperor.sh phase B)"
echo
echo "| figure | ours | uWSGI, emperor-freq 1 | uWSGI / ours |"
echo "| --- | --- | --- | --- |"
echo "| all files renamed in → all $SCALE answer HTTP 200 (ms) | $oup | $uup | $(ratio "$uup" "$oup") |"
echo "| emperor RSS at $SCALE vassals | $(mib "$oemp") | $(mib "$uemp") | $(ratio "$uemp" "$oemp") |"
echo "| total RSS, emperor + vassals | $(mib "$otot") | $(mib "$utot") | $(ratio "$utot" "$otot") |"
echo "| PSS per vassal (its PID 1 + its httpd) | ${opss} KiB | ${upss} KiB | $(ratio "$upss" "$opss") |"
echo "| all files deleted → no process left (ms) | $odown | $udown | $(ratio "$udown" "$odown") |"
echo
cat "$WORKDIR/burst.md"
echo "### Targets"
echo
echo "| target | figure | |"
echo "| --- | --- | --- |"
echo "| median spawn latency < 100 ms | $ospawn ms | $(verdict "$ospawn" 100) |"
echo "| $SCALE vassals all up < 1 s | $oup ms | $(verdict "$oup" 1000) |"
echo "| emperor RSS < 30 MiB | $(mib "$oemp") | $(verdict "$oemp" 30720) |"
echo "| PSS per vassal within 2× uWSGI's | ${opss} KiB vs ${upss} KiB | $(verdict "$opss" "$(awk -v u="$upss" 'BEGIN{print u*2}')") |"
echo "| median recovery after kill -9 < 300 ms | $orec ms | $(verdict "$orec" 300) |"
echo "| recovery ≥ 3× faster than uWSGI | $(ratio "$urec" "$orec") | $(awk -v u="$urec" -v o="$orec" 'BEGIN{ if (o>0 && u/o>=3) print "met"; else print "**missed**" }') |"
echo "| hung FUSE daemon recovered within timeout + 2 s | ${ohungmed:-none} ms | $(verdict "${ohungmed}" 5000) |"
echo
cat "$WORKDIR/static.md"
echo
echo "### Go benchmarks"
echo
echo '```'
grep -E '^(goos|goarch|cpu|Benchmark)' "$WORKDIR/gobench.out"
echo '```'
echo
echo "### Raw output"
echo
echo "<details><summary>emperor.sh, this emperor</summary>"
echo; echo '```'; grep -vE '^\s+log:' "$O"; echo '```'; echo "</details>"
echo
echo "<details><summary>emperor.sh, uWSGI</summary>"
echo; echo '```'; grep -vE '^\s+log:' "$U"; echo '```'; echo "</details>"
echo
echo "<details><summary>app server (bench-app.sh)</summary>"
echo; echo '```'; grep -vE '^(go: |== )' "$WORKDIR/app.err"; echo '```'; echo "</details>"
echo
echo "<details><summary>hung FUSE daemon</summary>"
echo; echo '```'; cat "$WORKDIR/hung-ours.out" "$WORKDIR/hung-uwsgi.out"; echo '```'; echo "</details>"
} > docs/benchmarks.md
sed -n '/### A fuse-zip/,/### Go benchmarks/p' docs/benchmarks.md
echo "written: docs/benchmarks.md" >&2
