#!/usr/bin/env bash
# rootfs.sh: the shared rootfs of seed 003's copy-on-write vassal (the
# tutorial's /ns/precise), built from Debian's packages with mmdebstrap and
# cached between runs.
#
#   bash scripts/rootfs.sh          prints the path of a verified tarball
#   bash scripts/rootfs.sh --key    prints the cache key only (no build)
#
# The image: Debian bookworm, variant minbase, with uwsgi-core (uWSGI's app
# server: /usr/bin/uwsgi) and uwsgi-plugin-psgi (the PSGI loader; libperl
# and Perl's core modules come with it, which is all a PSGI hello app
# needs). Laid out as the tutorial says:
#   /.old_root                 where pivot_root puts the old root
#   /opt/uwsgi/plugins         -> /usr/lib/uwsgi/plugins (psgi_plugin.so),
#                                 the tutorial's common plugins directory
#   /var/www                   where the vassal's psgi app goes
# Documentation, man pages and locales are left out (dpkg path-exclude).
#
# The cache: $ROOTFS_CACHE (default /var/cache/emperor-test) holds
# rootfs-KEY.tar, its sha256 (rootfs-KEY.tar.sha256) and the package list
# of the image (rootfs-KEY.packages). KEY hashes this script (the recipe)
# and the candidate versions, in the host's apt lists, of the packages the
# recipe names and everything they depend on, so a new uwsgi or perl upload
# (after an apt-get update) gives a new image. A cached tarball is used only
# if its sha256 matches and it holds the paths the tests need; otherwise it
# is rebuilt. A build writes to a temporary name and renames into place
# under a lock, so a crash or a concurrent run never leaves a half-written
# image under the final name; older images are removed.
#
# Needs root (mmdebstrap's root mode keeps ownership and device nodes), the
# Debian mirror (deb.debian.org, with bookworm-updates and -security), and
# mmdebstrap (make deps).
set -euo pipefail

SUITE=bookworm
VARIANT=minbase
PACKAGES=(uwsgi-core uwsgi-plugin-psgi)
# What the integration test relies on; a cached image lacking one is rebuilt.
REQUIRED=(./usr/bin/uwsgi-core ./usr/bin/uwsgi ./usr/lib/uwsgi/plugins/psgi_plugin.so
  ./opt/uwsgi/plugins ./.old_root/ ./var/www/ ./tmp/)
CACHE=${ROOTFS_CACHE:-/var/cache/emperor-test}
SELF=$(readlink -f "${BASH_SOURCE[0]}")

log() { printf 'rootfs.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# key: sha256 of the recipe and the package versions it would install.
key() {
  local deps
  deps=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "${PACKAGES[@]}" 2>/dev/null |
    awk '/^[a-z0-9]/ {print $1}' | sort -u)
  [ -n "$deps" ] || die "apt-cache knows none of ${PACKAGES[*]}: run apt-get update (make deps)"
  {
    sha256sum < "$SELF"
    echo "$SUITE $VARIANT ${PACKAGES[*]}"
    # shellcheck disable=SC2086
    apt-cache policy $deps 2>/dev/null | awk '/^[^ ]/ {p=$1} /Candidate:/ {print p, $2}'
  } | sha256sum | cut -c1-16
}

# verify TAR: its recorded sha256 matches and it holds every REQUIRED path.
verify() {
  local tar=$1 listing p
  [ -f "$tar" ] && [ -f "$tar.sha256" ] && [ -f "${tar%.tar}.packages" ] || return 1
  (cd "$(dirname "$tar")" && sha256sum --status -c "$(basename "$tar").sha256") || {
    log "$tar: sha256 mismatch"; return 1; }
  listing=$(tar -tf "$tar") || { log "$tar: unreadable"; return 1; }
  for p in "${REQUIRED[@]}"; do
    grep -qxF -- "$p" <<<"$listing" || { log "$tar: $p missing"; return 1; }
  done
}

build() {
  local out=$1 tmp=$1.tmp.$$ t0
  rm -f "$tmp" "$tmp.packages"
  trap 'rm -f "$tmp" "$tmp.packages"' EXIT
  t0=$(date +%s)
  log "building $SUITE/$VARIANT with ${PACKAGES[*]} (mmdebstrap, Debian mirror)"
  # The hooks get the image's root as $1; the packages list is read from
  # the image's dpkg database.
  mmdebstrap --mode=root --format=tar --variant="$VARIANT" \
    --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='mkdir -p "$1/.old_root" "$1/var/www" "$1/opt/uwsgi"' \
    --customize-hook='ln -s /usr/lib/uwsgi/plugins "$1/opt/uwsgi/plugins"' \
    --customize-hook="dpkg-query --admindir=\"\$1/var/lib/dpkg\" -W -f='\${Package} \${Version}\n' > '$tmp.packages'" \
    "$SUITE" "$tmp" >&2 || die "mmdebstrap failed (see above)"
  (cd "$(dirname "$tmp")" && sha256sum "$(basename "$tmp")") | sed "s|$(basename "$tmp")\$|$(basename "$out")|" > "$out.sha256.tmp"
  mv "$tmp.packages" "${out%.tar}.packages"
  mv "$tmp" "$out"
  mv "$out.sha256.tmp" "$out.sha256"
  trap - EXIT
  log "built $out ($(du -m "$out" | cut -f1) MiB) in $(( $(date +%s) - t0 )) s"
}

main() {
  local k out
  k=$(key)
  if [ "${1:-}" = --key ]; then echo "$k"; return; fi
  [ "$(id -u)" = 0 ] || die "needs root (mmdebstrap's root mode)"
  command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (make deps installs it)"
  mkdir -p "$CACHE"
  out=$CACHE/rootfs-$k.tar
  exec 9>"$CACHE/.rootfs.lock"
  flock 9
  if verify "$out"; then
    log "cached $out"
  else
    rm -f "$out" "$out.sha256" "${out%.tar}.packages"
    build "$out"
    verify "$out" || die "the image just built fails verification: $out"
    find "$CACHE" -maxdepth 1 -name 'rootfs-*' ! -name "rootfs-$k.*" -delete
  fi
  echo "$out"
}

main "$@"
