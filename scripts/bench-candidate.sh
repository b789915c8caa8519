#!/usr/bin/env bash
# The anchors' static.sh candidate: one vassal serving the benchmark volume
# through libgfapi, run with `emperor run`. Usage (CANDIDATE_CMD):
#   bench-candidate.sh PORT CACHE_TTL
# Logging is off, as for the uWSGI and nginx runs of static.sh.
set -euo pipefail
PORT=$1 TTL=${2:-1}
: "${EMPEROR_BIN:?}"
D=$(mktemp -d /tmp/emperor-candidate.XXXXXX)
cat > "$D/bench.ini" <<EOF
[uwsgi]
http-socket = 127.0.0.1:$PORT
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=${BENCH_VOL:-benchrv},server=127.0.0.1:0
threads = ${BENCH_THREADS:-64}
static-cache-ttl = $TTL
disable-logging = true
EOF
exec "$EMPEROR_BIN" run --mercy 5s "$D/bench.ini"
