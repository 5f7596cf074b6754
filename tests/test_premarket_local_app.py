"""`premarket --hosts local` heals a local copy of the example app, with its real respawner
(the seed's "signal" style), through exactly the code path remote hosts use."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CommandRun, run_command

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "stock-bot"


def daemon_pid(app: Path, status_file: str) -> int | None:
    try:
        return int(json.loads((app / "state" / status_file).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def wait_healthy(app: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run([sys.executable, str(app / "pre_market_health_check.py")], capture_output=True)
        if proc.returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"example app not healthy: {proc.stdout.decode()}")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Path]:
    app = tmp_path / "stock-bot"
    shutil.copytree(EXAMPLE, app)
    respawner = subprocess.Popen(
        [sys.executable, str(app / "deploy_supervisor.py")],
        cwd=app,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_healthy(app)
        yield app
    finally:
        respawner.send_signal(signal.SIGTERM)  # it stops the daemons it started, by their PIDs
        try:
            respawner.wait(timeout=10)
        except subprocess.TimeoutExpired:
            respawner.kill()
            respawner.wait()
        holder = app / "state" / ".live_lock_holder.pid"
        if holder.exists():
            subprocess.run([sys.executable, str(app / "lab_fault.py"), "reset"], capture_output=True)


def premarket(tmp_path: Path, app: Path, *, dry_run: bool = False) -> CommandRun:
    inv = tmp_path / "local.yml"
    inv.write_text(
        json.dumps(
            {
                "groups": {
                    "box": {
                        "hosts": {
                            "local": {
                                "transport": "local",
                                "app_dir": str(app),
                                "python": sys.executable,
                                "manager": "signal",
                                "settle_seconds": 1,
                            }
                        }
                    }
                }
            }
        )
    )
    return run_command("premarket", "local", inventory=[inv], reports=tmp_path / "reports", dry_run=dry_run)


def fault(app: Path, kind: str) -> None:
    subprocess.run([sys.executable, str(app / "lab_fault.py"), kind], check=True, capture_output=True)


def test_uw_fault_healed_by_a_real_restart(tmp_path: Path, app: Path) -> None:
    uw_before, bot_before = daemon_pid(app, "uw_daemon.json"), daemon_pid(app, "trading_bot.json")
    fault(app, "uw")
    fault(app, "live-lock")
    result = premarket(tmp_path, app)
    assert result.code == 0
    host = result.report.hosts[0]
    assert host.outcome == "healed", host.reason
    assert host.matched_signatures == ["uw_socket"]
    restart = next(a for a in host.actions if a["kind"] == "restart")
    assert restart["target"] == "uw-daemon" and restart["confirmed"]
    uw_after = daemon_pid(app, "uw_daemon.json")
    assert uw_after != uw_before and restart["new_pid"] == uw_after
    assert daemon_pid(app, "trading_bot.json") == bot_before  # untouched
    assert (app / "state" / "orders.lock").exists()  # the live lock survives
    os.kill(uw_after, 0)


def test_sip_fault_writes_alert_and_restarts_the_bot(tmp_path: Path, app: Path) -> None:
    uw_before, bot_before = daemon_pid(app, "uw_daemon.json"), daemon_pid(app, "trading_bot.json")
    fault(app, "sip")
    result = premarket(tmp_path, app)
    assert result.code == 0
    report = result.report
    host = report.hosts[0]
    assert host.outcome == "healed"
    assert [(a["kind"], a["target"]) for a in host.actions] == [
        ("alert", "alpaca_sip"),
        ("restart", "trading-bot"),
    ]
    alerts = sorted((app / "logs").glob("alpaca_sip_alert_*.txt"))
    assert len(alerts) == 1 and "CRITICAL" in alerts[0].read_text()
    assert (tmp_path / "reports" / report.run_id / "local" / alerts[0].name).read_bytes() == alerts[0].read_bytes()
    assert daemon_pid(app, "trading_bot.json") != bot_before
    assert daemon_pid(app, "uw_daemon.json") == uw_before


def test_dry_run_leaves_the_app_exactly_as_it_was(tmp_path: Path, app: Path) -> None:
    fault(app, "uw")
    fault(app, "stale-lock")
    pids = daemon_pid(app, "uw_daemon.json"), daemon_pid(app, "trading_bot.json")
    listing = sorted(str(p.relative_to(app)) for p in app.rglob("*") if "logs" not in p.parts)
    logs = {p.name: p.stat().st_size for p in (app / "logs").glob("guardian*")}
    result = premarket(tmp_path, app, dry_run=True)
    assert result.code == 2
    host = result.report.hosts[0]
    assert host.outcome == "unhealthy"
    assert [(a["kind"], a["target"]) for a in host.plan["actions"]] == [
        ("remove_lock", "metadata.lock"),
        ("restart", "uw-daemon"),
    ]
    assert (daemon_pid(app, "uw_daemon.json"), daemon_pid(app, "trading_bot.json")) == pids
    assert sorted(str(p.relative_to(app)) for p in app.rglob("*") if "logs" not in p.parts) == listing
    assert {p.name: p.stat().st_size for p in (app / "logs").glob("guardian*")} == logs
