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
# A GlusterFS volume served straight through libgfapi. If the demo volume
# is missing: glusterd on loopback (started if none runs) and a replica-3
# volume from three bricks under $DEMO/bricks, filled through a FUSE mount.
GPORT=$((PORT + 2))
GVOL=${DEMO_VOLUME:-emperor-demo}
if ! gluster --mode=script pool list >/dev/null 2>&1; then
  echo "starting glusterd (log: $DEMO/glusterd.log)"
  glusterd --log-file="$DEMO/glusterd.log"
  for _ in $(seq 1 100); do gluster --mode=script pool list >/dev/null 2>&1 && break; sleep 0.2; done
fi
if ! gluster --mode=script volume info "$GVOL" >/dev/null 2>&1; then
  echo "creating the replica-3 volume $GVOL under $DEMO/bricks"
  mkdir -p "$DEMO/bricks/b1" "$DEMO/bricks/b2" "$DEMO/bricks/b3" "$DEMO/gfuse"
  H=$(hostname)
  gluster --mode=script volume create "$GVOL" replica 3 "$H:$DEMO/bricks/b1" "$H:$DEMO/bricks/b2" "$H:$DEMO/bricks/b3" force >/dev/null
  gluster --mode=script volume start "$GVOL" >/dev/null
  glusterfs --volfile-server=127.0.0.1 --volfile-id="$GVOL" "$DEMO/gfuse"
  for _ in $(seq 1 50); do mountpoint -q "$DEMO/gfuse" && break; sleep 0.1; done
  echo '<h1>served from GlusterFS through libgfapi</h1>' > "$DEMO/gfuse/index.html"
  echo 'hello from gluster' > "$DEMO/gfuse/hello.txt"
  head -c 4194304 /dev/urandom > "$DEMO/gfuse/big.bin"
  mkdir -p "$DEMO/gfuse/docs" && echo 'docs' > "$DEMO/gfuse/docs/index.html"
  umount "$DEMO/gfuse"
fi
export GLUSTER_PORT=$GPORT GLUSTER_VOLUME=$GVOL GLUSTER_SERVER=127.0.0.1
cp examples/glusterfs.ini "$DEMO/vassals/gluster.ini"

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
    curl http://127.0.0.1:$GPORT/hello.txt         # GlusterFS volume $GVOL, no FUSE involved
    curl -r 0-99 -o /dev/null -w '%{http_code} %{size_download}\n' http://127.0.0.1:$GPORT/big.bin
                                                    # 206 100: a Range request
    curl -I http://127.0.0.1:$GPORT/docs            # 301 to /docs/
    $BIN status --control $CTL                      # the vassal table
    touch $DEMO/vassals/httpd.ini                   # graceful reload: same PID 1
    kill -9 <PID from status>                       # kill the vassal: it comes back at once
    rm $DEMO/vassals/httpd.ini                      # stop it: nothing of it remains
    cp $PWD/examples/httpd.ini $DEMO/vassals/        # start it again

  Ctrl-C stops the emperor and every vassal. glusterd and the demo volume
  stay for the next run (gluster volume stop/delete $GVOL to remove it).

MSG
exec "$BIN" --vassals "$DEMO/vassals" --control "$CTL"
