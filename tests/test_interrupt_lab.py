"""Ctrl-C at any moment over real SSH: the report, the host's journal, guardian.log and the
restart budget must agree with what the hosts' process managers actually did.

The hosts get a ``uw`` fault and ``slow-stop`` (their daemons take 3 s to exit on SIGTERM, as
one draining its work would), so a restart is slow enough to be interrupted in the middle.
The controller is the real ``guardian`` program, sent a real SIGINT.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import APP

from remediation.lab import Lab
from remediation.reporting.report import HostReport, ReportStore, RunReport

pytestmark = pytest.mark.lab
HOSTS = ("h01", "h02", "h03")  # supervisor, process-compose stand-in, signal (respawner)
JOURNALS = f"{APP}/.guardian/state/journal"


def uw_pid(lab: Lab, host: str) -> int:
    return int(json.loads(lab.path(host, f"{APP}/state/uw_daemon.json").read_text())["pid"])


def journals(lab: Lab, host: str) -> dict[str, dict[str, Any]]:
    found = {}
    for path in lab.path(host, JOURNALS).glob("*.json") if lab.path(host, JOURNALS).is_dir() else []:
        try:
            found[path.stem] = json.loads(path.read_text())
        except ValueError:
            continue  # never half-written (atomic rename), but be safe while polling
    return found


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def run_id_of(tmp_path: Path) -> str:
    """The run id of the premarket under way (its report is saved as soon as it starts)."""
    reports = tmp_path / "reports"
    wait_for("the run's first report", lambda: any(reports.glob("*/report.json")))
    return next(reports.glob("*/report.json")).parent.name


def action_started(lab: Lab, run_id: str, kind: str, *, finished: bool = False) -> Callable[[], bool]:
    """Some host's journal of run ``run_id`` shows a ``kind`` action started (or, with ``finished``, done)."""

    def seen() -> bool:
        for host in HOSTS:
            for action in journals(lab, host).get(run_id, {}).get("actions", []):
                if action["kind"] == kind and (action["result"] != "started") == finished:
                    return True
        return False

    return seen


NO_PIDFILES = {  # daemons that write no pid file where Guardian looks: restarts are confirmed by the manager
    "services": {
        "uw-daemon": {"program": "uw_flow_daemon.py", "pidfile": "state/none.pid"},
        "trading-bot": {"program": "main.py", "pidfile": "state/none.pid"},
    }
}


