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

# Reinstall the Python side only when pyproject.toml changed since the last install.
stamp="$VENV/.kubelite-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ -x "$VENV/bin/kubelite" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip >/dev/null
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test,dev]'
echo "$want" > "$stamp"
echo "install: $VENV ready ($("$VENV/bin/kubelite" --version))"
