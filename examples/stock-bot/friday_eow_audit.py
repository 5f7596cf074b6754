#!/usr/bin/env python3
"""Friday end-of-week audit for the stock-bot app.

Summarises the daemon status files, state locks and log sizes.  Exit codes
follow the health-check contract: 0 all daemons nominal, 1 a daemon is
degraded (faulted or not running).

Usage: friday_eow_audit.py [--app-dir PATH]
"""

import argparse
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from applib import APP_DIR, pid_alive, read_json

DAEMONS = (
    ("uw-daemon", "uw_daemon.json", "uw_flow_daemon.py", "connected"),
    ("trading-bot", "trading_bot.json", "main.py", "streaming"),
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-dir", default=APP_DIR)
    args = parser.parse_args(argv)
    root = os.path.abspath(args.app_dir)
    state = os.path.join(root, "state")
    code = 0
    print("End-of-week audit {} ({})".format(time.strftime("%Y-%m-%d"), root))
    for name, status_file, script, nominal in DAEMONS:
        status = read_json(os.path.join(state, status_file)) or {}
        pid = status.get("pid")
        running = isinstance(pid, int) and pid_alive(pid, script)
        state_word = status.get("status", "missing") if running else "not running"
        if state_word == nominal:
            uptime = time.time() - float(status.get("started_at", time.time()))
            print(f"[OK] {name}: {state_word} (pid {pid}, up {uptime:.0f}s)")
        else:
            code = 1
            print(f"[WARN] {name}: degraded ({state_word})")
    locks = sorted(glob.glob(os.path.join(state, "*.lock")))
    print(f"[INFO] state locks present: {len(locks)}")
    for path in sorted(glob.glob(os.path.join(root, "logs", "*.log"))):
        print(f"[INFO] log {os.path.basename(path)}: {os.path.getsize(path)} bytes")
    print("RESULT: " + ("HEALTHY" if code == 0 else "DEGRADED"))
    return code


if __name__ == "__main__":
    sys.exit(main())
