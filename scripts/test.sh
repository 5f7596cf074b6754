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
echo "== mypy over remediation/agent as Python 3.9 (the oldest python3 a host may have)"
# mypy 2 no longer checks code as Python 3.9; 1.19.1 does, from a venv of its own.
MYPY39=.venv/mypy-py39
[ -x "$MYPY39/bin/mypy" ] || { "${PYTHON:-python3}" -m venv "$MYPY39" && "$MYPY39/bin/pip" install -q 'mypy==1.19.1'; }
"$MYPY39/bin/mypy" --strict --python-version 3.9 --follow-imports=silent remediation/agent
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
