"""premarket end to end over real SSH against the lab fleet (real sshd, supervisord, files).

The session lab has six hosts: h01 supervisor, h02 process-compose (stand-in), h03 signal
(respawner), h04-h06 supervisor. Every test leaves the fleet healthy again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import CommandRun, run_command

from remediation.lab import Lab
from remediation.reporting.report import ReportStore, RunReport

pytestmark = pytest.mark.lab
APP = "/root/stock-bot"


def pids(lab: Lab, host: str) -> tuple[int, int]:
    def pid(name: str) -> int:
        return int(json.loads(lab.path(host, f"{APP}/state/{name}").read_text())["pid"])

    return pid("uw_daemon.json"), pid("trading_bot.json")


def run(
    lab: Lab, tmp_path: Path, hosts: str = "lab", *, known_hosts: Path | None = None, **kwargs: object
) -> tuple[int, RunReport, str]:
    inventory = [lab.inventory_path]
    if known_hosts is not None:
        override = tmp_path / "zz-known-hosts.yml"  # layered after the lab inventory
        override.write_text(json.dumps({"groups": {"lab": {"vars": {"known_hosts": str(known_hosts)}}}}))
        inventory.append(override)
    result = run_command(
        "premarket",
        hosts,
        inventory=inventory,
        reports=tmp_path / "reports",
        overrides={"settle_seconds": 1, "check_timeout": 20, "host_deadline": 90},
        **kwargs,
    )
    return result.code, result.report, result.out


def outcomes(report: RunReport) -> dict[str, str]:
    return {h.host: h.outcome for h in report.hosts}


def test_faulty_hosts_heal_healthy_hosts_untouched(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    lab.fault("h01", "uw")  # supervisor
    lab.fault("h02", "sip")  # process-compose stand-in
    lab.fault("h03", "uw")  # signal-style respawner
    lab.fault("h04", "sip")  # supervisor
    lab.fault("h05", "stale-lock")
    lab.fault("h05", "live-lock")
    lab.fault("h06", "live-lock")  # healthy host with a live lock
    before = {h.name: pids(lab, h.name) for h in lab.hosts}

    code, report, out = run(lab, tmp_path)

    assert outcomes(report) == {
        "h01": "healed",
        "h02": "healed",
        "h03": "healed",
        "h04": "healed",
        "h05": "healed",
        "h06": "healthy",
    }, out
    assert code == 0
    after = {h.name: pids(lab, h.name) for h in lab.hosts}
    # UW hosts: the UW daemon really restarted (new PID), the bot did not.
    for host in ("h01", "h03"):
        assert after[host][0] != before[host][0] and after[host][1] == before[host][1]
    # SIP hosts: the trading bot restarted, the UW daemon did not.
    for host in ("h02", "h04"):
        assert after[host][1] != before[host][1] and after[host][0] == before[host][0]
    # Lock-only and healthy hosts: no daemon touched.
    assert after["h05"] == before["h05"] and after["h06"] == before["h06"]
    # Stale lock gone, live locks kept.
    assert not lab.path("h05", f"{APP}/state/metadata.lock").exists()
    for host in ("h05", "h06"):
        assert lab.path(host, f"{APP}/state/orders.lock").exists()
    # Alerts exist on each SIP host and in the report, byte for byte.
    run_dir = tmp_path / "reports" / report.run_id
    for host in ("h02", "h04"):
        alerts = sorted(lab.path(host, f"{APP}/logs").glob("alpaca_sip_alert_*.txt"))
        assert len(alerts) == 1
        assert (run_dir / host / alerts[0].name).read_bytes() == alerts[0].read_bytes()
    for host in ("h01", "h03", "h05", "h06"):
        assert not list(lab.path(host, f"{APP}/logs").glob("alpaca_sip_alert_*.txt"))
    # The report holds the seed's logs from every host, and the restart evidence.
    for host in report.hosts:
        names = {f.name for f in host.files}
        assert {"guardian.log", "guardian_pre_market_health_check_output.log"} <= names
        assert host.remote_version
    h01 = next(h for h in report.hosts if h.host == "h01")
    restart = next(a for a in h01.actions if a["kind"] == "restart")
    assert restart["confirmed"] and restart["new_pid"] == after["h01"][0]
    assert "uw_socket" in restart["reason"]
    # supervisord was asked over its socket (the host's /etc/supervisor/supervisord.conf names it)
    assert (restart["via"], restart["command"]["socket"]) == ("xmlrpc", "/run/supervisor.sock")
    assert h01.before["exit_code"] == 2 and h01.after["exit_code"] == 0
    data = json.loads((run_dir / "report.json").read_text())
    assert data["exit_code"] == 0 and data["complete"]
    assert data["hosts"][0]["matched_signatures"] == ["uw_socket"]


def test_unreachable_host_does_not_stop_the_others(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    lab.fault("h06", "sshd-down")
    lab.fault("h01", "uw")
    code, report, _ = run(lab, tmp_path, "h01,h02,h06")
    assert outcomes(report) == {"h01": "healed", "h02": "healthy", "h06": "unreachable"}
    assert code == 4
    h06 = next(h for h in report.hosts if h.host == "h06")
    assert lab.host("h06").address in h06.reason and "refused" in h06.reason.lower()


def test_hanging_check_is_cut_off_and_the_run_finishes(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    lab.fault("h04", "hang")
    lab.fault("h01", "uw")
    code, report, _ = run(lab, tmp_path, "h01,h04,h05")
    assert outcomes(report)["h01"] == "healed" and outcomes(report)["h05"] == "healthy"
    h04 = next(h for h in report.hosts if h.host == "h04")
    assert h04.outcome == "unexpected" and h04.before["timed_out"]
    assert h04.duration < 40
    assert code == 2
    # The killed check left nothing running on the host.
    assert lab.exec("h04", ["pgrep", "-f", "pre_market_health_check"], check=False).returncode == 1


def test_dry_run_changes_nothing_and_prints_the_plan(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    lab.fault("h01", "uw")
    lab.fault("h04", "sip")
    lab.fault("h05", "stale-lock")
    lab.fault("h05", "live-lock")

    def snapshot() -> dict[str, object]:
        result: dict[str, object] = {}
        for h in ("h01", "h04", "h05"):
            state = lab.path(h, f"{APP}/state")
            logs = lab.path(h, f"{APP}/logs")
            result[h] = (
                pids(lab, h),
                sorted(p.name for p in state.iterdir()),
                sorted((p.name, p.stat().st_size) for p in logs.glob("guardian*")),
                sorted(p.name for p in logs.glob("*alert*")),
            )
        return result

    before = snapshot()
    code, report, out = run(lab, tmp_path, "h01,h04,h05", dry_run=True)
    assert snapshot() == before
    assert code == 2
    assert outcomes(report) == {"h01": "unhealthy", "h04": "degraded", "h05": "degraded"}
    assert "would restart uw-daemon" in out
    assert re.search(r"would alert alpaca_sip.*would restart\s+trading-bot", out, re.S)
    assert "would remove_lock metadata.lock" in out
    h05 = next(h for h in report.hosts if h.host == "h05")
    assert [a["target"] for a in h05.plan["actions"]] == ["metadata.lock"]
    assert "recorded pid" in h05.plan["actions"][0]["reason"]


def test_unknown_host_key_is_refused_and_nothing_runs(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    log = lab.path("h01", f"{APP}/logs/guardian.log")
    size = log.stat().st_size if log.exists() else 0
    code, report, _ = run(lab, tmp_path, "h01", known_hosts=empty)
    assert code == 4 and outcomes(report) == {"h01": "host-key-rejected"}
    assert "not in" in report.hosts[0].reason and "--accept-new-host-keys" in report.hosts[0].reason
    assert (log.stat().st_size if log.exists() else 0) == size


def test_changed_host_key_is_refused(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    lines = lab.known_hosts_path.read_text().splitlines()
    h01 = next(line for line in lines if line.startswith(lab.host("h01").address + " "))
    h02 = next(line for line in lines if line.startswith(lab.host("h02").address + " "))
    forged = tmp_path / "known_hosts"
    forged.write_text(lab.host("h01").address + " " + h02.split(" ", 1)[1] + "\n")
    assert forged.read_text() != h01 + "\n"
    code, report, _ = run(lab, tmp_path, "h01", known_hosts=forged)
    assert code == 4 and outcomes(report) == {"h01": "host-key-rejected"}
    assert "CHANGED" in report.hosts[0].reason
    # Even with --accept-new-host-keys a changed key stays refused.
    code, report, _ = run(lab, tmp_path, "h01", known_hosts=forged, accept_new_host_keys=True)
    assert code == 4 and outcomes(report) == {"h01": "host-key-rejected"}


def test_accept_new_host_keys_records_them(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    known = tmp_path / "known_hosts"
    known.write_text("")
    code, report, _ = run(lab, tmp_path, "h01,h02", known_hosts=known, accept_new_host_keys=True)
    assert code == 0 and outcomes(report) == {"h01": "healthy", "h02": "healthy"}
    recorded = known.read_text()
    expected = lab.known_hosts_path.read_text()
    for line in recorded.splitlines():
        assert line in expected
    assert len(recorded.splitlines()) == 2
    # The next run, without the opt-in, trusts exactly the recorded keys.
    code, report, _ = run(lab, tmp_path, "h01,h02", known_hosts=known)
    assert code == 0


def test_ssh_config_host_alias_is_honoured(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(
        f"Host droplet-a\n  HostName {lab.host('h04').address}\n  User root\n  IdentityFile {lab.key_path}\n"
    )
    inventory = tmp_path / "alias.yml"
    inventory.write_text(
        json.dumps(
            {
                "vars": {
                    "known_hosts": str(lab.known_hosts_path),
                    "python": "/usr/bin/python3",
                    "app_dir": APP,
                },
                "groups": {"aliases": {"hosts": {"droplet-a": None}}},
            }
        )
    )
    lab.fault("h04", "uw")
    result = run_command(
        "premarket",
        "droplet-a",
        inventory=[inventory],
        reports=tmp_path / "reports",
        ssh_config=str(ssh_config),
        overrides={"settle_seconds": 1},
    )
    assert result.code == 0
    report = result.report
    assert outcomes(report) == {"droplet-a": "healed"}
    assert report.run_id in lab.path("h04", f"{APP}/logs/guardian.log").read_text()  # it really was h04


def test_ctrl_c_writes_a_complete_report_and_frees_the_host(fleet: Lab, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    lab = fleet
    lab.fault("h04", "hang")
    guardian = Path(sys.executable).parent / "guardian"
    proc = subprocess.Popen(
        [
            str(guardian),
            "premarket",
            "--hosts",
            "h04,h05",
            "--inventory",
            str(lab.inventory_path),
            "--reports",
            str(tmp_path / "reports"),
            "--ssh-config",
            "",
            "--check-timeout",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,  # the CLI reads guardian.yaml and writes its last-run pointer in its cwd
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the check is hanging on h04
            if lab.exec("h04", ["pgrep", "-f", "pre_market_health_check"], check=False).returncode == 0:
                break
            time.sleep(0.2)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    report = ReportStore(tmp_path / "reports").load()
    assert report.interrupted and report.complete
    assert outcomes(report) == {"h04": "interrupted", "h05": "healthy"}
    # The runner on h04 noticed the controller was gone: it killed the check and let go of the lock.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            lab.exec("h04", ["pgrep", "-f", "pre_market_health_check|Guardian on-host runner"], check=False).returncode
            == 1
        ):
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the on-host runner or its check is still running after Ctrl-C")
    log = lab.path("h04", f"{APP}/logs/guardian.log").read_text()
    assert "Stopping: the operator pressed Ctrl-C on the controller" in log


def test_ssh_config_user_known_hosts_file_is_honoured(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(
        f"Host droplet-b\n  HostName {lab.host('h05').address}\n  User root\n  IdentityFile {lab.key_path}\n"
        f"  UserKnownHostsFile {lab.known_hosts_path}\n"
    )
    inventory = tmp_path / "alias.yml"
    inventory.write_text(
        json.dumps(
            {
                "vars": {"python": "/usr/bin/python3", "app_dir": APP},
                "groups": {"aliases": {"hosts": {"droplet-b": None}}},
            }
        )
    )
    def premarket() -> CommandRun:
        return run_command(
            "premarket", "droplet-b", inventory=[inventory], reports=tmp_path / "reports", ssh_config=str(ssh_config)
        )

    assert premarket().code == 0
    # Without UserKnownHostsFile the default ~/.ssh/known_hosts does not know the lab: refused.
    ssh_config.write_text(
        f"Host droplet-b\n  HostName {lab.host('h05').address}\n  User root\n  IdentityFile {lab.key_path}\n"
        f"  UserKnownHostsFile {tmp_path / 'empty_known_hosts'}\n"
    )
    (tmp_path / "empty_known_hosts").write_text("")
    rejected = premarket()
    assert rejected.code == 4
    assert rejected.report.hosts[0].outcome == "host-key-rejected"


def test_a_host_past_its_deadline_is_cut_off_and_the_others_finish(fleet: Lab, tmp_path: Path) -> None:
    """Over SSH the runner's channel is watched by the host's own thread: a check that hangs is
    cut at ``host_deadline`` (the session closed), reported as such, and the fleet finishes."""
    lab = fleet
    lab.fault("h04", "hang")
    result = run_command(
        "premarket",
        "h04,h05",
        inventory=[lab.inventory_path],
        reports=tmp_path / "reports",
        overrides={"settle_seconds": 1, "check_timeout": 60, "host_deadline": 4},
    )
    by_host = {h.host: h for h in result.report.hosts}
    assert by_host["h04"].outcome == "failed"
    assert by_host["h04"].reason == "host deadline of 4s exceeded; the run on the host was cut off"
    assert by_host["h04"].duration < 15
    assert by_host["h05"].outcome == "healthy"
