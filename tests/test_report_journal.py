"""The run's journal: report.json is written when a run starts and when it ends, each finished
host is appended to ``report.journal.jsonl`` beside it, and a run whose controller died is
rebuilt from both, losing no finished host. The last test kills a real controller (SIGKILL) in
the middle of a real run."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from remediation.reporting.report import JOURNAL, HostReport, ReportStore, RunReport


def fleet(names: list[str]) -> RunReport:
    report = RunReport(run_id="20261202T000000Z-abcd", command="premarket", started_at="2026-12-02T00:00:00Z")
    report.hosts = [HostReport(n, f"10.0.0.{i}", "ssh") for i, n in enumerate(names, 1)]
    return report


def test_a_finished_host_is_one_journal_line_not_a_rewrite(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    report = fleet(["h01", "h02", "h03"])
    path = store.save(report)
    written = path.read_bytes()
    report.hosts[1] = HostReport("h02", "10.0.0.2", "ssh", outcome="healed", reason="restarted uw-daemon")
    report.incidents.append({"signature": "uw_socket", "hosts": ["h02"]})
    store.record_host(report, report.hosts[1])
    assert path.read_bytes() == written  # report.json itself is not rewritten per host
    journal = tmp_path / report.run_id / JOURNAL
    assert len(journal.read_bytes().splitlines()) == 1
    assert stat.S_IMODE(journal.stat().st_mode) == 0o640
    loaded = store.load(report.run_id)  # what a reader sees meanwhile: the finished host
    assert [(h.host, h.outcome) for h in loaded.hosts] == [("h01", "pending"), ("h02", "healed"), ("h03", "pending")]
    assert loaded.incidents == report.incidents and not loaded.complete


def test_the_final_save_supersedes_the_journal(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    report = fleet(["h01", "h02"])
    store.save(report)
    for host in report.hosts:
        host.outcome = "healthy"
        store.record_host(report, host)
    report.complete = True
    store.save(report)
    assert not (tmp_path / report.run_id / JOURNAL).exists()
    data = json.loads((tmp_path / report.run_id / "report.json").read_text())
    assert data["complete"] and data["outcomes"] == {"h01": "healthy", "h02": "healthy"}


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    report = fleet(["h01", "h02"])
    store.save(report)
    report.hosts[0].outcome = "healed"
    store.record_host(report, report.hosts[0])
    with open(tmp_path / report.run_id / JOURNAL, "ab") as fh:
        fh.write(b'{"host": {"host": "h02", "outcome": "hea')  # the controller died mid-write
    loaded = store.load(report.run_id)
    assert loaded.to_dict()["outcomes"] == {"h01": "healed", "h02": "pending"}


def test_a_killed_controller_loses_no_finished_host(tmp_path: Path) -> None:
    """A real ``guardian premarket`` over three local hosts: two whose check passes at once, one
    whose check hangs. Once the two have finished, the controller is killed with SIGKILL (no
    chance to write anything more): the report still has both, with their outcome and check."""
    apps = {}
    for name in ("fast1", "fast2", "slow"):
        app = tmp_path / name
        (app / "logs").mkdir(parents=True)
        check = app / "check.py"
        check.write_text("import time\ntime.sleep(120)\n" if name == "slow" else "print('RESULT: HEALTHY')\n")
        apps[name] = app
    hosts = {
        name: {
            "transport": "local",
            "app_dir": str(app),
            "python": sys.executable,
            "manager": "signal",
            "check": str(app / "check.py"),
            "check_timeout": 300,
        }
        for name, app in apps.items()
    }
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"groups": {"box": {"hosts": hosts}}}))
    reports = tmp_path / "reports"
    guardian = Path(sys.executable).parent / "guardian"
    argv = [str(guardian), "premarket", "--hosts", "box", "--inventory", str(inventory), "--reports", str(reports)]
    proc = subprocess.Popen(
        [*argv, "--ssh-config", ""],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        journal = None
        while time.monotonic() < deadline:
            found = list(reports.glob(f"*/{JOURNAL}"))
            if found and len(found[0].read_bytes().splitlines()) >= 2:
                journal = found[0]
                break
            assert proc.poll() is None, "the controller ended before it could be killed"
            time.sleep(0.05)
        assert journal is not None, "the two fast hosts did not finish"
        os.killpg(proc.pid, signal.SIGKILL)  # the controller and the slow host's runner with it
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    store = ReportStore(reports)
    report = store.load(journal.parent.name)
    outcomes = report.to_dict()["outcomes"]
    assert outcomes == {"fast1": "healthy", "fast2": "healthy", "slow": "pending"}, outcomes
    assert not report.complete
    fast = next(h for h in report.hosts if h.host == "fast1")
    assert fast.before is not None and fast.before["exit_code"] == 0
