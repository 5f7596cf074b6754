"""invoke deploy / collect against the lab fleet, with its real cron daemons."""

from __future__ import annotations

import json
import shutil
import stat
import time
from pathlib import Path

import pytest
from conftest import run_command

from remediation.execution.bundle import bundle_digest
from remediation.lab import Lab
from remediation.reporting.report import RunReport

pytestmark = pytest.mark.lab
APP = "/root/stock-bot"
USER_LINE = "0 3 * * * /usr/bin/true my-own-backup"


def layered_inventory(lab: Lab, tmp_path: Path, **group_vars: object) -> list[Path]:
    paths = [lab.inventory_path]
    if group_vars:
        extra = tmp_path / "zz-test-vars.yml"
        extra.write_text(json.dumps({"groups": {"lab": {"vars": group_vars}}}))
        paths.append(extra)
    return paths


def run(
    lab: Lab,
    tmp_path: Path,
    command: str,
    hosts: str = "lab",
    *,
    dry_run: bool = False,
    remove: bool = False,
    **group_vars: object,
) -> tuple[int, RunReport, str]:
    result = run_command(
        command,
        hosts,
        inventory=layered_inventory(lab, tmp_path, **group_vars),
        reports=tmp_path / "reports",
        dry_run=dry_run,
        remove=remove,
    )
    return result.code, result.report, result.out


def crontab(lab: Lab, host: str) -> str:
    return lab.exec(host, ["crontab", "-l"], check=False).stdout


def outcomes(report: RunReport) -> dict[str, str]:
    return {h.host: h.outcome for h in report.hosts}


