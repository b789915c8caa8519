#!/usr/bin/env bash
# Static files from GlusterFS: uWSGI's glusterfs plugin, nginx on a FUSE mount
# of the same volume, and this emperor's vassal (cache on, then off), in one
# run of the anchors' static.sh; then a CPU profile of the cache-off case.
# Prints a Markdown section. Needs ANCHOR_COPY (a writable copy of
# ../shared/anchors), EMPEROR_BIN, WORKDIR.
set -euo pipefail
: "${ANCHOR_COPY:?}" "${EMPEROR_BIN:?}" "${WORKDIR:?}"
HERE="$(cd "$(dirname "$0")" && pwd)"
DURATION=${STATIC_DURATION:-8s}
RES=$WORKDIR/static-results
mkdir -p "$RES"
(cd "$ANCHOR_COPY" && bash setup.sh) > "$WORKDIR/setup.log" 2>&1 || { echo "anchors setup.sh failed:"; tail -20 "$WORKDIR/setup.log"; exit 1; }
run_static() { # servers ttl
  (cd "$ANCHOR_COPY" && EMPEROR_BIN=$EMPEROR_BIN RESULTS_DIR=$RES DURATION=$DURATION SERVERS="$1" \
    CANDIDATE_CMD="$HERE/bench-candidate.sh {PORT} $2" bash static.sh) > "$WORKDIR/static-$2.out" 2>&1
  ls -t "$RES"/static-*.tsv | head -1
}
ON=$(run_static "uwsgi nginx candidate" 1)
PROF=$WORKDIR/cache-off.pprof
OFF=$(EMPEROR_VASSAL_CPUPROFILE=$PROF run_static "candidate" 0)

# value SERVER FILE CONNS COLUMN (from a static.sh tsv)
val() { awk -F'\t' -v s="$2" -v f="$3" -v c="$4" -v col="$5" 'NR==1{for(i=1;i<=NF;i++) h[$i]=i; next} $1==s && $2==f && $3==c {print $h[col]; exit}' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || b=="" || b+0==0) print "-"; else printf "%.2f×", a/b }'; }
echo "## Static files from GlusterFS (static.sh)"
echo
echo "The anchors' \`static.sh\`, $DURATION per cell with wrk (2 threads), on the replica-3 volume \`benchrv\`: uWSGI 2.0.21's glusterfs plugin (2 processes × 8 threads, \`--tcp-nodelay\`), nginx 1.22 with sendfile on a FUSE mount of the volume, and this emperor's vassal (\`scripts/bench-candidate.sh\`: one \`glusterfs-mount\`, \`threads = 64\`, logging off) with the cache at its defaults and with \`static-cache-ttl = 0\`. Each column: req/s, MiB/s, p99 ms, server RSS MiB. The load generator, the bricks and the servers share the 2 cores."
echo
echo "| file | conns | uWSGI plugin | nginx on FUSE | ours, cache on | ours, cache off | ours on / uWSGI | ours on / nginx |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
cell() { echo "$(val "$1" "$2" "$3" "$4" req_s) / $(val "$1" "$2" "$3" "$4" MiB_s) / $(val "$1" "$2" "$3" "$4" p99_ms) / $(val "$1" "$2" "$3" "$4" srv_rss_MiB)"; }
for f in f1k.bin f64k.bin f1m.bin f16m.bin; do
  for c in 16 64; do
    metric=req_s; case $f in f1m.bin|f16m.bin) metric=MiB_s;; esac
    echo "| $f | $c | $(cell "$ON" uwsgi $f $c) | $(cell "$ON" nginx $f $c) | $(cell "$ON" candidate $f $c) | $(cell "$OFF" candidate $f $c) | $(ratio "$(val "$ON" candidate $f $c $metric)" "$(val "$ON" uwsgi $f $c $metric)") $metric | $(ratio "$(val "$ON" candidate $f $c $metric)" "$(val "$ON" nginx $f $c $metric)") $metric |"
  done
done
echo
echo "### Targets (ours with the cache at its defaults; ratios of the metric named)"
echo
echo "| target | 16 conns | 64 conns |"
echo "| --- | --- | --- |"
tgt() { # file metric vs min
  local out="" c r
  for c in 16 64; do
    r=$(awk -v a="$(val "$ON" candidate "$1" $c "$2")" -v b="$(val "$ON" "$3" "$1" $c "$2")" 'BEGIN{ if (b+0==0) print 0; else printf "%.2f", a/b }')
    out="$out | ${r}× $(awk -v r="$r" -v m="$4" 'BEGIN{ if (r+0 >= m+0) print "met"; else print "**missed**" }')"
  done
  echo "| ≥ $4× $3 on $1 ($2)$out |"
}
tgt f1k.bin req_s uwsgi 1.2; tgt f64k.bin req_s uwsgi 1.2; tgt f1m.bin MiB_s uwsgi 5; tgt f16m.bin MiB_s uwsgi 5
tgt f1k.bin req_s nginx 1.5; tgt f64k.bin req_s nginx 1.5; tgt f1m.bin MiB_s nginx 1.0; tgt f16m.bin MiB_s nginx 1.0
echo
echo "### Correctness probes of static.sh"
echo
echo '```'
sed -n '/== correctness: candidate/,/^$/p' "$WORKDIR/static-1.out"
echo '```'
echo
echo "### Where the time goes with the cache off"
echo
echo "CPU profile of the vassal's PID 1 over the cache-off run (\`go tool pprof -top\`, cumulative, top 30):"
echo
echo '```'
go tool pprof -top -cum -nodecount=30 "$EMPEROR_BIN" "$PROF" 2>/dev/null | sed -n '1,40p'
echo '```'
echo
echo "<details><summary>static.sh output</summary>"
echo; echo '```'; grep -vE '^\s*$' "$WORKDIR/static-1.out" | sed -n '/== load/,$p'; grep -A20 '== load' "$WORKDIR/static-0.out" | tail -n +3; echo '```'; echo "</details>"
