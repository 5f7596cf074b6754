#!/usr/bin/env bash
# The demo: set up, bring up a 4-droplet lab fleet, break three of them, run premarket, show the
# report, and take the lab down again (also on failure or Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
INV=.venv/bin/invoke
trap '$INV lab.down >/dev/null 2>&1 || true' EXIT
$INV lab.up --hosts 4
$INV lab.fault h01 uw          # UW socket failure (supervisor host)
$INV lab.fault h02 sip         # Alpaca SIP delay (process-compose stand-in host)
$INV lab.fault h03 stale-lock  # stale metadata lock (signal-style host)
$INV lab.fault h04 live-lock   # a live lock that must survive
set +e
$INV premarket --hosts lab --settle 1
code=$?
set -e
$INV report --host h01
echo "premarket exit code: $code"
echo "HTML report: $PWD/reports/$(cat reports/latest)/index.html"
echo "fleet timeline: $PWD/reports/index.html"
