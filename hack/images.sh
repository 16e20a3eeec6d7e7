#!/usr/bin/env bash
# `make images`: the local images kubelite's pods need, built without a registry.
#
#   kubelite/busybox:latest  (also busybox:latest, kubelite/busybox:test)
#       Debian's busybox-static with a symlink per applet: sh, httpd, wget, nc, sleep, ...
#   kubelite/pause:3.9
#       the same root filesystem whose entrypoint is a shell pause: it sleeps and exits at
#       once on SIGTERM/SIGINT (the runtime's default sandbox image).
#   kubelite/kubelite:latest
#       kubelite itself, for add-ons that run as pods (cluster DNS): the busybox root plus
#       the venv's real CPython interpreter (in /usr/local), its standard library without
#       tests/idle/tkinter/ensurepip/lib2to3, the shared libraries `ldd` finds for the
#       interpreter and every extension module, the site-packages of the project's runtime
#       dependencies (resolved from pyproject.toml through the installed metadata; no pip,
#       pytest, kubernetes, mypy, ...), and the project source in /app (PYTHONPATH=/app).
#       `kubelite` is on PATH. Labelled io.kubelite.source=<hash of the copied project files,
#       pyproject.toml, the interpreter version and the installed distributions>, so it is
#       rebuilt (a few seconds) only when one of those changed. The Dockerfile at the top is
#       the same image the usual way, for machines with a registry.
#
# Idempotent and fast when the images are there (a few `docker image inspect` and one hash).
# Installs busybox-static with apt when it is missing and we are root on Debian. Without a
# reachable dockerd it says so in one line and exits 0 (pods cannot run; e2e tests skip).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGES=(kubelite/busybox:latest busybox:latest kubelite/busybox:test kubelite/pause:3.9)
# Bump when the image contents change, so existing images are rebuilt.
VERSION=2
KUBELITE_IMAGE=kubelite/kubelite:latest
# Bump when the recipe of kubelite/kubelite changes (it is part of the source hash).
KUBELITE_RECIPE=1
PROJECT_DIRS=(api client apiserver scheduler controller_manager kubelet cni kube_proxy dns
              kubelite proto)
PY=${KUBELITE_PYTHON:-$PWD/.venv/bin/python}

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "images: dockerd is not reachable (run make install as root, or start dockerd); skipping" >&2
  exit 0
fi

label() {
  docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}
current() { label "$1" io.kubelite.images; }

project_dirs() { for d in "${PROJECT_DIRS[@]}"; do [[ -d $d ]] && echo "$d"; done; }

# What kubelite/kubelite is made of; any change means a rebuild.
source_hash() {
  local site
  site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  {
    echo "recipe $KUBELITE_RECIPE"
    "$PY" -c 'import sys; print(sys.version)'
    # shellcheck disable=SC2046
    find $(project_dirs) -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
      sort -z | xargs -0 sha256sum
    sha256sum pyproject.toml
    ls "$site"
  } | sha256sum | cut -c1-32
}

missing=0
for image in "${IMAGES[@]}"; do
  [[ "$(current "$image")" == "$VERSION" ]] || missing=1
done
build_kubelite=0
if [[ -x "$PY" ]]; then
  hash=$(source_hash)
  [[ "$(current "$KUBELITE_IMAGE")" == "$VERSION" &&
     "$(label "$KUBELITE_IMAGE" io.kubelite.source)" == "$hash" ]] || build_kubelite=1
else
  echo "images: no $PY (run make install); skipping $KUBELITE_IMAGE" >&2
fi
((missing || build_kubelite)) || exit 0

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
tarball=$(mktemp --suffix=.tar)
kroot=""
trap 'rm -rf "$root" "$tarball" ${kroot:+"$kroot"}' EXIT
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

label_change="LABEL io.kubelite.images=$VERSION"
path='ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin'

if ((missing)); then
  tar -C "$root" -cf "$tarball" .
  docker import --change "$label_change" --change "$path" --change 'CMD ["sh"]' \
    "$tarball" kubelite/busybox:latest >/dev/null
  docker tag kubelite/busybox:latest busybox:latest
  docker tag kubelite/busybox:latest kubelite/busybox:test
  # The sandbox's process: hack/pause.c when a C compiler is there, else a shell loop.
  pause='ENTRYPOINT ["/bin/sh", "-c", "trap \"exit 0\" TERM INT; while true; do sleep 3600 & wait $!; done"]'
  pause_tar=$tarball
  if command -v gcc >/dev/null 2>&1 && gcc -static -Os -o "$root/pause" hack/pause.c 2>/dev/null; then
    pause_tar=$(mktemp --suffix=.tar)
    tar -C "$root" -cf "$pause_tar" .
    rm -f "$root/pause"
    pause='ENTRYPOINT ["/pause"]'
  else
    echo "images: no working gcc (apt-get install gcc libc6-dev): the pause image runs a shell loop" >&2
  fi
  docker import --change "$label_change" --change "$path" --change "$pause" \
    "$pause_tar" kubelite/pause:3.9 >/dev/null
  [[ "$pause_tar" == "$tarball" ]] || rm -f "$pause_tar"
  echo "images: built ${IMAGES[*]}"
fi

((build_kubelite)) || exit 0
started=$(date +%s%N)
previous=$(docker image inspect --format '{{ .Id }}' "$KUBELITE_IMAGE" 2>/dev/null || true)
kroot=$(mktemp -d)
cp -a "$root/." "$kroot/"
# shellcheck disable=SC2046
"$PY" - "$kroot" $(project_dirs) <<'PYEOF'
"""Copy the interpreter, stdlib, runtime dependencies, shared libraries and project into
the image's root (argv[1]); the project directories follow."""
import compileall
import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

