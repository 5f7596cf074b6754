"""Deploy's pre-flight for scheduled check scripts, run here on a temporary app dir.

Only the pre-flight and the cron lines it leads to are exercised: nothing here reads or writes
this machine's crontab (the lab tests in test_deploy_lab.py do the real install).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from remediation.agent.deploy import Installer
from remediation.inventory.settings import DEFAULTS, validate_setting

PRE_MARKET = {"name": "pre_market", "schedule": "15 14 * * 1-5", "check": "pre_market_health_check.py"}
AUDIT = {"name": "friday_eow_audit", "schedule": "30 20 * * 5", "check": "friday_eow_audit.py"}


def installer(app: Path, schedules: list[dict[str, Any]]) -> Installer:
    config = {
        "app_dir": str(app),
        "manager": "signal",  # answers without a daemon, so only the scripts decide
        "schedules": validate_setting("schedules", schedules),
        "dry_run": True,
    }
    return Installer(config, lambda event: None)


def script_check(inst: Installer, script: str) -> dict[str, Any]:
    return next(c for c in inst.preflight if c["check"] == f"check script {script}")


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "stock-bot"
    app.mkdir()
    (app / "pre_market_health_check.py").write_text("print('ok')\n")
    return app


def test_the_default_audit_schedule_is_optional_and_the_pre_market_one_is_not() -> None:
    flags = {s["name"]: s["optional"] for s in DEFAULTS["schedules"]}
    assert flags == {"pre_market": False, "friday_eow_audit": True}
    assert validate_setting("schedules", [PRE_MARKET])[0]["optional"] is False


def test_a_missing_optional_script_skips_its_schedule_with_a_warning(app: Path) -> None:
    inst = installer(app, DEFAULTS["schedules"])
    inst.run_preflight()
    audit = script_check(inst, "friday_eow_audit.py")
    assert audit["ok"] is False and audit["fatal"] is False
    assert f"{app}/friday_eow_audit.py is missing" in audit["detail"]
    assert "skipped" in audit["detail"]
    assert any("friday_eow_audit" in w and "missing" in w for w in inst.warnings)
    assert script_check(inst, "pre_market_health_check.py")["ok"] is True
    lines = inst.cron_entries()
    assert len(lines) == 2  # the pre-market run and the daily logrotate line
    assert "--check pre_market_health_check.py" in lines[0] and "friday_eow_audit" not in "".join(lines)


def test_a_missing_required_script_is_refused_saying_missing_and_where(app: Path) -> None:
    (app / "pre_market_health_check.py").unlink()
    inst = installer(app, [PRE_MARKET, {**AUDIT, "optional": True}])
    assert inst.run_preflight() is False
    check = script_check(inst, "pre_market_health_check.py")
    assert check["ok"] is False and check["fatal"] is True
    assert f"{app}/pre_market_health_check.py is missing" in check["detail"]
    assert "required" in check["detail"] and "optional: true" in check["detail"]
    assert inst.warnings == [f"schedule friday_eow_audit: {script_check(inst, 'friday_eow_audit.py')['detail']}"]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.mkdir(), "is not a regular file (a directory)"),
        (lambda p: p.symlink_to(p.parent / "gone.py"), "is missing (a symlink to a file that does not exist)"),
    ],
    ids=["directory", "dangling-symlink"],
)
def test_a_script_that_is_there_but_unusable_says_what_is_wrong(app: Path, make: Any, words: str) -> None:
    make(app / "friday_eow_audit.py")
    inst = installer(app, [PRE_MARKET, AUDIT])
    assert inst.run_preflight() is False
    assert words in script_check(inst, "friday_eow_audit.py")["detail"]


def test_a_script_the_deploying_user_cannot_read_is_refused(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests run as root, who reads any file: stand in for a deploy user without read access.
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: False if str(path).endswith("audit.py") else real_access(path, mode)
    )
    (app / "friday_eow_audit.py").write_text("")
    inst = installer(app, [PRE_MARKET, AUDIT])
    assert inst.run_preflight() is False
    assert f"{app}/friday_eow_audit.py is not readable by" in script_check(inst, "friday_eow_audit.py")["detail"]
