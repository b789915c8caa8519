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

# The tutorial's zip app: a small zip, mounted with fuse-zip inside the
# vassal, served by busybox httpd, watched by mountpoint-check. It runs as
# root here so the demo need not change /dev/fuse's mode (a tenant's FUSE
# daemon needs it 0666, udev's default).
ZIPPORT=$((PORT + 1))
rm -rf "$DEMO/site" "$DEMO/app" && mkdir -p "$DEMO/site" "$DEMO/app"
echo 'hello from the zip' > "$DEMO/site/hello.txt"
echo '<h1>an app stored in a zip</h1>' > "$DEMO/site/index.html"
rm -f "$DEMO/app001.zip"; (cd "$DEMO/site" && zip -q -r "$DEMO/app001.zip" .)
export ZIPAPP_ZIP=$DEMO/app001.zip ZIPAPP_MNT=$DEMO/app ZIPAPP_PORT=$ZIPPORT ZIPAPP_USER=root ZIPAPP_GROUP=root
cp examples/tutorial-zip.ini "$DEMO/vassals/zipapp.ini"
CTL=$DEMO/control.sock
cat <<MSG

  emperor demo: vassals in $DEMO/vassals, control socket $CTL

  Try, in another shell:
    curl http://127.0.0.1:$PORT/hello.txt          # served by busybox httpd inside the vassal
    curl http://127.0.0.1:$ZIPPORT/hello.txt       # the zip app, through its fuse-zip mount
    kill -9 \$(pgrep -x fuse-zip); curl http://127.0.0.1:$ZIPPORT/hello.txt
                                                    # the FUSE daemon dies: the vassal is destroyed
                                                    # and back, serving, in tens of milliseconds
    grep -c $DEMO/app /proc/self/mountinfo          # 0: the host never sees the vassal's mount
    $BIN status --control $CTL                      # the vassal table
    touch $DEMO/vassals/httpd.ini                   # graceful reload: same PID 1
    kill -9 <PID from status>                       # kill the vassal: it comes back at once
    rm $DEMO/vassals/httpd.ini                      # stop it: nothing of it remains
    cp $PWD/examples/httpd.ini $DEMO/vassals/        # start it again

  Ctrl-C stops the emperor and every vassal.

MSG
exec "$BIN" --vassals "$DEMO/vassals" --control "$CTL"
