#!/usr/bin/env bash
# Install what Guardian, its lab fleet and its tests need on a fresh Debian/Ubuntu machine (as root),
# then create .venv with Guardian and its dev tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(openssh-server openssh-client supervisor cron logrotate iproute2 procps util-linux systemd python3 python3-yaml chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts no services in containers; the lab starts its own sshd/cron/supervisord per host,
# or boots systemd itself as a lab host's PID 1 (systemctl talks to it over its private socket:
# no D-Bus daemon is needed).

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING' || true
.venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v '^WARNING' || true
.venv/bin/python -c 'import fabric, invoke, paramiko, yaml, rich' || { echo "setup: Python dependencies missing" >&2; exit 1; }
echo "setup: ok ($(.venv/bin/python --version), fabric $(.venv/bin/python -c 'import fabric; print(fabric.__version__)'))"
