#!/usr/bin/env python3
"""Minimal respawning process supervisor for the stock-bot app ("signal" style).

Starts ``uw-daemon`` (uw_flow_daemon.py) and ``trading-bot`` (main.py) with
cwd = app dir, writes state/deploy_supervisor.pid and restarts any child that
exits, for any reason, after ~0.5 s (logged to logs/deploy_supervisor.log).
So restarting a daemon = SIGTERM its pid; it comes back with a new pid.

SIGTERM/SIGINT: SIGTERM the children by pid, wait up to 5 s, SIGKILL
leftovers, exit 0.
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from applib import Logger, app_paths, read_pid, write_atomic

RESTART_DELAY = 0.5
PROGRAMS = (("uw-daemon", "uw_flow_daemon.py"), ("trading-bot", "main.py"))


class Supervisor:
    def __init__(self):
        self.root, self.state, logs = app_paths()
        self.log = Logger(os.path.join(logs, "deploy_supervisor.log"))
        self.procs = {}  # name -> Popen or None
        self.exited_at = {}  # name -> time the child was seen dead
        self.stopping = False

    def start(self, name, script):
        proc = subprocess.Popen([sys.executable, os.path.join(self.root, script)], cwd=self.root,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self.procs[name] = proc
        self.log(f"started {name} pid {proc.pid}")

    def run(self):
        pid_path = os.path.join(self.state, "deploy_supervisor.pid")
        write_atomic(pid_path, f"{os.getpid()}\n")
        signal.signal(signal.SIGTERM, self.on_stop)
        signal.signal(signal.SIGINT, self.on_stop)
        self.log(f"supervisor started pid {os.getpid()}")
        for name, script in PROGRAMS:
            self.start(name, script)
        while not self.stopping:
            for name, script in PROGRAMS:
                proc = self.procs[name]
                if proc.poll() is None:
                    continue
                seen = self.exited_at.setdefault(name, time.time())
                if time.time() - seen < RESTART_DELAY:
                    continue
                del self.exited_at[name]
                self.log(f"{name} pid {proc.pid} exited with {proc.returncode}; restarting")
                self.start(name, script)
            time.sleep(0.1)
        self.shutdown()
        if read_pid(pid_path) == os.getpid():
            os.unlink(pid_path)
        return 0

    def on_stop(self, signum, frame):
        self.stopping = True

    def shutdown(self):
        live = [p for p in self.procs.values() if p.poll() is None]
        for proc in live:
            proc.terminate()
        deadline = time.time() + 5
        while time.time() < deadline and any(p.poll() is None for p in live):
            time.sleep(0.05)
        for proc in live:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.log("supervisor stopped")


if __name__ == "__main__":
    sys.exit(Supervisor().run())