def test_deploy_is_idempotent_and_keeps_user_cron_lines(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    lab.exec("h01", ["bash", "-c", f"echo '{USER_LINE}' | crontab -"])
    hosts = "h01,h02,h03"

    code, report, out = run(lab, tmp_path, "deploy", hosts, dry_run=True)
    assert code == 0 and set(outcomes(report).values()) == {"would-change"}
    assert "+15 14 * * 1-5 cd /root/stock-bot" in out  # the crontab diff
    assert crontab(lab, "h01").strip() == USER_LINE and not lab.path("h02", f"{APP}/.guardian").exists()

    code, report, _ = run(lab, tmp_path, "deploy", hosts)
    assert code == 0 and set(outcomes(report).values()) == {"changed"}
    for host in ("h01", "h02", "h03"):
        text = crontab(lab, host)
        assert text.count("# BEGIN GUARDIAN") == 1 and text.count("# END GUARDIAN") == 1
        assert "15 14 * * 1-5 cd /root/stock-bot" in text and "30 20 * * 5 " in text
        assert "--check friday_eow_audit.py" in text
    assert USER_LINE in crontab(lab, "h01")
    before = {h: crontab(lab, h) for h in ("h01", "h02", "h03")}
    mtimes = {p: p.stat().st_mtime for p in lab.path("h01", f"{APP}/.guardian").iterdir()}

    code, report, _ = run(lab, tmp_path, "deploy", hosts)
    assert code == 0 and set(outcomes(report).values()) == {"unchanged"}
    assert {h: crontab(lab, h) for h in ("h01", "h02", "h03")} == before
    assert {p: p.stat().st_mtime for p in lab.path("h01", f"{APP}/.guardian").iterdir()} == mtimes

    # The installed runner is the controller's own version and bundle.
    version = lab.exec("h01", ["/usr/bin/python3", f"{APP}/.guardian/guardian-runner.py", "--version"]).stdout
    assert version.strip() == f"guardian-runner 0.1.0 (bundle {bundle_digest()})"

    code, report, _ = run(lab, tmp_path, "deploy", hosts, remove=True)
    assert code == 0 and set(outcomes(report).values()) == {"removed"}
    assert crontab(lab, "h01").strip() == USER_LINE
    assert "GUARDIAN" not in crontab(lab, "h02")
    assert not lab.path("h02", f"{APP}/.guardian/guardian-runner.py").exists()
    left = lab.path("h02", f"{APP}/.guardian")  # gone, or kept for what else it holds: never left empty
    installed = {"guardian-runner.py", "config.json", "logrotate.conf", "logrotate.state"}
    assert not left.exists() or (any(left.iterdir()) and not installed & {p.name for p in left.iterdir()})


def test_permissions_and_logrotate_rule(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    log = lab.path("h04", f"{APP}/logs/guardian.log")
    log.parent.mkdir(exist_ok=True)
    log.write_text("old\n")
    log.chmod(0o644)
    code, _, _ = run(lab, tmp_path, "deploy", "h04")
    assert code == 0

    def mode(inside: str) -> int:
        return stat.S_IMODE(lab.path("h04", inside).stat().st_mode)

    assert mode(f"{APP}/.guardian") == 0o750
    assert mode(f"{APP}/.guardian/guardian-runner.py") == 0o750
    assert mode(f"{APP}/.guardian/config.json") == 0o640
    assert mode(f"{APP}/logs") & 0o007 == 0 and mode(f"{APP}/logs/guardian.log") == 0o640
    config = json.loads(lab.path("h04", f"{APP}/.guardian/config.json").read_text())
    assert config["runner"] == "cron" and [s["name"] for s in config["signatures"]] == ["uw_socket", "alpaca_sip_delay"]
    rule = lab.path("h04", f"{APP}/.guardian/logrotate.conf").read_text()
    assert f"{APP}/logs/guardian*.log {{" in rule and "create 0640" in rule
    # logrotate itself accepts the rule, and rotates when forced.
    debug = lab.exec("h04", ["logrotate", "-d", "-s", "/tmp/lr.state", f"{APP}/.guardian/logrotate.conf"], check=False)
    assert debug.returncode == 0 and "error" not in (debug.stdout + debug.stderr).lower()
    lab.exec("h04", ["logrotate", "-f", "-s", "/tmp/lr.state", f"{APP}/.guardian/logrotate.conf"])
    assert lab.path("h04", f"{APP}/logs/guardian.log.1").exists()
    assert "logrotate -s /root/stock-bot/.guardian/logrotate.state" in crontab(lab, "h04")


def test_failing_preflight_changes_nothing(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    lab.exec("h05", ["mv", f"{APP}/pre_market_health_check.py", f"{APP}/pre_market_health_check.py.off"])
    lab.exec("h06", ["supervisorctl", "shutdown"])
    try:
        code, report, _ = run(lab, tmp_path, "deploy", "h04,h05,h06")
        assert outcomes(report) == {"h04": "changed", "h05": "preflight-failed", "h06": "preflight-failed"}
        assert code == 2
        h05 = next(h for h in report.hosts if h.host == "h05")
        assert f"{APP}/pre_market_health_check.py is missing" in h05.reason
        h06 = next(h for h in report.hosts if h.host == "h06")
        assert "supervisord is not answering" in h06.reason
        for host in ("h05", "h06"):
            assert not lab.path(host, f"{APP}/.guardian").exists() and "GUARDIAN" not in crontab(lab, host)
    finally:
        lab.exec("h05", ["mv", f"{APP}/pre_market_health_check.py.off", f"{APP}/pre_market_health_check.py"])
        restart_supervisord(lab, "h06")


def test_an_optional_schedule_without_its_script_is_skipped_and_a_required_one_refused(
    fleet: Lab, tmp_path: Path
) -> None:
    lab = fleet
    audit = lab.path("h02", f"{APP}/friday_eow_audit.py")
    saved, mode = audit.read_bytes(), stat.S_IMODE(audit.stat().st_mode)
    audit.unlink()
    try:
        # The default schedules: the Friday audit is optional, so the host deploys without it.
        code, report, out = run(lab, tmp_path, "deploy", "h02")
        assert code == 0 and outcomes(report) == {"h02": "changed"}
        warnings = report.hosts[0].warnings
        assert [w for w in warnings if "friday_eow_audit" in w] == [
            f"schedule friday_eow_audit: {APP}/friday_eow_audit.py is missing; optional schedule skipped, "
            "its cron line not installed"
        ]
        assert "friday_eow_audit.py is missing" in out  # the deploy table's pre-flight column
        text = crontab(lab, "h02")
        entries = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert len(entries) == 2 and entries[0].startswith("15 14 * * 1-5 cd /root/stock-bot")
        assert "logrotate" in entries[1] and "friday_eow_audit" not in text

        # The same schedule marked required: refused, nothing changed.
        required = [
            {"name": "pre_market", "schedule": "15 14 * * 1-5", "check": "pre_market_health_check.py"},
            {"name": "friday_eow_audit", "schedule": "30 20 * * 5", "check": "friday_eow_audit.py", "optional": False},
        ]
        code, report, _ = run(lab, tmp_path, "deploy", "h02", schedules=required)
        assert code == 2 and outcomes(report) == {"h02": "preflight-failed"}
        assert f"check script friday_eow_audit.py: {APP}/friday_eow_audit.py is missing" in report.hosts[0].reason
        assert crontab(lab, "h02") == text
    finally:
        audit.write_bytes(saved)
        audit.chmod(mode)
        shutil.rmtree(lab.path("h02", f"{APP}/.guardian"), ignore_errors=True)  # the fleet fixture empties crontabs


def restart_supervisord(lab: Lab, host: str) -> None:
    lab.exec(host, ["supervisord", "-c", "/etc/supervisor/supervisord.conf"], check=False)
    deadline = time.monotonic() + 20
    while lab.exec(host, ["/usr/bin/python3", f"{APP}/pre_market_health_check.py"], check=False).returncode != 0:
        assert time.monotonic() < deadline, f"{host} did not come back"
        time.sleep(0.3)


def test_cron_alone_heals_a_host_and_collect_brings_the_run_home(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    every_minute = [
        {
            "name": "pre_market",
            "schedule": "* * * * *",
            "check": "pre_market_health_check.py",
            "log": "logs/pre_market.log",
        }
    ]
    code, _, _ = run(lab, tmp_path, "deploy", "h01", schedules=every_minute, settle_seconds=1)
    assert code == 0
    uw_before = json.loads(lab.path("h01", f"{APP}/state/uw_daemon.json").read_text())["pid"]
    lab.fault("h01", "uw")
    journal = lab.path("h01", f"{APP}/.guardian/state/journal")
    deadline = time.monotonic() + 100
    def cron_run_finished() -> bool:  # the journal is written from the run's start ("running")
        runs = sorted(journal.glob("*-cron-*.json")) if journal.exists() else []
        return bool(runs) and json.loads(runs[0].read_text()).get("outcome") != "running"

    while not cron_run_finished():
        assert time.monotonic() < deadline, "cron never ran the guardian runner: " + (
            lab.path("h01", f"{APP}/logs/pre_market.log").read_text()
            if lab.path("h01", f"{APP}/logs/pre_market.log").exists()
            else "no log"
        )
        time.sleep(1)
    run_file = sorted(journal.glob("*-cron-*.json"))[0]
    record = json.loads(run_file.read_text())
    assert record["outcome"] == "healed" and record["runner"] == "cron"
    uw_after = json.loads(lab.path("h01", f"{APP}/state/uw_daemon.json").read_text())["pid"]
    assert uw_after != uw_before
    assert "outcome: healed" in lab.path("h01", f"{APP}/logs/pre_market.log").read_text()
    lab.exec("h01", ["crontab", "-r"])  # no more cron runs during the rest of the test

    code, report, out = run(lab, tmp_path, "collect", "h01")
    assert code == 0 and outcomes(report) == {"h01": "collected"}
    host = report.hosts[0]
    cron_run = next(r for r in host.cron_runs if r["run_id"] == record["run_id"])
    assert cron_run["outcome"] == "healed"
    assert [(a["kind"], a["target"], a["result"]) for a in cron_run["actions"]] == [("restart", "uw-daemon", "ok")]
    stored = tmp_path / "reports" / report.run_id / "h01" / f"journal-{run_file.name}"
    assert json.loads(stored.read_text())["run_id"] == record["run_id"]
    assert "healed" in out


def test_laptop_run_and_cron_run_never_act_twice(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    code, _, _ = run(lab, tmp_path, "deploy", "h05", settle_seconds=6)
    assert code == 0
    lab.fault("h05", "uw")
    uw_before = json.loads(lab.path("h05", f"{APP}/state/uw_daemon.json").read_text())["pid"]
    # What cron would run, started in the background on the host.
    lab.exec(
        "h05",
        [
            "bash",
            "-c",
            f"cd {APP}; nohup /usr/bin/python3 .guardian/guardian-runner.py --config "
            ".guardian/config.json --runner cron --format text >> logs/pre_market.log 2>&1 < /dev/null &",
        ],
    )
    flock = lab.path("h05", f"{APP}/.guardian/state/.guardian.flock")
    deadline = time.monotonic() + 15
    while '"runner": "cron"' not in (flock.read_text() if flock.exists() else ""):
        assert time.monotonic() < deadline, "the cron runner never took the lock"
        time.sleep(0.1)
    cron_pid = json.loads(flock.read_text())["pid"]

    code, report, _ = run(lab, tmp_path, "premarket", "h05", lock_wait=0)
    assert code == 2 and outcomes(report) == {"h05": "busy"}
    assert f"held by cron, pid {cron_pid}" in report.hosts[0].reason

    code, report, _ = run(lab, tmp_path, "premarket", "h05", lock_wait=60)
    assert code == 0 and outcomes(report) == {"h05": "healthy"}
    assert report.hosts[0].actions == []
    journal = json.loads(next(lab.path("h05", f"{APP}/.guardian/state/journal").glob("*-cron-*.json")).read_text())
    assert journal["outcome"] == "healed"
    restarts = [a for a in journal["actions"] if a["kind"] == "restart"]
    assert len(restarts) == 1
    uw_after = json.loads(lab.path("h05", f"{APP}/state/uw_daemon.json").read_text())["pid"]
    assert uw_after == restarts[0]["new_pid"] != uw_before