def premarket(lab: Lab, tmp_path: Path, *extra: str, pidfiles: bool = True) -> subprocess.Popen[str]:
    guardian = Path(sys.executable).parent / "guardian"
    inventories = ["--inventory", str(lab.inventory_path)]
    if not pidfiles:  # the supervisor and process-compose hosts; the signal style needs its pid file
        override = tmp_path / "zz-no-pidfiles.yml"
        override.write_text(json.dumps({"groups": {"lab": {"hosts": {"h01": NO_PIDFILES, "h02": NO_PIDFILES}}}}))
        inventories += ["--inventory", str(override)]
    return subprocess.Popen(
        [
            str(guardian),
            "premarket",
            "--hosts",
            ",".join(HOSTS),
            *inventories,
            "--reports",
            str(tmp_path / "reports"),
            "--ssh-config",
            "",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def interrupt(proc: subprocess.Popen[str], *, twice: bool = False) -> str:
    try:
        proc.send_signal(signal.SIGINT)
        if twice:
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out


def summary(actions: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(a["kind"], a["target"], a["result"]) for a in actions]


def settled_journal(lab: Lab, host: str, run_id: str) -> dict[str, Any]:
    """The host's journal of this run, once the runner on the host has ended."""
    wait_for(
        f"{host}'s runner to finish its journal",
        lambda: journals(lab, host).get(run_id, {}).get("outcome", "running") != "running",
    )
    return journals(lab, host)[run_id]


def assert_agree(lab: Lab, report: RunReport, pids_before: dict[str, int], *, cut: bool) -> int:
    """Check every host's report against its journal, guardian.log, breaker and daemons; returns
    how many restarts were started on the fleet."""
    restarts = 0
    for host in HOSTS:
        entry: HostReport = next(h for h in report.hosts if h.host == host)
        journal = settled_journal(lab, host, report.run_id)
        on_host = summary(journal["actions"])
        in_report = summary(entry.actions)
        if cut:
            # The session was cut: an action whose result never came back is "interrupted" in the
            # report, and the journal says how it really ended. Nothing started is missing.
            assert [a[:2] for a in in_report] == [a[:2] for a in on_host][: len(in_report)], (host, entry.actions)
            for (kind, target, result), (_, _, real) in zip(in_report, on_host):
                assert result in (real, "interrupted"), (host, kind, target, result, real)
            assert len(in_report) == len(on_host) or entry.outcome == "interrupted"
        else:
            # Asked to stop, each host finished the action in hand and reported it all.
            assert in_report == on_host, (host, entry.actions, journal["actions"])
            assert "started" not in {a[2] for a in in_report}
        assert "would" not in entry.reason
        log = lab.path(host, f"{APP}/logs/guardian.log").read_text()
        assert f"Run {report.run_id} finished: {journal['outcome']}" in log
        if journal["outcome"] == "interrupted":
            assert "Stopping:" in log
            assert entry.outcome == "interrupted"
        started = [a for a in journal["actions"] if a["kind"] == "restart"]
        restarts += len(started)
        breaker_file = lab.path(host, f"{APP}/.guardian/state/guardian-breaker.json")
        breaker = json.loads(breaker_file.read_text()) if breaker_file.exists() else {"restarts": {}}
        assert len(breaker["restarts"].get("uw-daemon", [])) == len(started), (host, breaker)
        for action in started:
            # What the manager did: the daemon runs with the pid the record names.
            assert action["result"] == "ok", action
            wait_for(f"{host}'s uw daemon to publish its pid", lambda h=host: uw_pid(lab, h) != pids_before[h])
            assert uw_pid(lab, host) == action["new_pid"] != pids_before[host]
        if not started:
            assert uw_pid(lab, host) == pids_before[host]
    return restarts


def faulted(lab: Lab) -> dict[str, int]:
    for host in HOSTS:
        lab.fault(host, "slow-stop")
        lab.fault(host, "uw")
    return {host: uw_pid(lab, host) for host in HOSTS}


def load(tmp_path: Path) -> RunReport:
    return ReportStore(tmp_path / "reports").load()


@pytest.mark.parametrize("pidfiles", [True, False], ids=["pid-files", "no-pid-files"])
def test_ctrl_c_during_a_restart_lets_it_finish_and_reports_it(fleet: Lab, tmp_path: Path, pidfiles: bool) -> None:
    lab = fleet
    before = faulted(lab)
    proc = premarket(lab, tmp_path, "--force", "--settle", "1", pidfiles=pidfiles)
    wait_for("a restart to start", action_started(lab, run_id_of(tmp_path), "restart"))
    out = interrupt(proc)
    assert proc.returncode == 130, out
    assert "Ctrl-C again to cut" in out
    report = load(tmp_path)
    assert report.interrupted and report.complete and report.exit_code == 130
    assert assert_agree(lab, report, before, cut=False) >= 1
    # The interrupted hosts' restarts are reported as done, not as "would restart".
    interrupted = [h for h in report.hosts if h.outcome == "interrupted"]
    assert interrupted
    for host in interrupted:
        assert any(a["kind"] == "restart" and a["result"] == "ok" for a in host.actions) or not host.actions
        assert "stopped:" in host.reason


def test_ctrl_c_twice_cuts_the_sessions_and_nothing_started_is_lost(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    before = faulted(lab)
    proc = premarket(lab, tmp_path, "--force", "--settle", "1")
    wait_for("a restart to start", action_started(lab, run_id_of(tmp_path), "restart"))
    out = interrupt(proc, twice=True)
    assert proc.returncode == 130, out
    report = load(tmp_path)
    assert report.interrupted and report.exit_code == 130
    assert assert_agree(lab, report, before, cut=True) >= 1
    cut_short = [a for h in report.hosts for a in h.actions if a["result"] == "interrupted"]
    assert cut_short, "a restart in progress when the sessions were cut must be reported as interrupted"
    assert all("journal" in a["detail"] for a in cut_short)
    import jsonschema

    schema = json.loads((Path(__file__).parent.parent / "docs" / "report.schema.json").read_text())
    jsonschema.validate(json.loads((tmp_path / "reports" / report.run_id / "report.json").read_text()), schema)


def test_ctrl_c_during_the_settle_reports_restarts_done_and_not_verified(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    before = faulted(lab)
    proc = premarket(lab, tmp_path, "--force", "--settle", "15")
    wait_for("a restart to finish", action_started(lab, run_id_of(tmp_path), "restart", finished=True))
    time.sleep(1)  # into the settle
    out = interrupt(proc)
    assert proc.returncode == 130, out
    report = load(tmp_path)
    assert assert_agree(lab, report, before, cut=False) >= 1
    settled = [h for h in report.hosts if any(a["kind"] == "restart" for a in h.actions)]
    assert settled
    for host in settled:
        assert host.outcome == "interrupted" and host.after is None
        assert "not re-verified" in host.reason


def test_ctrl_c_after_the_hosts_finished_keeps_their_outcomes(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    before = faulted(lab)
    proc = premarket(lab, tmp_path, "--force", "--settle", "1")
    run_id = run_id_of(tmp_path)

    def all_finished() -> bool:
        return all(journals(lab, host).get(run_id, {}).get("outcome", "running") != "running" for host in HOSTS)

    wait_for("every host's runner to finish (collection under way or done)", all_finished)
    interrupt(proc)
    report = load(tmp_path)
    assert proc.returncode in (0, 130)
    assert_agree(lab, report, before, cut=False)
    for host in report.hosts:
        if host.outcome != "interrupted":
            assert host.outcome == "healed", (host.host, host.outcome, host.reason)
