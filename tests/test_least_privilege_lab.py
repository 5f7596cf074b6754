"""Least privilege on the lab fleet: root's cron runner refuses a config another user can change,
and deploy's pre-flight refuses a check script others can write until ``--fix-permissions``
(previewed with ``--dry-run``, through the same code path) makes it root's."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from conftest import APP, run_command, run_cron_runner

from remediation.lab import Lab

pytestmark = pytest.mark.lab
NEVER = [{"name": "pre_market", "schedule": "0 0 1 1 *", "check": "pre_market_health_check.py"}]


def inventory(lab: Lab, tmp_path: Path) -> list[Path]:
    extra = tmp_path / "zz-lp.yml"
    extra.write_text(json.dumps({"groups": {"lab": {"vars": {"schedules": NEVER, "settle_seconds": 1}}}}))
    return [lab.inventory_path, extra]


def test_root_cron_runner_refuses_a_config_others_can_write(fleet: Lab, tmp_path: Path) -> None:
    inv = inventory(fleet, tmp_path)
    assert run_command("deploy", "h01", inventory=inv, reports=tmp_path / "r").code == 0
    config = fleet.path("h01", f"{APP}/.guardian/config.json")
    journal = fleet.path("h01", f"{APP}/.guardian/state/journal")
    config.chmod(0o666)
    out = run_cron_runner(fleet, "h01")
    assert "outcome: untrusted refusing to run as uid 0" in out
    assert f"{APP}/.guardian/config.json (-rw-rw-rw- uid 0 gid 0): writable by group and others" in out
    assert not list(journal.glob("*-cron-*.json"))  # nothing written, no check run
    config.chmod(0o640)
    assert "outcome: healthy" in run_cron_runner(fleet, "h01")


def test_deploy_refuses_a_world_writable_check_until_fix_permissions(fleet: Lab, tmp_path: Path) -> None:
    inv, reports = inventory(fleet, tmp_path), tmp_path / "r"
    check = fleet.path("h03", f"{APP}/pre_market_health_check.py")
    mode = stat.S_IMODE(check.stat().st_mode)
    check.chmod(mode | 0o022)
    try:
        refused = run_command("deploy", "h03", inventory=inv, reports=reports)
        host = refused.report.hosts[0]
        assert host.outcome == "preflight-failed" and refused.code == 2
        assert "pre_market_health_check.py" in host.reason and "writable by group and others" in host.reason
        assert not fleet.path("h03", f"{APP}/.guardian/guardian-runner.py").exists()

        preview = run_command("deploy", "h03", inventory=inv, reports=reports, dry_run=True, fix_permissions=True)
        change = next(c for c in preview.report.hosts[0].changes if c["item"] == "pre_market_health_check.py")
        assert preview.report.hosts[0].outcome == "would-change" and change["action"] == "chmod"
        assert stat.S_IMODE(check.stat().st_mode) == mode | 0o022  # the dry run changed nothing

        fixed = run_command("deploy", "h03", inventory=inv, reports=reports, fix_permissions=True)
        assert fixed.report.hosts[0].outcome == "changed", fixed.out
        assert stat.S_IMODE(check.stat().st_mode) == mode & ~0o022
        assert run_command("premarket", "h03", inventory=inv, reports=reports).report.hosts[0].outcome == "healthy"
    finally:
        check.chmod(mode)
