"""Root must not execute what another user can write, and the app's code runs as the app's user.

Real runs of the real runner on this machine (as root, like cron's runner on a droplet), with app
dirs whose owners and modes the tests set: a world-writable check script or a Guardian directory
inside an app dir another user owns makes the run refuse before it runs or writes anything; the
check runs as the app dir's owner (its uid and gid, no supplementary groups, a clean environment);
deploy's pre-flight applies the same rule and ``--fix-permissions`` shows what it would change.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_command

from remediation.agent.deploy import Installer
from remediation.inventory.settings import validate_setting

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as cron's runner on a droplet")
SYSTEM_PYTHON = "/usr/bin/python3"
BOT_UID = 4242  # the bot's user: a uid with no passwd entry, as in many containers
MARKER = "check-ran"
CHECK = f"""\
import json, os, sys
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), {MARKER!r}), "w").close()
print("IDENTITY " + json.dumps({{"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
                                "env": sorted(os.environ)}}))
print("RESULT: HEALTHY")
"""


@pytest.fixture
def base() -> Iterator[Path]:
    """A root-owned 0755 directory outside pytest's 0700 temp dirs (the bot's user must reach its app)."""
    path = Path(tempfile.mkdtemp(prefix="guardian-lp-", dir="/var/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def make_app(base: Path, *, owner: int = 0, script_mode: int = 0o644) -> Path:
    app = base / "app"
    (app / "state").mkdir(parents=True)
    check = app / "pre_market_health_check.py"
    check.write_text(CHECK)
    check.chmod(script_mode)
    app.chmod(0o755)
    for path in (app, app / "state", check):
        os.chown(path, owner, owner)
    return app


def premarket(base: Path, app: Path, **settings: object) -> tuple[int, dict[str, object], str]:
    inventory = base / "inv.yml"
    # The system's python, as on a droplet: the bot's user must be able to run it.
    host = {"transport": "local", "app_dir": str(app), "python": SYSTEM_PYTHON, "manager": "signal", **settings}
    inventory.write_text(json.dumps({"groups": {"here": {"hosts": {"local": host}}}}))
    run = run_command("premarket", "local", inventory=[inventory], reports=base / "reports", width=250)
    return run.code, run.report.hosts[0].to_dict(), run.out


def identity(host: dict[str, object]) -> dict[str, object]:
    tail = str((host["before"] or {}).get("tail", ""))  # type: ignore[union-attr]
    line = next(line for line in tail.splitlines() if line.startswith("IDENTITY "))
    return dict(json.loads(line.removeprefix("IDENTITY ")))


def test_a_world_writable_check_is_refused_before_anything_runs_or_is_written(base: Path) -> None:
    app = make_app(base, script_mode=0o666)
    code, host, out = premarket(base, app, run_as="root")
    assert host["outcome"] == "untrusted" and code == 2
    assert f"{app}/pre_market_health_check.py (-rw-rw-rw- uid 0 gid 0): writable by group and others" in host["reason"]
    assert "--fix-permissions" in host["reason"] and "untrusted" in out
    assert not (app / MARKER).exists()  # the check never ran
    assert not (app / ".guardian").exists() and not (app / "logs").exists()  # nothing written


def test_guardian_files_inside_an_app_dir_the_bot_owns_are_refused_until_moved_out(base: Path) -> None:
    app = make_app(base, owner=BOT_UID)
    code, host, _ = premarket(base, app)
    assert host["outcome"] == "untrusted"
    assert f"{app} (drwxr-xr-x uid {BOT_UID} gid {BOT_UID}): owned by {BOT_UID}, not by root" in host["reason"]
    assert "guardian_dir" in host["reason"] and not (app / MARKER).exists()
    # Guardian's own files in a directory only root can write: the run goes ahead.
    guardian_dir = base / "guardian-state"
    code, host, _ = premarket(base, app, guardian_dir=str(guardian_dir))
    assert host["outcome"] == "healthy" and code == 0, host["reason"]
    assert (guardian_dir / "state" / "journal").is_dir() and not (app / ".guardian").exists()


def test_the_check_runs_as_the_app_dirs_owner_with_no_groups_and_a_clean_environment(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")  # what an operator's session might carry
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-the-bot")
    app = make_app(base, owner=BOT_UID)
    code, host, _ = premarket(base, app, guardian_dir=str(base / "guardian-state"))
    assert code == 0 and host["outcome"] == "healthy"
    seen = identity(host)
    assert (seen["uid"], seen["gid"], seen["groups"]) == (BOT_UID, BOT_UID, [])
    assert "SSH_AUTH_SOCK" not in seen["env"] and "AWS_SECRET_ACCESS_KEY" not in seen["env"]  # type: ignore[operator]
    assert host["before"]["user"] == f"{BOT_UID} (uid {BOT_UID}, gid {BOT_UID})"  # type: ignore[index]
    # The check the bot's user may edit is fine: it no longer runs as root.
    os.chown(app / "pre_market_health_check.py", BOT_UID, BOT_UID)
    (app / "pre_market_health_check.py").chmod(0o664)
    assert premarket(base, app, guardian_dir=str(base / "guardian-state"))[1]["outcome"] == "healthy"
    # run_as: root keeps root (and then the check must be root's to trust).
    root_run = premarket(base, app, guardian_dir=str(base / "guardian-state"), run_as="root")[1]
    assert root_run["outcome"] == "untrusted"


def test_an_unknown_run_as_user_is_a_clear_error(base: Path) -> None:
    app = make_app(base)
    _, host, _ = premarket(base, app, run_as="no-such-bot")
    assert host["outcome"] == "unexpected" and host["reason"] == "run_as 'no-such-bot': no such user on this host"


def installer(app: Path, **deploy: object) -> Installer:
    config = {
        "action": "deploy",
        "app_dir": str(app),
        "manager": "signal",
        "run_as": "root",
        "schedules": validate_setting(
            "schedules", [{"name": "pre_market", "schedule": "15 14 * * 1-5", "check": "pre_market_health_check.py"}]
        ),
        "dry_run": True,
        **deploy,
    }
    return Installer(config, lambda event: None)


def test_deploy_preflight_refuses_what_root_must_not_trust_and_fix_permissions_shows_the_fix(base: Path) -> None:
    app = make_app(base, script_mode=0o666)
    record = installer(app).run()
    trust = next(c for c in record["preflight"] if c["check"] == "trust")
    assert record["outcome"] == "preflight-failed" and not trust["ok"]
    assert "pre_market_health_check.py (-rw-rw-rw- uid 0 gid 0): writable by group and others" in trust["detail"]

    record = installer(app, fix_permissions=True).run()  # a dry run: shows the change, makes none
    assert record["outcome"] == "would-change"
    chmod = next(c for c in record["changes"] if c["item"] == "pre_market_health_check.py")
    assert (chmod["action"], chmod["detail"]) == ("chmod", "0666 -> 0644 (go-w)")
    assert stat.S_IMODE((app / "pre_market_health_check.py").stat().st_mode) == 0o666


def test_fix_permissions_never_takes_a_directory_from_the_user_who_owns_it(base: Path) -> None:
    app = make_app(base, owner=BOT_UID)
    record = installer(app, fix_permissions=True).run()
    trust = next(c for c in record["preflight"] if c["check"] == "trust")
    assert record["outcome"] == "preflight-failed"
    assert trust["detail"].startswith("--fix-permissions cannot fix these without taking them from their owner")
    assert f"{app} (drwxr-xr-x uid {BOT_UID}" in trust["detail"]


def test_a_hold_is_not_written_where_another_user_could_swap_it(base: Path) -> None:
    app = make_app(base, owner=BOT_UID)  # Guardian's state would be inside the bot's app dir
    inventory = base / "inv.yml"
    host = {"transport": "local", "app_dir": str(app), "python": SYSTEM_PYTHON, "manager": "signal"}
    inventory.write_text(json.dumps({"groups": {"here": {"hosts": {"local": host}}}}))
    run = run_command("hold", "local", inventory=[inventory], reports=base / "reports", hold_seconds=60.0)
    assert run.report.hosts[0].outcome == "untrusted" and "owned by 4242" in run.report.hosts[0].reason
    assert not (app / ".guardian").exists()


def test_a_logs_dir_swapped_for_a_symlink_gets_nothing_written_through_it(base: Path) -> None:
    """Found in review: root wrote the check's output (the bot's own text) to logs/..., so a bot
    that made ``logs`` a link to /etc/logrotate.d could have root create a rule there."""
    app = make_app(base, owner=BOT_UID)
    elsewhere = base / "etc-logrotate.d"
    elsewhere.mkdir()
    (app / "logs").symlink_to(elsewhere)
    code, host, _ = premarket(base, app, guardian_dir=str(base / "guardian-state"))
    assert host["outcome"] == "healthy" and code == 0
    assert list(elsewhere.iterdir()) == []  # no guardian.log, no check output log there
    assert any("logs not used" in w or "no logs written" in w for w in host.get("warnings", []))
