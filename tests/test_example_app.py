"""End-to-end tests for the example stock-bot app (examples/stock-bot).

Each test copies the app into tmp_path, starts its process manager (the
deploy_supervisor or the process-compose stand-in) and always stops exactly
the pids it started.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "examples" / "stock-bot"
PY = sys.executable


def wait_for(pred, timeout=15.0, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout:.0f}s")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(pid, timeout=8.0):
    """SIGTERM pid, wait, SIGKILL if needed (pid was started by this test)."""
    if not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def status(app, name):
    try:
        return json.loads((app / "state" / name).read_text())
    except (OSError, ValueError):
        return None


def daemon_pid(app, name):
    st = status(app, name)
    return st["pid"] if st and alive(st["pid"]) else None


def run(app, *args, timeout=60):
    return subprocess.run([PY, *args], cwd=app, capture_output=True, text=True, timeout=timeout)


def check(app):
    return run(app, "pre_market_health_check.py")


def fault(app, kind):
    proc = run(app, "lab_fault.py", kind)
    assert proc.returncode == 0, proc.stderr
    return proc


def cleanup_children(app):
    """Stop daemons / lock holder this test's app started, by their recorded pids."""
    for name, needle in (("uw_daemon.json", "uw_flow_daemon"), ("trading_bot.json", "main.py")):
        st = status(app, name)
        if st and alive(st["pid"]) and needle in Path(f"/proc/{st['pid']}/cmdline").read_text():
            stop_pid(st["pid"])
    holder = app / "state" / ".live_lock_holder.pid"
    if holder.exists():
        pid = int(holder.read_text().split()[0])
        if alive(pid) and "_hold" in Path(f"/proc/{pid}/cmdline").read_text():
            stop_pid(pid)


@pytest.fixture
def app(tmp_path):
    dst = tmp_path / "stock-bot"
    shutil.copytree(SRC, dst, ignore=shutil.ignore_patterns("state", "logs", "__pycache__"))
    return dst


@pytest.fixture
def supervised(app):
    sup = subprocess.Popen([PY, "deploy_supervisor.py"], cwd=app, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: daemon_pid(app, "uw_daemon.json") and daemon_pid(app, "trading_bot.json"))
        wait_for(lambda: check(app).returncode == 0)
        yield app
    finally:
        stop_pid(sup.pid)
        sup.wait(timeout=10)
        cleanup_children(app)


def test_healthy(supervised):
    res = check(supervised)
    assert res.returncode == 0, res.stdout
    lines = res.stdout.splitlines()
    uw = daemon_pid(supervised, "uw_daemon.json")
    bot = daemon_pid(supervised, "trading_bot.json")
    assert f"[OK] UW flow daemon: connected (pid {uw})" in lines
    assert f"[OK] Alpaca data: streaming (pid {bot})" in lines
    assert "[OK] state locks: none stale" in lines
    assert lines[-1] == "RESULT: HEALTHY"
    assert (supervised / "state" / "uw_flow_daemon.pid").read_text() == f"{uw}\n"
    for word in ("fail", "timeout", "connection_error", "delay", "error", "no_data"):
        assert word not in res.stdout.lower()


def test_uw_fault(supervised):
    pid = daemon_pid(supervised, "uw_daemon.json")
    fault(supervised, "uw")
    wait_for(lambda: status(supervised, "uw_daemon.json")["status"] == "socket_error")
    res = check(supervised)
    assert res.returncode == 2
    assert f"[FAIL] UW socket failure: connection_error talking to flow API (pid {pid})" in res.stdout
    assert res.stdout.splitlines()[-1] == "RESULT: UNHEALTHY"


def test_sip_fault(supervised):
    fault(supervised, "sip")
    wait_for(lambda: status(supervised, "trading_bot.json")["status"] == "sip_delay")
    res = check(supervised)
    assert res.returncode == 1
    assert "[WARN] Alpaca SIP delay: last quote 45.0s old (sip_feed: no_data)" in res.stdout
    assert res.stdout.splitlines()[-1] == "RESULT: DEGRADED"
    audit = run(supervised, "friday_eow_audit.py")
    assert audit.returncode == 1


def test_stale_lock_and_live_lock(supervised):
    fault(supervised, "stale-lock")
    lock = supervised / "state" / "metadata.lock"
    dead = int(lock.read_text().split()[0])
    assert not alive(dead)
    assert time.time() - lock.stat().st_mtime > 3600
    res = check(supervised)
    assert res.returncode == 1
    assert f"[WARN] stale lock state/metadata.lock held by dead pid {dead}" in res.stdout

    out = fault(supervised, "live-lock").stdout
    holder = int(out.split()[-1])
    assert out.splitlines() == [f"live lock state/orders.lock held by pid {holder}"]  # no bare pid line
    assert alive(holder)
    assert (supervised / "state" / "orders.lock").read_text().split()[0] == str(holder)
    res = check(supervised)
    assert "stale lock state/orders.lock" not in res.stdout
    assert res.returncode == 1  # still only the metadata.lock

    fault(supervised, "reset")
    wait_for(lambda: not alive(holder))
    assert not lock.exists()
    assert check(supervised).returncode == 0


