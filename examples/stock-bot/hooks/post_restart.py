#!/usr/bin/env python3
"""Guardian's post_restart for the stock-bot app: after SERVICE came back, reconcile its
positions with the snapshot pre_restart took.

Lab fault ``post-restart-fail`` (state/.fault_post_restart_fail) makes the reconcile
fail: exit 1, and Guardian never calls the host healed.

Usage: post_restart.py SERVICE
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from applib import APP_DIR


def main(argv):
    service = argv[0] if argv else "trading-bot"
    state = os.path.join(APP_DIR, "state")
    if os.path.exists(os.path.join(state, ".fault_post_restart_fail")):
        print("reconcile failed: positions differ from the snapshot (AAPL 100 != 90)")
        return 1
    print(f"{service}: positions reconciled with the snapshot")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
