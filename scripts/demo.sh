#!/usr/bin/env bash
# make demo: a vassal directory built from examples/, and the emperor in the
# foreground. Ctrl-C stops every vassal and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO_DIR:-/tmp/emperor-demo}
PORT=${DEMO_PORT:-9090}
BIN=$PWD/bin/emperor
[ "$(id -u)" = 0 ] || { echo "make demo runs as root (namespaces, privilege drop)" >&2; exit 1; }
if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then
  echo "port $PORT is in use: DEMO_PORT=NNNN make demo" >&2; exit 1
fi
rm -rf "$DEMO/vassals"
mkdir -p "$DEMO/vassals" "$DEMO/www"
chmod 755 "$DEMO" "$DEMO/www"
echo '<h1>hello from an emperor vassal</h1>' > "$DEMO/www/index.html"
echo 'hello' > "$DEMO/www/hello.txt"
export HTTPD_PORT=$PORT HTTPD_ROOT=$DEMO/www
cp examples/httpd.ini "$DEMO/vassals/httpd.ini"
CTL=$DEMO/control.sock
cat <<MSG

  emperor demo: vassals in $DEMO/vassals, control socket $CTL

  Try, in another shell:
    curl http://127.0.0.1:$PORT/hello.txt          # served by busybox httpd inside the vassal
    $BIN status --control $CTL                      # the vassal table
    touch $DEMO/vassals/httpd.ini                   # graceful reload: same PID 1
    kill -9 <PID from status>                       # kill the vassal: it comes back at once
    rm $DEMO/vassals/httpd.ini                      # stop it: nothing of it remains
    cp $PWD/examples/httpd.ini $DEMO/vassals/        # start it again

  Ctrl-C stops the emperor and every vassal.

MSG
exec "$BIN" --vassals "$DEMO/vassals" --control "$CTL"