def test_kill_is_healed_by_supervisor(supervised):
    pid = daemon_pid(supervised, "uw_daemon.json")
    fault(supervised, "kill")
    wait_for(lambda: not alive(pid))
    new = wait_for(
        lambda: (daemon_pid(supervised, "uw_daemon.json") or pid) != pid and daemon_pid(supervised, "uw_daemon.json")
    )
    assert new != pid
    wait_for(lambda: check(supervised).returncode == 0)


def test_sigterm_restart_heals_uw(supervised):
    fault(supervised, "uw")
    wait_for(lambda: check(supervised).returncode == 2)
    pid = daemon_pid(supervised, "uw_daemon.json")
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: (daemon_pid(supervised, "uw_daemon.json") or pid) != pid)
    res = wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(check(supervised)))
    assert "[OK] UW flow daemon: connected" in res.stdout


def test_hang_fault(supervised):
    fault(supervised, "hang")
    proc = subprocess.Popen([PY, "pre_market_health_check.py"], cwd=supervised, stdout=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=3)
    finally:
        proc.kill()
        out = proc.communicate()[0]
    assert out.startswith("checking...")
    fault(supervised, "reset")
    assert check(supervised).returncode == 0


def test_flood_fault(supervised):
    fault(supervised, "flood")
    res = check(supervised)
    assert len(res.stdout) > 25 * 1024 * 1024
    assert res.stdout.splitlines()[-1] == "RESULT: HEALTHY"
    assert res.returncode == 0


def test_unknown_fault_and_missing_daemon(app):
    res = run(app, "lab_fault.py", "bogus")
    assert res.returncode != 0 and "unknown fault kind" in res.stderr
    res = run(app, "lab_fault.py", "uw")
    assert res.returncode != 0 and "not running" in res.stderr
    res = check(app)
    assert res.returncode == 2
    assert "[FAIL] UW flow daemon not running: socket failed (no process)" in res.stdout
    assert "[FAIL] sip_feed error: trading bot not running" in res.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pc(app, *args):
    return subprocess.run(
        [PY, str(app / "bin" / "process-compose"), *args], cwd=app, capture_output=True, text=True, timeout=60
    )


def test_process_compose_stand_in(app):
    port = str(free_port())
    server = subprocess.Popen(
        [PY, str(app / "bin" / "process-compose"), "up", "-f", "process-compose.yaml", "-t=false", "-p", port],
        cwd=app,
        stdin=subprocess.DEVNULL,
    )
    try:

        def running():
            res = pc(app, "process", "list", "-o", "json", "-p", port)
            if res.returncode != 0:
                return None
            states = {s["name"]: s for s in json.loads(res.stdout)}
            ok = all(s["status"] == "Running" and s["pid"] > 0 for s in states.values())
            return states if ok and len(states) == 2 else None

        states = wait_for(running)
        assert set(states) == {"uw-daemon", "trading-bot"}
        old = states["uw-daemon"]["pid"]
        wait_for(lambda: daemon_pid(app, "uw_daemon.json") == old)
        wait_for(lambda: check(app).returncode == 0)

        # kill is not auto-healed (restart: "no"); `process restart` heals it
        fault(app, "kill")
        wait_for(
            lambda: (
                json.loads(pc(app, "process", "get", "uw-daemon", "-o", "json", "-p", port).stdout)[0]["status"]
                == "Completed"
            )
        )
        res = check(app)
        assert res.returncode == 2
        assert "[FAIL] UW flow daemon not running: socket failed (no process)" in res.stdout

        res = pc(app, "process", "restart", "uw-daemon", "-p", port)
        assert res.returncode == 0 and res.stdout.strip() == "Process uw-daemon restarted"
        new = json.loads(pc(app, "process", "get", "uw-daemon", "-o", "json", "-p", port).stdout)[0]
        assert new["pid"] != old and new["status"] == "Running" and new["restarts"] == 1
        wait_for(lambda: check(app).returncode == 0)

        res = pc(app, "process", "restart", "nope", "-p", port)
        assert res.returncode != 0 and "nope" in res.stderr
        res = pc(app, "process", "list", "-p", str(free_port()))
        assert res.returncode != 0 and "failed to connect" in res.stderr

        assert pc(app, "down", "-p", port).returncode == 0
        server.wait(timeout=15)
        assert daemon_pid(app, "uw_daemon.json") is None
    finally:
        stop_pid(server.pid)
        server.wait(timeout=10)
        cleanup_children(app)


def test_process_compose_unix_socket(app, tmp_path):
    sock = str(tmp_path / "pc.sock")
    server = subprocess.Popen(
        [PY, str(app / "bin" / "process-compose"), "up", "-f", "process-compose.yaml", "-t=false", "-U", "-u", sock],
        cwd=app,
        stdin=subprocess.DEVNULL,
    )
    try:
        res = wait_for(
            lambda: (lambda r: r if r.returncode == 0 and "uw-daemon" in r.stdout else None)(
                pc(app, "process", "list", "-o", "wide", "-U", "-u", sock)
            )
        )
        assert res.stdout.split()[:8] == ["PID", "NAME", "NAMESPACE", "STATUS", "AGE", "HEALTH", "RESTARTS", "EXITCODE"]
    finally:
        stop_pid(server.pid)
        server.wait(timeout=10)
        cleanup_children(app)
