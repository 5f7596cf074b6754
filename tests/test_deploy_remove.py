"""deploy --remove on the host: Guardian's files and then its empty .guardian/ go; anything
else in that folder is kept. The crontab is stubbed here (never this machine's own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from remediation.agent import deploy
from remediation.agent.deploy import CONFIG_NAME, LOGROTATE_NAME, RUNNER_NAME, Installer

GUARDIAN_FILES = (RUNNER_NAME, CONFIG_NAME, LOGROTATE_NAME, "logrotate.state")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An app dir where deploy installed Guardian (and cron's logrotate line kept its state)."""
    crontab = {"text": "# BEGIN GUARDIAN\n17 0 * * * logrotate\n# END GUARDIAN\n"}
    monkeypatch.setattr(Installer, "read_crontab", lambda self: crontab["text"])
    monkeypatch.setattr(Installer, "ensure_crontab", lambda self, current, new: crontab.update(text=new))
    monkeypatch.setattr(deploy.shutil, "which", lambda name, *args, **kwargs: f"/usr/bin/{name}")  # pre-flight
    install = tmp_path / "app" / ".guardian"
    install.mkdir(parents=True)
    for name in GUARDIAN_FILES:
        (install / name).write_text("x")
    return tmp_path / "app"


def remove(app: Path, *, dry_run: bool = False) -> dict[str, Any]:
    config = {"app_dir": str(app), "remove": True, "dry_run": dry_run, "runner_source": "", "cron_config": {}}
    return Installer(config, lambda event: None).run()


def test_remove_takes_out_the_empty_install_dir(installed: Path) -> None:
    result = remove(installed, dry_run=True)
    assert result["outcome"] == "would-change" and (installed / ".guardian").is_dir()
    assert {"item": ".guardian", "action": "remove", "detail": "empty directory"} in result["changes"]
    result = remove(installed)
    assert result["outcome"] == "removed", result
    assert not (installed / ".guardian").exists()
    assert {"item": ".guardian", "action": "remove", "detail": "empty directory"} in result["changes"]
    assert remove(installed)["outcome"] == "unchanged"


def test_remove_keeps_the_install_dir_when_it_holds_anything_else(installed: Path) -> None:
    (installed / ".guardian" / "operator-notes.txt").write_text("mine")
    result = remove(installed)
    assert result["outcome"] == "removed"
    assert sorted(p.name for p in (installed / ".guardian").iterdir()) == ["operator-notes.txt"]
    kept = next(c for c in result["changes"] if c["item"] == ".guardian")
    assert kept["action"] == "unchanged" and "operator-notes.txt" in kept["detail"]
    assert remove(installed)["outcome"] == "unchanged"

