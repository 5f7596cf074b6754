#!/usr/bin/env python3
"""Guardian's safe_to_restart for the stock-bot app: may SERVICE be restarted now?

Exit 0 (go) when the trading bot has no order in flight, or is not running at all
(nothing to lose); exit 1 with the reason ("3 orders in flight") otherwise. It only
reads state/trading_bot.json, which the bot rewrites every ~2 s. Services other than
trading-bot hold no orders: always go.

Usage: safe_to_restart.py SERVICE
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from applib import APP_DIR, pid_alive, read_json


def main(argv):
    service = argv[0] if argv else "trading-bot"
    if service != "trading-bot":
        print(f"{service} holds no orders")
        return 0
    status = read_json(os.path.join(APP_DIR, "state", "trading_bot.json")) or {}
    pid = status.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid, "main.py"):
        print("trading bot not running: no orders at risk")
        return 0
    orders = status.get("orders_in_flight") or 0
    if orders:
        print(f"{orders} orders in flight")
        return 1
    print("no orders in flight")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
