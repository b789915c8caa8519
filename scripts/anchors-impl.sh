# Sourced by ../shared/anchors/emperor.sh (EMPEROR_IMPL_FILE) to measure this
# emperor with the same phases, probes and clock as the real uWSGI Emperor.
# Needs EMPEROR_BIN.
IMPL_NAME=goemperor
VASSAL_EXT=ini
: "${EMPEROR_BIN:?EMPEROR_BIN must point at the emperor binary}"

# $1 vassal dir  $2 log file  $3 scan frequency (our safety-net rescan)  $4 clone|noclone
impl_start_emperor() {
  local clone=fs,pid
  [ "$4" = noclone ] && clone=none
  printf '[uwsgi]\nemperor = %s\nemperor-use-clone = %s\nemperor-freq = %s\nreload-mercy = 10\n' "$1" "$clone" "$3" > "$WORK/goemperor.ini"
  "$EMPEROR_BIN" --config "$WORK/goemperor.ini" --control "$WORK/goemperor.sock" >"$2" 2>&1 &
  EMP_PID=$!
  local i; for i in $(seq 1 200); do grep -q 'emperor started' "$2" 2>/dev/null && return 0; sleep 0.025; done
  kill -0 "$EMP_PID" 2>/dev/null
}

impl_stop_emperor() {
  [ -n "$EMP_PID" ] || return 0
  kill -TERM "$EMP_PID" 2>/dev/null
  local i; for i in $(seq 1 600); do kill -0 "$EMP_PID" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$EMP_PID" 2>/dev/null; then say "!! emperor $EMP_PID did not exit in 30 s, SIGKILL"; kill -KILL "$EMP_PID"; fi
  wait "$EMP_PID" 2>/dev/null
  EMP_PID=""
}

# $1 port  $2 zip  $3 mountpoint  $4 variant
impl_fusezip_vassal() {
  local phase=pre-jail
  case "$4" in tutorial|tutorial-uid) phase=as-user;; esac
  printf '[uwsgi]\nif-not-reload =\nexec-%s = fuse-zip -r %s %s\nendif =\n' "$phase" "$2" "$3"
  printf 'attach-daemon = exec busybox httpd -f -p 127.0.0.1:%s -h %s\n' "$1" "$3"
  printf 'mountpoint-check = %s\n' "$3"
}

# $1 port  $2 docroot
impl_trivial_vassal() {
  printf '[uwsgi]\nattach-daemon = exec busybox httpd -f -p 127.0.0.1:%s -h %s\n' "$1" "$2"
}

# $1 vassal file -> PIDs of that vassal: its PID 1 (from emperor status)
# and every descendant.
impl_vassal_pids() {
  local name root
  name=$(basename "$1" ".$VASSAL_EXT")
  root=$("$EMPEROR_BIN" status --control "$WORK/goemperor.sock" 2>/dev/null | awk -v n="$name" '$1==n && $3 ~ /^[0-9]+$/ {print $3; exit}')
  [ -n "$root" ] && "$LP" tree -root "$root" | awk '{print $1}' | paste -sd, -
}
