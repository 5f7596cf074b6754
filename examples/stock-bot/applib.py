"""Shared helpers for the stock-bot example app (stdlib only, Python 3.9+).

Everything locates the app directory from ``__file__`` so the app works at
/root/stock-bot on a droplet and from a temporary copy in tests.
"""

import json
import os
import signal
import sys
import time

APP_DIR = os.path.dirname(os.path.abspath(__file__))


def app_paths(app_dir=None):
    """Return (app_dir, state_dir, logs_dir), creating state/ and logs/."""
    root = os.path.abspath(app_dir or APP_DIR)
    state = os.path.join(root, "state")
    logs = os.path.join(root, "logs")
    os.makedirs(state, exist_ok=True)
    os.makedirs(logs, exist_ok=True)
    return root, state, logs


#: A file in state/ naming a directory (relative to the app dir) where the daemons write their pid
#: files instead of state/: the benchmark's app with its pid files where Guardian does not look.
PID_DIR_FILE = ".pid_dir"


def daemon_pid_path(state, pid_file):
    """Where a daemon's pid file is: state/<pid_file>, or in the directory state/.pid_dir names."""
    try:
        with open(os.path.join(state, PID_DIR_FILE)) as fh:
            rel = fh.read().strip()
    except OSError:
        rel = ""
    return os.path.join(os.path.dirname(state), rel, pid_file) if rel else os.path.join(state, pid_file)


def write_atomic(path, text):
    """Write text to path via a temporary file and os.replace."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_json(path, data):
    write_atomic(path, json.dumps(data, sort_keys=True) + "\n")


def read_json(path):
    """Return the parsed JSON object at path, or None if missing/invalid."""
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_pid(path):
    """Return the integer on the first line of path, or None."""
    try:
        with open(path) as fh:
            first = fh.readline().strip()
        pid = int(first)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def pid_alive(pid, needle=None):
    """True if pid is a live (non-zombie) process.

    If ``needle`` is given and /proc/PID/cmdline is readable, the command line
    must also contain it (guards against pid reuse).
    """
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    if needle:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            return True
        return needle in cmdline
    return True


class Logger:
    """Append timestamped lines to a log file."""

    def __init__(self, path):
        self.path = path

    def __call__(self, msg):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.path, "a") as fh:
            fh.write(f"{stamp} [{os.getpid()}] {msg}\n")


def orders_in_flight(state):
    """The trading bot's open orders: the count lab_fault ``unsafe`` sets (0 when none)."""
    try:
        with open(os.path.join(state, ".fault_orders")) as fh:
            return max(0, int(fh.read().strip() or 0))
    except (OSError, ValueError):
        return 0


def run_daemon(name, pid_file, status_file, log_file, healthy, faulty, heartbeat=None, orders=False):
    """Run a dummy daemon loop until SIGTERM/SIGINT.

    Writes state/<pid_file> and state/<status_file>; SIGUSR1 switches the status
    from ``healthy`` to ``faulty`` for the rest of the process's life. Every ~2 s
    it rewrites the status and touches state/<heartbeat> (its heartbeat file);
    with ``orders`` the status carries ``orders_in_flight``.

    Lab faults (marker files in state/): ``.fault_crash_<name>`` exits 3 at start;
    ``.fault_crash_after_<name>`` exits 4 about 3 s after each start (it comes up,
    looks healthy, then dies); ``.fault_hung_<name>`` stops the heartbeat after the
    first beat while the process lives on (a hung daemon).
    """
    _, state, logs = app_paths()
    log = Logger(os.path.join(logs, log_file))
    if os.path.exists(os.path.join(state, ".fault_crash_" + name)):
        # lab fault crash-loop: this daemon dies at every start, as one whose upstream is gone would
        log(f"{name}: crash-loop fault: exiting with status 3 at start")
        return 3
    crash_at = None
    if os.path.exists(os.path.join(state, ".fault_crash_after_" + name)):
        crash_at = time.time() + 3.0
    hung = os.path.exists(os.path.join(state, ".fault_hung_" + name))
    pid_path = daemon_pid_path(state, pid_file)
    os.makedirs(os.path.dirname(pid_path), exist_ok=True)
    status_path = os.path.join(state, status_file)
    beat_path = os.path.join(state, heartbeat) if heartbeat else None
    pid = os.getpid()
    status = {"pid": pid, "started_at": time.time(), "status": healthy, "heartbeat": time.time()}

    def publish():
        status["heartbeat"] = time.time()
        if orders:
            status["orders_in_flight"] = orders_in_flight(state)
        write_json(status_path, status)
        if beat_path:
            with open(beat_path, "a"):
                pass
            os.utime(beat_path, None)

    def on_fault(signum, frame):
        status["status"] = faulty
        log(f"{name}: injected fault, status={faulty}")
        publish()

    def on_stop(signum, frame):
        if os.path.exists(os.path.join(state, ".fault_slow_stop")):
            log(f"{name}: received signal {signum}, draining for 3 s")
            time.sleep(3)
        log(f"{name}: received signal {signum}, exiting")
        raise SystemExit(0)

    signal.signal(signal.SIGUSR1, on_fault)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    publish()
    write_atomic(pid_path, f"{pid}\n")
    log(f"{name}: started, status={healthy}")
    try:
        last = time.time()
        while True:
            time.sleep(0.5)
            if crash_at is not None and time.time() >= crash_at:
                log(f"{name}: crash-after-start fault: exiting with status 4")
                return 4
            if hung:
                continue  # alive, answering nothing: no heartbeat from here on
            if time.time() - last >= 2.0:
                publish()
                last = time.time()
    finally:
        if read_pid(pid_path) == pid:
            try:
                os.unlink(pid_path)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit("applib is a helper module, not a program")
