#!/usr/bin/env bash
# Set up (idempotent), then lint, type-check and run the whole test suite, lab tests included.
# Needs root: the lab fleet uses network, PID and mount namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check remediation tasks.py
echo "== mypy"
.venv/bin/mypy
echo "== dependency audit (PyPI advisories; see scripts/audit_deps.py)"
.venv/bin/python scripts/audit_deps.py
echo "== pytest"
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$code"
