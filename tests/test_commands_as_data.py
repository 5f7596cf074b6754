"""Commands as data, end to end on the local host: the plan, a dry run's events and the report's
action record show the exact command a restart runs (or would run), and it is the one that ran.

A stand-in ``supervisorctl`` (a script written by the test) records every call it gets, so the
test knows what was really executed.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from remediation import jobs
from remediation.agent import events
from remediation.execution.hostrun import JobOptions, runner_command
from remediation.inventory import load_inventory
from remediation.reporting.report import HostReport, ReportStore
from remediation.rules import load_rules, rules_data

FAKE_SUPERVISORCTL = """\
#!{python}
import json, os, sys
state = os.path.join(os.path.dirname(os.path.abspath(__file__)), "supervisor.json")
data = json.load(open(state)) if os.path.exists(state) else {{"pid": 1000, "calls": []}}
args = sys.argv[1:]
data["calls"].append(args)
if args[-2:-1] == ["restart"]:
    data["pid"] += 1
    print(args[-1] + ": stopped")
    print(args[-1] + ": started")
elif args[-2:-1] == ["status"]:
    print(args[-1] + "    RUNNING   pid %d, uptime 0:00:01" % data["pid"])
json.dump(data, open(state, "w"))
"""

# Degraded with a UW signature until the stand-in manager has restarted the daemon.
CHECK = """\
import json, os, sys
state = {state!r}
pid = json.load(open(state))["pid"] if os.path.exists(state) else 1000
if pid > 1000:
    print("RESULT: HEALTHY"); sys.exit(0)
print("[ERROR] UW connection_error: socket closed"); sys.exit(1)
"""


@pytest.fixture
def fake_supervisorctl(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "supervisorctl"
    path.parent.mkdir()
    path.write_text(FAKE_SUPERVISORCTL.format(python=sys.executable))
    path.chmod(0o755)
    return path


def calls(fake: Path) -> list[list[str]]:
    state = fake.parent / "supervisor.json"
    return json.loads(state.read_text())["calls"] if state.exists() else []


@pytest.fixture
def app(tmp_path: Path, fake_supervisorctl: Path) -> Path:
    app = tmp_path / "app"
    (app / "state").mkdir(parents=True)
    (app / "pre_market_health_check.py").write_text(
        CHECK.format(state=str(fake_supervisorctl.parent / "supervisor.json"))
    )
    return app


def inventory(tmp_path: Path, app: Path, **settings: Any) -> Path:
    path = tmp_path / "inv.yml"
    host = {"transport": "local", "app_dir": str(app), "python": sys.executable, "settle_seconds": 0, **settings}
    path.write_text(json.dumps({"groups": {"here": {"hosts": {"local": host}}}}))
    return path


def premarket(tmp_path: Path, app: Path, *, dry_run: bool = False, **settings: Any) -> HostReport:
    request = jobs.FleetRequest(
        hosts="local",
        inventory=[inventory(tmp_path, app, **settings)],
        reports=tmp_path / "reports",
        dry_run=dry_run,
        ssh_config=None,
    )
    jobs.premarket(request, console=Console(file=__import__("io").StringIO(), width=160))
    return ReportStore(tmp_path / "reports").load().hosts[0]


def runner_events(tmp_path: Path, app: Path, *, dry_run: bool, **settings: Any) -> list[dict[str, Any]]:
    """The runner's events, started exactly as the controller starts it."""
    host = load_inventory([inventory(tmp_path, app, **settings)]).hosts["local"]
    job = JobOptions(run_id="argv-test", dry_run=dry_run, signatures=rules_data(load_rules([])))
    proc = subprocess.run(shlex.split(runner_command(host, job)), capture_output=True, text=True, timeout=60)
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_a_dry_run_shows_the_exact_restart_command_and_runs_nothing(
    tmp_path: Path, app: Path, fake_supervisorctl: Path
) -> None:
    options = {"supervisorctl": str(fake_supervisorctl), "supervisor_conf": "/etc/supervisor/guardian.conf"}
    argv = [str(fake_supervisorctl), "-c", "/etc/supervisor/guardian.conf", "restart", "uw-daemon"]
    seen = runner_events(tmp_path, app, dry_run=True, manager="supervisor", manager_options=options)
    planned = [e for e in seen if e["event"] == events.ACTION]
    assert [(e["kind"], e["target"], e["result"]) for e in planned] == [("restart", "uw-daemon", "planned")]
    assert planned[0]["command"] == {"argv": argv}
    plan = next(e for e in seen if e["event"] == events.PLAN)
    assert plan["actions"][0]["command"] == {"argv": argv}
    host = premarket(tmp_path, app, dry_run=True, manager="supervisor", manager_options=options)
    assert host.outcome == "degraded" and host.plan is not None
    assert host.plan["actions"][0]["command"] == {"argv": argv}
    assert calls(fake_supervisorctl) == []  # a dry run asks the manager nothing


