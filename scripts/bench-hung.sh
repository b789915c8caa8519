#!/usr/bin/env bash
# Recovery from a hung FUSE daemon: SIGSTOP the vassal's fuse-zip, then poll
# until HTTP 200 again (latprobe recover -signal 19). The anchors harness
# only does kill -9, so this runs the same vassal recipe for both
# implementations.  Usage: bench-hung.sh goemperor|uwsgi REPS TIMEOUT
# Needs LP (latprobe), WORKDIR, and EMPEROR_BIN for goemperor.
set -uo pipefail
IMPL=$1 REPS=$2 TIMEOUT=${3:-20s}
: "${LP:?}" "${WORKDIR:?}"
W=$(mktemp -d "$WORKDIR/hung-$IMPL.XXXXXX")
mkdir -p "$W/vassals" "$W/stage" "$W/site" "$W/mnt"
printf 'hello from the zip\n' > "$W/site/hello.txt"
(cd "$W/site" && zip -q -r "$W/site.zip" .)
EMP=""
stop_emperor() {
  [ -n "$EMP" ] || return 0
  if [ "$IMPL" = uwsgi ]; then kill -INT "$EMP"; else kill -TERM "$EMP"; fi
  local i; for i in $(seq 1 400); do kill -0 "$EMP" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$EMP" 2>/dev/null; wait "$EMP" 2>/dev/null; EMP=""
}
trap 'stop_emperor' EXIT
if [ "$IMPL" = uwsgi ]; then
  (cd "$W" && exec uwsgi --emperor "$W/vassals" --emperor-use-clone fs,pid --emperor-freq 1) > "$W/emperor.log" 2>&1 &
else
  "$EMPEROR_BIN" --vassals "$W/vassals" --control "$W/ctl.sock" > "$W/emperor.log" 2>&1 &
fi
EMP=$!
sleep 1
: > "$W/ms"
for i in $(seq 1 "$REPS"); do
  port=$((19400 + i)); name="hung$i"; mnt="$W/mnt/$name"; mkdir -p "$mnt"
  if [ "$IMPL" = uwsgi ]; then
    cat > "$W/stage/$name.ini" <<EOF
[uwsgi]
plugin = notfound
master = true
processes = 1
http-socket = 127.0.0.1:$port
hook-asap = exec:mount --make-rprivate /
if-not-reload =
hook-pre-jail = exec:fuse-zip -r $W/site.zip $mnt
endif =
static-map = /=$mnt
mountpoint-check = $mnt
EOF
  else
    cat > "$W/stage/$name.ini" <<EOF
[uwsgi]
if-not-reload =
exec-pre-jail = fuse-zip -r $W/site.zip $mnt
endif =
attach-daemon = exec busybox httpd -f -p 127.0.0.1:$port -h $mnt
mountpoint-check = $mnt
EOF
  fi
  r=$("$LP" spawn -rename "$W/stage/$name.ini:$W/vassals/$name.ini" -url "http://127.0.0.1:$port/hello.txt" -interval 10ms -timeout 30s)
  sleep 0.5
  fz=$("$LP" tree -root "$EMP" | awk -v m="$mnt" '$4=="fuse-zip" && $NF==m {print $1; exit}')
  if [ -z "$fz" ]; then echo "[$i] no fuse-zip found ($r)"; continue; fi
  r=$("$LP" recover -kill "$fz" -signal 19 -url "http://127.0.0.1:$port/hello.txt" -interval 10ms -timeout "$TIMEOUT")
  echo "[$i] hung recovery: $r"
  case "$r" in ok=true*) sed -n 's/.*ms=\([0-9.]*\).*/\1/p' <<<"$r" >> "$W/ms";; esac
  kill -CONT "$fz" 2>/dev/null   # ours is dead with its namespace; resume uWSGI's so it can be torn down
  "$LP" gone -remove "$W/vassals/$name.ini" -mount "$mnt" -interval 10ms -timeout 30s >/dev/null
done
n=$(wc -l < "$W/ms")
if [ "$n" -gt 0 ]; then
  sort -g "$W/ms" | awk -v reps="$REPS" '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "HUNG recovered=%d/%d min=%.1f median=%.1f max=%.1f\n", NR, reps, a[1], m, a[NR]}'
else
  echo "HUNG recovered=0/$REPS (no recovery within $TIMEOUT)"
fi
