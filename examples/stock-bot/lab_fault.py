#!/usr/bin/env python3
"""Inject lab faults into the stock-bot app (run on the droplet itself).

Usage: lab_fault.py KIND [--app-dir PATH]

Kinds:
  uw          SIGUSR1 to the UW daemon (status -> socket_error)
  sip         SIGUSR1 to the trading bot (status -> sip_delay)
  stale-lock  write state/metadata.lock holding a dead pid, mtime 2 h ago
  live-lock   start a detached holder of state/orders.lock (flock); says its pid
  kill        SIGKILL the UW daemon
  crash-loop  touch state/.fault_crash_uw-daemon and SIGKILL the UW daemon: it exits 3 at every
              start from then on (a systemd unit with Restart= loops until its start limit)
  hang        touch state/.fault_hang (health check hangs)
  flood       touch state/.fault_flood (health check floods stdout)
  slow-stop   touch state/.fault_slow_stop (daemons take 3 s to exit on SIGTERM, as one
              draining its work would: a restart is slow)
  unsafe      the trading bot has 3 orders in flight (state/.fault_orders) and SIGUSR1 (SIP
              delay): safe_to_restart says no, so Guardian defers its restart; waits until the
              bot publishes the count
  safe        no order in flight any more (safe_to_restart says go again)
  crash-after-start
              touch state/.fault_crash_after_uw-daemon and SIGUSR1 the UW daemon: its
              restart comes up, then exits ~3 s later, at every start
  hung-daemon touch state/.fault_hung_uw-daemon and SIGUSR1 the UW daemon: its restart
              stays alive but stops its heartbeat (state/uw_heartbeat) after the first beat
  pre-restart-fail / post-restart-fail
              touch state/.fault_pre_restart_fail / .fault_post_restart_fail (the example's
              pre_restart / post_restart hooks fail)
  reset       undo every marker above, hang/flood/locks; stop the live-lock holder (by recorded pid)

Processes are only ever signalled by pid, never by name.
"""

import argparse
import fcntl
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from applib import APP_DIR, app_paths, pid_alive, read_json, read_pid, write_atomic

KINDS = (
    "uw", "sip", "stale-lock", "live-lock", "kill", "crash-loop", "hang", "flood", "slow-stop",
    "unsafe", "safe", "crash-after-start", "hung-daemon", "pre-restart-fail", "post-restart-fail", "reset",
)
MARKERS = (
    ".fault_hang", ".fault_flood", ".fault_slow_stop", ".fault_crash_uw-daemon", "metadata.lock",
    ".fault_orders", ".fault_crash_after_uw-daemon", ".fault_hung_uw-daemon",
    ".fault_pre_restart_fail", ".fault_post_restart_fail",
)
HOLDER_FILE = ".live_lock_holder.pid"


def fail(msg):
    print("lab_fault: " + msg, file=sys.stderr)
    return 1


def daemon_pid(state, status_file, script):
    status = read_json(os.path.join(state, status_file)) or {}
    pid = status.get("pid")
    return pid if isinstance(pid, int) and pid_alive(pid, script) else None


def signal_daemon(state, status_file, script, sig, what):
    pid = daemon_pid(state, status_file, script)
    if pid is None:
        return fail(f"{what} is not running (no live pid in state/{status_file})")
    os.kill(pid, sig)
    print(f"sent {signal.Signals(sig).name} to {what} pid {pid}")
    return 0


def touch(state, name):
    with open(os.path.join(state, name), "a"):
        pass
    print("touched state/" + name)
    return 0


def orders(state, count):
    """Set the trading bot's orders in flight; with some, also inject the SIP delay (so Guardian
    wants to restart it). Waits until the running bot has published the count."""
    path = os.path.join(state, ".fault_orders")
    if count:
        write_atomic(path, f"{count}\n")
    elif os.path.exists(path):
        os.unlink(path)
    pid = daemon_pid(state, "trading_bot.json", "main.py")
    if pid is None:
        print(f"orders in flight: {count} (trading bot not running)")
        return 0
    if count:
        os.kill(pid, signal.SIGUSR1)  # the bot republishes its status at once, with the count
    deadline = time.time() + 5
    while time.time() < deadline:
        if ((read_json(os.path.join(state, "trading_bot.json")) or {}).get("orders_in_flight") or 0) == count:
            print(f"orders in flight: {count} (trading bot pid {pid})")
            return 0
        time.sleep(0.1)
    return fail(f"the trading bot did not publish {count} orders in flight within 5 s")


