#!/usr/bin/env bash
# `make images`: the local images kubelite's pods need, built without a registry.
#
#   kubelite/busybox:latest  (also busybox:latest, kubelite/busybox:test)
#       Debian's busybox-static with a symlink per applet: sh, httpd, wget, nc, sleep, ...
#   kubelite/pause:3.9
#       the same root filesystem whose entrypoint is a shell pause: it sleeps and exits at
#       once on SIGTERM/SIGINT (the runtime's default sandbox image).
#
# Idempotent and fast when the images are there (one `docker image inspect`). Installs
# busybox-static with apt when it is missing and we are root on Debian. Without a reachable
# dockerd it says so in one line and exits 0 (pods cannot run; e2e tests skip).
set -euo pipefail

IMAGES=(kubelite/busybox:latest busybox:latest kubelite/busybox:test kubelite/pause:3.9)
# Bump when the image contents change, so existing images are rebuilt.
VERSION=1

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "images: dockerd is not reachable (run make install as root, or start dockerd); skipping" >&2
  exit 0
fi

current() {
  docker image inspect --format '{{ index .Config.Labels "io.kubelite.images" }}' "$1" \
    2>/dev/null || true
}

missing=0
for image in "${IMAGES[@]}"; do
  [[ "$(current "$image")" == "$VERSION" ]] || missing=1
done
((missing)) || exit 0

# A static busybox: the image has no libc. (`ldd` says "not a dynamic executable".)
static() { [[ -x "$1" ]] && ! ldd "$1" >/dev/null 2>&1; }
busybox=/bin/busybox
if ! static "$busybox"; then
  if static /usr/bin/busybox; then
    busybox=/usr/bin/busybox
  elif [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "images: apt-get install busybox-static"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
    busybox=/bin/busybox
  else
    echo "images: need a static busybox (sudo apt-get install busybox-static)" >&2
    exit 1
  fi
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,var/www,proc,sys,dev}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [[ "$applet" == busybox ]] || ln -sf busybox "$root/bin/$applet"
done
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo "kubelite busybox image" >"$root/var/www/index.html"

tarball=$(mktemp --suffix=.tar)
trap 'rm -rf "$root" "$tarball"' EXIT
tar -C "$root" -cf "$tarball" .

label="LABEL io.kubelite.images=$VERSION"
path='ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin'
docker import --change "$label" --change "$path" --change 'CMD ["sh"]' \
  "$tarball" kubelite/busybox:latest >/dev/null
docker tag kubelite/busybox:latest busybox:latest
docker tag kubelite/busybox:latest kubelite/busybox:test
pause='ENTRYPOINT ["/bin/sh", "-c", "trap \"exit 0\" TERM INT; while true; do sleep 3600 & wait $!; done"]'
docker import --change "$label" --change "$path" --change "$pause" \
  "$tarball" kubelite/pause:3.9 >/dev/null
echo "images: built ${IMAGES[*]}"
