#!/usr/bin/env python3
"""Dummy trading bot.

Writes state/main.pid and state/trading_bot.json
({"pid", "started_at", "status": "streaming", "heartbeat", "orders_in_flight"}), logs to
logs/trading-bot.log and heartbeats every ~2 s (touching state/bot_heartbeat) until SIGTERM/SIGINT (exit 0).
SIGUSR1 injects an Alpaca SIP feed delay: status becomes "sip_delay" until the
bot is restarted.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from applib import run_daemon

if __name__ == "__main__":
    sys.exit(run_daemon("trading-bot", "main.pid", "trading_bot.json", "trading-bot.log",
                        healthy="streaming", faulty="sip_delay", heartbeat="bot_heartbeat", orders=True))
