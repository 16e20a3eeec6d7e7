#!/usr/bin/env bash
# Idempotent set-up for kubelite: system packages (as root on Debian) and the .venv.
# Fast when everything is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)

if ((${#need_apt[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "install: apt-get install ${need_apt[*]}"
    # The package lists may be missing on a fresh machine; update only when installing.
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "install: missing ${need_apt[*]}: install them (e.g. sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

# Docker, for the nodes' container runtime: Debian's docker.io, and dockerd started when it
# is not running (no init system is assumed: it runs in the background, logging to
# /var/log/dockerd.log).
docker_up() { [[ -S /var/run/docker.sock ]] && docker info >/dev/null 2>&1; }
if ! docker_up; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    if ! command -v dockerd >/dev/null 2>&1; then
      echo "install: apt-get install docker.io"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    fi
    if ! docker_up; then
      echo "install: starting dockerd (log: /var/log/dockerd.log)"
      nohup dockerd >/var/log/dockerd.log 2>&1 &
      for _ in $(seq 1 60); do docker_up && break; sleep 0.5; done
      docker_up || { echo "install: dockerd did not start: see /var/log/dockerd.log" >&2; exit 1; }
    fi
  else
    echo "install: dockerd is not running: install and start Docker (e.g. sudo apt-get install docker.io && sudo dockerd &), or nodes cannot run pods" >&2
  fi
fi

# Reinstall the Python side only when pyproject.toml changed since the last install, or when
# the editable install misses a top-level package added since (its finder maps packages).
stamp="$VENV/.kubelite-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
case $VENV in /*) venv_python=$VENV/bin/python ;; *) venv_python=$PWD/$VENV/bin/python ;; esac
if [[ -x "$VENV/bin/kubelite" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
   (cd / && "$venv_python" -c 'import api, client, apiserver, scheduler, controller_manager, kubelet, cni, kubelite, proto') 2>/dev/null; then
  exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip >/dev/null
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test,dev]'
echo "$want" > "$stamp"
echo "install: $VENV ready ($("$VENV/bin/kubelite" --version))"
