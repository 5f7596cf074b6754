"""The installed runner on the lab fleet's real hosts, over SSH: after deploy, premarket, recover,
collect and cron run deploy's precompiled package; other code, no package, or a package root may
not trust, and the run streams (or refuses) instead, and still heals."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from conftest import healthy, run_command, run_cron_runner

from remediation.agent.installed import RECORD_FILE
from remediation.lab import Lab
from remediation.reporting.report import HostReport

pytestmark = pytest.mark.lab
APP = "/root/stock-bot"
GUARDIAN = f"{APP}/.guardian"


def run(lab: Lab, tmp_path: Path, command: str, host: str, **request: object) -> HostReport:
    result = run_command(command, host, inventory=[lab.inventory_path], reports=tmp_path / "reports", **request)
    (report,) = result.report.hosts
    return report


def snapshot(lab: Lab, host: str, *, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, int, int]]:
    """Every path in the host's Guardian directory (but those under ``skip``): mode, size, mtime."""
    root = lab.path(host, GUARDIAN)
    found = {}
    for path in [root, *root.rglob("*")]:
        rel = str(path.relative_to(root))
        if rel.split("/")[0] not in skip:
            st = path.lstat()
            found[rel] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def test_a_deployed_host_runs_the_installed_code_and_writes_nothing_into_it(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    assert run(lab, tmp_path, "deploy", "h01").outcome == "changed"
    package = lab.path("h01", f"{GUARDIAN}/runner/guardian_agent")
    assert sorted(p.suffix for p in package.iterdir()) and any((package / "__pycache__").iterdir())

    before = snapshot(lab, "h01")
    dry = run(lab, tmp_path, "premarket", "h01", dry_run=True)
    assert (dry.outcome, dry.runner_code) == ("healthy", "installed")
    assert snapshot(lab, "h01") == before, "a dry run changed something in Guardian's directory"

    report = run(lab, tmp_path, "premarket", "h01")
    assert (report.outcome, report.runner_code) == ("healthy", "installed")
    after = snapshot(lab, "h01", skip=("state", "metrics"))
    assert {k: v for k, v in after.items() if k != "."} == {
        k: v for k, v in before.items() if k != "." and k.split("/")[0] not in ("state", "metrics")
    }, "the run wrote into the installed runner"

    lab.fault("h01", "uw")
    healed = run(lab, tmp_path, "premarket", "h01")
    assert (healed.outcome, healed.runner_code) == ("healed", "installed")
    assert run(lab, tmp_path, "collect", "h01").runner_code == "installed"
    recovered = run(lab, tmp_path, "recover", "h01")
    assert recovered.runner_code == "installed"

    # cron's run starts the same package, through the launcher
    assert "outcome: healthy" in run_cron_runner(lab, "h01")
    journal = max(lab.path("h01", f"{GUARDIAN}/state/journal").glob("*-cron-*.json"), key=lambda p: p.stat().st_mtime)
    assert json.loads(journal.read_text())["runner_code"] == "installed"
    assert snapshot(lab, "h01", skip=("state", "metrics")).keys() == after.keys()

    # the drift check covers the package: a file edited by hand is drift, and deploy puts it back
    (package / "plan.py").write_text((package / "plan.py").read_text() + "\n# edited\n")
    drift = run(lab, tmp_path, "deploy", "h01", drift_check=True, dry_run=True)
    assert drift.outcome == "drifted"
    assert any(c["item"] == ".guardian/runner" and "guardian_agent/plan.py" in c["detail"] for c in drift.changes)
    assert run(lab, tmp_path, "status", "h01").outcome == "drifted"
    assert run(lab, tmp_path, "deploy", "h01").outcome == "changed"
    status = run(lab, tmp_path, "status", "h01")
    assert status.outcome == "in-sync", status.reason


def test_other_code_installed_or_none_streams_and_still_heals(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    assert run(lab, tmp_path, "deploy", "h02").outcome == "changed"
    record = lab.path("h02", f"{GUARDIAN}/runner/{RECORD_FILE}")
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "bundle": "0123456789ab"}))  # an older deploy's code
    lab.fault("h02", "sip")
    report = run(lab, tmp_path, "premarket", "h02")
    assert (report.outcome, report.runner_code) == ("healed", "streamed")
    assert healthy(lab, "h02")

    assert run(lab, tmp_path, "deploy", "h02", remove=True).outcome == "removed"
    assert not lab.path("h02", f"{GUARDIAN}/runner").exists()
    lab.fault("h02", "uw")
    report = run(lab, tmp_path, "premarket", "h02")
    assert (report.outcome, report.runner_code) == ("healed", "streamed")


def test_an_installed_file_others_may_write_is_refused_not_run(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    assert run(lab, tmp_path, "deploy", "h04").outcome == "changed"
    package = lab.path("h04", f"{GUARDIAN}/runner/guardian_agent")
    mark = lab.path("h04", "/tmp/ran-installed-code")
    main = package / "main.py"
    main.write_text(main.read_text() + "\nopen('/tmp/ran-installed-code', 'w').close()\n")
    pyc = next((package / "__pycache__").glob("sequence.*.pyc"))
    pyc.chmod(stat.S_IMODE(pyc.stat().st_mode) | stat.S_IWOTH)
    lab.fault("h04", "uw")
    try:
        report = run(lab, tmp_path, "premarket", "h04")
        assert (report.outcome, report.runner_code) == ("untrusted", "streamed")
        assert "sequence." in report.reason and "writable by others" in report.reason
        assert report.before is None  # not even the check ran
        assert not mark.exists()
        # Cron's launcher refuses the same tree before the check (as the one-file runner did, it
        # has started the code deploy installed by then: cron itself runs it).
        assert "outcome: untrusted" in run_cron_runner(lab, "h04")
    finally:
        mark.unlink(missing_ok=True)
    # deploy's pre-flight refuses it too, and --fix-permissions mends it
    assert run(lab, tmp_path, "deploy", "h04").outcome == "preflight-failed"
    assert run(lab, tmp_path, "deploy", "h04", fix_permissions=True).outcome == "changed"
    report = run(lab, tmp_path, "premarket", "h04")
    assert (report.outcome, report.runner_code) == ("healed", "installed")
