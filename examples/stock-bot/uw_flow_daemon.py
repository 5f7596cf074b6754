#!/usr/bin/env python3
"""Dummy Unusual Whales flow daemon.

Writes state/uw_flow_daemon.pid and state/uw_daemon.json
({"pid", "started_at", "status": "connected", "heartbeat"}), logs to
logs/uw-daemon.log and heartbeats every ~2 s (touching state/uw_heartbeat) until SIGTERM/SIGINT (exit 0).
SIGUSR1 injects a UW socket failure: status becomes "socket_error" until the
daemon is restarted.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from applib import run_daemon

if __name__ == "__main__":
    sys.exit(run_daemon("uw-daemon", "uw_flow_daemon.pid", "uw_daemon.json", "uw-daemon.log",
                        healthy="connected", faulty="socket_error", heartbeat="uw_heartbeat"))