def test_the_report_records_the_command_that_ran(tmp_path: Path, app: Path, fake_supervisorctl: Path) -> None:
    # supervisorctl, not supervisord's socket (which this machine's config may name)
    options = {"supervisorctl": str(fake_supervisorctl), "supervisor_rpc": False}
    host = premarket(tmp_path, app, manager="supervisor", manager_options=options)
    assert host.outcome == "healed", host.reason
    (restart,) = host.actions
    assert restart["kind"] == "restart" and restart["result"] == "ok" and restart["new_pid"] == 1001
    assert restart["command"] == {"argv": [str(fake_supervisorctl), "restart", "uw-daemon"]}
    assert (restart["via"], restart["via_reason"]) == ("supervisorctl", "manager option supervisor_rpc is false")
    assert host.plan is not None and host.plan["actions"][0]["command"] == restart["command"]
    assert ["restart", "uw-daemon"] in calls(fake_supervisorctl)
    assert [c for c in calls(fake_supervisorctl) if "restart" in c] == [["restart", "uw-daemon"]]
    journal = json.loads((app / ".guardian" / "state" / "journal" / f"{host_run_id(tmp_path)}.json").read_text())
    assert journal["actions"][0]["command"] == restart["command"]


def host_run_id(tmp_path: Path) -> str:
    return ReportStore(tmp_path / "reports").load().run_id


def test_the_signal_managers_step_is_a_signal_to_a_pid(tmp_path: Path, app: Path) -> None:
    daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "uw_flow_daemon.py"])
    try:
        deadline = time.monotonic() + 10
        while "uw_flow_daemon.py" not in Path(f"/proc/{daemon.pid}/cmdline").read_bytes().decode(errors="replace"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        (app / "state" / "uw_flow_daemon.pid").write_text(f"{daemon.pid}\n")
        seen = runner_events(tmp_path, app, dry_run=True, manager="signal")
        (planned,) = [e for e in seen if e["event"] == events.ACTION]
        assert planned["command"] == {"signal": "SIGTERM", "pid": daemon.pid}
        assert daemon.poll() is None  # only planned: nothing was signalled
    finally:
        daemon.kill()
        daemon.wait()
    seen = runner_events(tmp_path, app, dry_run=True, manager="signal")
    (planned,) = [e for e in seen if e["event"] == events.ACTION]
    assert "command" not in planned
    assert planned["command_error"].startswith("cannot restart uw-daemon by signal: pid ")


def test_every_event_carries_its_kinds_fields(tmp_path: Path, app: Path, fake_supervisorctl: Path) -> None:
    seen = runner_events(
        tmp_path,
        app,
        dry_run=False,
        manager="supervisor",
        manager_options={"supervisorctl": str(fake_supervisorctl), "supervisor_rpc": False},
    )
    kinds = {e["event"] for e in seen}
    assert kinds == {"start", "phase", "check", "plan", "action", "confirm", "result", "file"}
    for event in seen:
        assert event["event"] in events.KINDS
        missing = [f for f in events.FIELDS[event["event"]] if f not in event]
        assert not missing, (event["event"], missing)
        assert isinstance(event["t"], float)
