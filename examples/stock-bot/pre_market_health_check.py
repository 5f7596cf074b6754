#!/usr/bin/env python3
"""Pre-market health check for the stock-bot app.

Exit codes (worst wins): 0 healthy, 1 degraded, 2 unhealthy.  One line per
finding, then ``RESULT: HEALTHY|DEGRADED|UNHEALTHY``.  Healthy and lock lines
avoid the words Guardian's failure regexes look for.

Lab faults: state/.fault_hang makes the check hang forever after printing
``checking...``; state/.fault_flood makes it print ~30 MB of noise first.

Usage: pre_market_health_check.py [--app-dir PATH]
"""

import argparse
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from applib import APP_DIR, daemon_pid_path, pid_alive, read_json, read_pid

FLOOD_BYTES = 30 * 1024 * 1024


def daemon_pid(state, pid_file, status_file, script):
    """Return (pid, status) of a running daemon, or (None, None)."""
    status = read_json(os.path.join(state, status_file))
    pid_from_file = read_pid(daemon_pid_path(state, pid_file))
    if status is None or pid_from_file is None:
        return None, None
    pid = status.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid, script):
        return None, None
    return pid, status.get("status")


def check_uw(state):
    pid, status = daemon_pid(state, "uw_flow_daemon.pid", "uw_daemon.json", "uw_flow_daemon.py")
    if pid is None:
        return 2, "[FAIL] UW flow daemon not running: socket failed (no process)"
    if status == "socket_error":
        return 2, f"[FAIL] UW socket failure: connection_error talking to flow API (pid {pid})"
    return 0, f"[OK] UW flow daemon: connected (pid {pid})"


def check_bot(state):
    pid, status = daemon_pid(state, "main.pid", "trading_bot.json", "main.py")
    if pid is None:
        return 2, "[FAIL] sip_feed error: trading bot not running"
    if status == "sip_delay":
        return 1, "[WARN] Alpaca SIP delay: last quote 45.0s old (sip_feed: no_data)"
    return 0, f"[OK] Alpaca data: streaming (pid {pid})"


def check_locks(state):
    results = []
    stale = 0
    for path in sorted(glob.glob(os.path.join(state, "*.lock"))):
        name = "state/" + os.path.basename(path)
        pid = read_pid(path)
        if pid is not None and pid_alive(pid):
            results.append((0, f"[OK] lock {name} held by live pid {pid}"))
        else:
            stale += 1
            shown = pid if pid is not None else "?"
            results.append((1, f"[WARN] stale lock {name} held by dead pid {shown}"))
    if not stale:
        results.append((0, "[OK] state locks: none stale"))
    return results


def flood():
    line = "noise %06d " + "." * 56 + "\n"
    written = 0
    n = 0
    out = sys.stdout
    while written < FLOOD_BYTES:
        chunk = "".join(line % (n + i) for i in range(1000))
        out.write(chunk)
        written += len(chunk)
        n += 1000
    out.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-dir", default=APP_DIR)
    args = parser.parse_args(argv)
    state = os.path.join(os.path.abspath(args.app_dir), "state")
    if os.path.exists(os.path.join(state, ".fault_hang")):
        print("checking...", flush=True)
        while True:
            time.sleep(3600)
    if os.path.exists(os.path.join(state, ".fault_flood")):
        flood()
    results = [check_uw(state), check_bot(state), *check_locks(state)]
    for _, line in results:
        print(line)
    worst = max(code for code, _ in results)
    print("RESULT: " + ("HEALTHY", "DEGRADED", "UNHEALTHY")[worst])
    sys.stdout.flush()
    return worst


if __name__ == "__main__":
    sys.exit(main())