root = Path(sys.argv[1])
project_dirs = sys.argv[2:]
ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
local = root / "usr/local"
stdlib_dst = local / "lib" / ver
site_dst = stdlib_dst / "site-packages"
SKIP_STDLIB = {"test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
               "site-packages", "dist-packages", "__phello__"}
SKIP_DYNLOAD = ("_test", "_tkinter", "xxlimited", "_ctypes_test", "_xxtestfuzz")
shared_objects: list[Path] = []


def copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)  # keeps mtimes, so the copied .pyc files stay valid
    if dst.suffix == ".so" or ".so." in dst.name:
        shared_objects.append(dst)


# The interpreter: the venv's python is a symlink to the real one.
exe = Path(os.path.realpath(sys.executable))
copy(exe, local / "bin" / ver)
for alias in ("python3", "python"):
    (local / "bin" / alias).symlink_to(ver)

# The standard library (with its compiled .pyc, without optimised ones).
stdlib = Path(sysconfig.get_paths()["stdlib"])
for dirpath, dirnames, filenames in os.walk(stdlib):
    here = Path(dirpath)
    rel = here.relative_to(stdlib)
    dirnames[:] = [d for d in dirnames
                   if d not in SKIP_STDLIB and not d.startswith("config-")
                   and not (rel == Path(".") and d == "site-packages")]
    for name in filenames:
        if here.name == "__pycache__" and ".opt-" in name:
            continue
        if rel.parts[:1] == ("lib-dynload",) and name.startswith(SKIP_DYNLOAD):
            continue
        copy(here / name, stdlib_dst / rel / name)

# Runtime dependencies: pyproject's, then theirs, as installed in the venv.
try:
    from packaging.requirements import Requirement

    def requirement(text: str) -> str | None:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            return None
        return req.name
except ImportError:  # packaging is not there: names only, markers read loosely
    def requirement(text: str) -> str | None:
        if "extra ==" in text:
            return None
        return re.split(r"[\s<>=!~;\[(]", text.strip(), maxsplit=1)[0]

with open("pyproject.toml", "rb") as f:
    wanted = list(tomllib.load(f)["project"]["dependencies"])
seen: dict[str, metadata.Distribution] = {}
todo = [n for n in map(requirement, wanted) if n]
while todo:
    name = todo.pop()
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        continue
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        sys.exit(f"images: {name} is not installed in the venv (run make install)")
    seen[key] = dist
    todo += [n for n in map(requirement, dist.requires or []) if n]
site = Path(sysconfig.get_paths()["purelib"]).resolve()
for dist in seen.values():
    for entry in dist.files or []:
        src = Path(dist.locate_file(entry)).resolve()
        if site in src.parents and src.is_file() and ".opt-" not in src.name:
            copy(src, site_dst / src.relative_to(site))

# Shared libraries of the interpreter and of every extension module (ld.so included).
# System ones keep their path; others (libpython of a pyenv build) go to /usr/local/lib,
# found through the ld.so.cache that ldconfig writes below.
libs: set[str] = set()
for obj in [local / "bin" / ver, *shared_objects]:
    out = subprocess.run(["ldd", str(obj)], capture_output=True, text=True)
    if out.returncode != 0:
        continue  # static, or not an ELF object
    for line in out.stdout.splitlines():
        if "not found" in line:
            sys.exit(f"images: {obj}: {line.strip()}")
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            libs.add(m.group(1))
for lib in sorted(libs):
    system = lib.startswith(("/lib", "/usr/lib"))
    dst = root / lib.lstrip("/") if system else local / "lib" / Path(lib).name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(os.path.realpath(lib), dst)

# The project, compiled ahead so containers start without compiling it.
for d in project_dirs:
    shutil.copytree(d, root / "app" / d,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
compileall.compile_dir(root / "app", ddir="/app", quiet=1, workers=0)

kubelite = local / "bin" / "kubelite"
kubelite.write_text("#!/usr/local/bin/python3\n"
                    "import sys\n\nfrom kubelite.cli import main\n\nsys.exit(main())\n")
kubelite.chmod(0o755)
(root / "etc/ld.so.conf").write_text("/usr/local/lib\n/lib/x86_64-linux-gnu\n"
                                     "/usr/lib/x86_64-linux-gnu\n")
(root / "etc/nsswitch.conf").write_text("hosts: files dns\n")
print(f"images: {len(seen)} distributions, {len(libs)} shared libraries")
PYEOF
ldconfig -r "$kroot"
tar -C "$kroot" --numeric-owner --owner=0 --group=0 -cf - . |
  docker import \
    --change "$label_change" --change "LABEL io.kubelite.source=$hash" \
    --change 'ENV PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin' \
    --change 'ENV PYTHONPATH=/app' --change 'ENV PYTHONUNBUFFERED=1' \
    --change 'WORKDIR /app' --change 'CMD ["kubelite", "version"]' \
    - "$KUBELITE_IMAGE" >/dev/null
# The image it replaces would linger untagged; remove it unless a container still uses it.
[[ -z "$previous" ]] || docker rmi "$previous" >/dev/null 2>&1 || true
size=$(docker image inspect --format '{{ .Size }}' "$KUBELITE_IMAGE")
elapsed=$((($(date +%s%N) - started) / 1000000))
printf 'images: built %s (%d MB, %d.%d s)\n' "$KUBELITE_IMAGE" $((size / 1000000)) \
  $((elapsed / 1000)) $((elapsed % 1000 / 100))