def dead_pid():
    """Return the pid of a process that has certainly exited."""
    for _ in range(20):
        proc = subprocess.Popen(["true"])
        proc.wait()
        if not pid_alive(proc.pid):
            return proc.pid
    raise RuntimeError("could not obtain a dead pid")


def stale_lock(state):
    path = os.path.join(state, "metadata.lock")
    pid = dead_pid()
    write_atomic(path, f"{pid}\n")
    old = time.time() - 2 * 3600
    os.utime(path, (old, old))
    print(f"wrote stale lock state/metadata.lock (dead pid {pid}, mtime -2h)")
    return 0


def live_lock(root, state):
    lock = os.path.join(state, "orders.lock")
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "_hold", lock, "--app-dir", root],
        cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        if read_pid(lock) == proc.pid:
            write_atomic(os.path.join(state, HOLDER_FILE), f"{proc.pid}\n")
            print(f"live lock state/orders.lock held by pid {proc.pid}")
            return 0
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    return fail("lock holder did not take state/orders.lock")


def hold(lock):
    """Body of the detached live-lock holder: flock the file and sleep."""
    with open(lock, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        while True:
            time.sleep(3600)


def reset(state):
    for name in MARKERS:
        path = os.path.join(state, name)
        if os.path.exists(path):
            os.unlink(path)
            print("removed state/" + name)
    holder_file = os.path.join(state, HOLDER_FILE)
    pid = read_pid(holder_file)
    if pid is not None and pid_alive(pid, "_hold"):
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 5
        while pid_alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        print(f"stopped live-lock holder pid {pid}")
    for path in (holder_file, os.path.join(state, "orders.lock")):
        if os.path.exists(path):
            os.unlink(path)
            print("removed state/" + os.path.basename(path))
    print("reset done")
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description="inject a lab fault into the stock-bot app")
    parser.add_argument("kind", help="one of: " + ", ".join(KINDS))
    parser.add_argument("path", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--app-dir", default=APP_DIR)
    args = parser.parse_args(argv)
    root, state, _ = app_paths(args.app_dir)
    if args.kind == "_hold":
        hold(os.path.join(root, args.path))
    if args.kind not in KINDS:
        return fail("unknown fault kind {!r} (expected one of: {})".format(args.kind, ", ".join(KINDS)))
    if args.kind == "uw":
        return signal_daemon(state, "uw_daemon.json", "uw_flow_daemon.py", signal.SIGUSR1, "UW daemon")
    if args.kind == "sip":
        return signal_daemon(state, "trading_bot.json", "main.py", signal.SIGUSR1, "trading bot")
    if args.kind == "kill":
        return signal_daemon(state, "uw_daemon.json", "uw_flow_daemon.py", signal.SIGKILL, "UW daemon")
    if args.kind == "crash-loop":
        with open(os.path.join(state, ".fault_crash_uw-daemon"), "a"):
            pass
        print("touched state/.fault_crash_uw-daemon")
        if daemon_pid(state, "uw_daemon.json", "uw_flow_daemon.py") is None:
            return 0
        return signal_daemon(state, "uw_daemon.json", "uw_flow_daemon.py", signal.SIGKILL, "UW daemon")
    if args.kind == "unsafe":
        return orders(state, 3)
    if args.kind == "safe":
        return orders(state, 0)
    if args.kind in ("crash-after-start", "hung-daemon"):
        marker = ".fault_crash_after_uw-daemon" if args.kind == "crash-after-start" else ".fault_hung_uw-daemon"
        touch(state, marker)
        return signal_daemon(state, "uw_daemon.json", "uw_flow_daemon.py", signal.SIGUSR1, "UW daemon")
    if args.kind in ("pre-restart-fail", "post-restart-fail"):
        return touch(state, ".fault_" + args.kind.replace("-fail", "_fail").replace("-", "_"))
    if args.kind == "stale-lock":
        return stale_lock(state)
    if args.kind == "live-lock":
        return live_lock(root, state)
    if args.kind in ("hang", "flood", "slow-stop"):
        path = os.path.join(state, ".fault_" + args.kind.replace("-", "_"))
        with open(path, "a"):
            pass
        print("touched state/.fault_" + args.kind.replace("-", "_"))
        return 0
    return reset(state)


if __name__ == "__main__":
    sys.exit(main())
