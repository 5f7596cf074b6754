#!/usr/bin/env python3
"""Guardian's pre_restart for the stock-bot app: before SERVICE is restarted, cancel its
open orders and snapshot positions to state/positions_snapshot.json.

Lab fault ``pre-restart-fail`` (state/.fault_pre_restart_fail) makes it fail as an
unreachable broker would: exit 1, and Guardian defers the restart.

Usage: pre_restart.py SERVICE
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from applib import APP_DIR, write_json


def main(argv):
    service = argv[0] if argv else "trading-bot"
    state = os.path.join(APP_DIR, "state")
    if os.path.exists(os.path.join(state, ".fault_pre_restart_fail")):
        print("broker API unreachable: open orders not cancelled")
        return 1
    write_json(os.path.join(state, "positions_snapshot.json"), {"service": service, "at": time.time(), "positions": {}})
    print(f"{service}: 0 open orders cancelled; positions snapshot in state/positions_snapshot.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
