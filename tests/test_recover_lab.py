"""recover and the fleet-safety guards against the lab: rolling batches, restart budgets,
the blast-radius guard, maintenance holds, the retry file and webhook alerts."""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import run_command, run_cron_runner

from remediation.errors import GuardianError
from remediation.lab import Lab
from remediation.reporting.report import ReportStore, RunReport

pytestmark = pytest.mark.lab
APP = "/root/stock-bot"


def uw_pid(lab: Lab, host: str) -> int:
    return int(json.loads(lab.path(host, f"{APP}/state/uw_daemon.json").read_text())["pid"])


def bot_pid(lab: Lab, host: str) -> int:
    return int(json.loads(lab.path(host, f"{APP}/state/trading_bot.json").read_text())["pid"])


def run(
    lab: Lab,
    tmp_path: Path,
    command: str,
    hosts: str,
    *,
    group_vars: dict[str, object] | None = None,
    **options: object,
) -> tuple[int, RunReport, str]:
    inventory = [lab.inventory_path]
    if group_vars:
        extra = tmp_path / "zz-vars.yml"
        extra.write_text(json.dumps({"groups": {"lab": {**group_vars}}}))
        inventory.append(extra)
    result = run_command(
        command,
        hosts,
        inventory=inventory,
        reports=tmp_path / "reports",
        overrides={"settle_seconds": 1, "check_timeout": 20},
        **options,
    )
    return result.code, result.report, result.out


def outcomes(report: RunReport) -> dict[str, str]:
    return {h.host: h.outcome for h in report.hosts}


def test_rolling_recover_stops_when_failures_cross_the_threshold(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    lab.fault("h02", "sshd-down")
    lab.fault("h03", "sshd-down")
    untouched = {h: (uw_pid(lab, h), bot_pid(lab, h)) for h in ("h05", "h06")}
    logs = {h: lab.path(h, f"{APP}/logs/guardian.log") for h in ("h05", "h06")}
    sizes = {h: (p.stat().st_size if p.exists() else 0) for h, p in logs.items()}
    before_h01 = uw_pid(lab, "h01")

    code, report, out = run(lab, tmp_path, "recover", "lab", serial="2", max_fail_percent=30.0, only=["uw"], yes=True)

    assert outcomes(report) == {
        "h01": "healthy",
        "h02": "unreachable",
        "h03": "unreachable",
        "h04": "healthy",
        "h05": "skipped",
        "h06": "skipped",
    }, out
    assert code == 4
    assert "stopped after batch 2 of 3" in report.stopped_reason and "ROLLING RECOVERY STOPPED" in out
    assert uw_pid(lab, "h01") != before_h01  # batch 1 really recovered (forced restart)
    for host in ("h05", "h06"):  # later batches untouched: no restart, not even a log line
        assert (uw_pid(lab, host), bot_pid(lab, host)) == untouched[host]
        assert (logs[host].stat().st_size if logs[host].exists() else 0) == sizes[host]
    # The retry file holds exactly the failed, unreachable and skipped hosts.
    assert ReportStore(tmp_path / "reports").last_failed() == ["h02", "h03", "h05", "h06"]
    lab.fault("h02", "reset")
    lab.fault("h03", "reset")
    code, report, _ = run(lab, tmp_path, "premarket", "@last-failed")
    assert sorted(outcomes(report)) == ["h02", "h03", "h05", "h06"] and code == 0


def test_protected_group_needs_confirmation(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    before = uw_pid(lab, "h01")
    with pytest.raises(GuardianError, match=r"protected.*--yes"):
        run(lab, tmp_path, "recover", "h01", group_vars={"protected": True})
    assert uw_pid(lab, "h01") == before


def test_restart_budget_across_laptop_and_cron_runs(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    budget = {"vars": {"restart_budget_max": 2, "restart_budget_window": 600}}
    assert run(lab, tmp_path, "deploy", "h01", group_vars=budget)[0] == 0
    pids = [uw_pid(lab, "h01")]
    # 1: a laptop run restarts the UW daemon.
    lab.fault("h01", "uw")
    code, report, _ = run(lab, tmp_path, "premarket", "h01", group_vars=budget)
    assert code == 0 and outcomes(report) == {"h01": "healed"}
    pids.append(uw_pid(lab, "h01"))
    # 2: the cron runner (same host state) restarts it again.
    lab.fault("h01", "uw")
    cron = run_cron_runner(lab, "h01")
    assert "outcome: healed" in cron, cron
    pids.append(uw_pid(lab, "h01"))
    assert len(set(pids)) == 3
    # 3: the budget (2 in 10 min) is spent: no restart, a critical alert, breaker reported.
    lab.fault("h01", "uw")
    code, report, out = run(lab, tmp_path, "premarket", "h01", group_vars=budget)
    host = report.hosts[0]
    assert code == 2 and host.outcome == "still-unhealthy"
    assert uw_pid(lab, "h01") == pids[-1]  # the PIDs prove no extra restart
    blocked = [a for a in host.actions if a["kind"] == "breaker_open"]
    assert len(blocked) == 1 and blocked[0]["result"] == "blocked"
    assert "2 restart(s) of uw-daemon" in blocked[0]["breaker"]["description"]
    alerts = list(lab.path("h01", f"{APP}/logs").glob("guardian_breaker_uw-daemon_alert_*.txt"))
    assert len(alerts) == 1 and "CRITICAL" in alerts[0].read_text()
    assert any(f.name == alerts[0].name for f in host.files)
    assert "BLOCKED" in out
    # A cron run now is blocked too.
    cron = run_cron_runner(lab, "h01")
    assert "breaker_open uw-daemon: blocked" in cron and uw_pid(lab, "h01") == pids[-1]
    # The operator resets the breaker: the next recovery restarts again.
    code, report, _ = run(lab, tmp_path, "recover", "h01", group_vars=budget, only=["uw"], reset_breaker=True, yes=True)
    assert code == 0 and outcomes(report) == {"h01": "healed"} and uw_pid(lab, "h01") != pids[-1]


class Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def accepted_logins(lab: Lab) -> dict[str, int]:
    counts = {}
    for host in lab.hosts:
        log = lab.path(host.name, "/var/log/sshd.log")
        counts[host.name] = log.read_text().count("Accepted publickey") if log.exists() else 0
    return counts


@pytest.mark.parametrize("forks", [32, 2], ids=["gate-in-one-session", "separate-survey-run"])
def test_common_cause_incident_restarts_nothing_until_forced(fleet: Lab, tmp_path: Path, forks: int) -> None:
    """With a worker per host the survey waits at a gate inside each host's one session; with
    fewer workers than hosts it is a separate first run. Both decide the same way."""
    lab = fleet
    for host in ("h01", "h02", "h03", "h04", "h05"):
        lab.fault(host, "uw")
    before = {h.name: uw_pid(lab, h.name) for h in lab.hosts}
    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    secret_url = f"http://127.0.0.1:{server.server_port}/hooks/T0SECRET/B1SECRET"
    Hook.received = []
    try:
        code, report, out = run(lab, tmp_path, "premarket", "lab", webhook=secret_url, forks=forks)
    finally:
        server.shutdown()
        server.server_close()
    assert {h.name: uw_pid(lab, h.name) for h in lab.hosts} == before  # nothing restarted anywhere
    assert code == 2
    assert report.incidents and len(report.incidents) == 1
    incident = report.incidents[0]
    assert incident["signature"] == "uw_socket" and incident["hosts"] == ["h01", "h02", "h03", "h04", "h05"]
    assert "COMMON-CAUSE INCIDENT: uw_socket on 5 of 6 hosts" in out
    assert outcomes(report)["h06"] == "healthy"
    for host in report.hosts[:5]:
        assert host.outcome == "still-unhealthy" and host.actions == []
        assert any("common-cause incident" in n for n in host.plan["notes"])
    # One incident alert reached the webhook; the URL (a token) is nowhere in the report.
    texts = [str(m["text"]) for m in Hook.received]
    assert sum("common-cause incident" in t for t in texts) == 1
    run_dir = tmp_path / "reports" / report.run_id
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert "SECRET" not in path.read_text(errors="replace"), path

    logins = accepted_logins(lab)
    code, report, out = run(lab, tmp_path, "premarket", "lab", force=True, forks=forks)
    assert code == 0, out
    # SSH logins per host in the forced run: one session for everything when gated; the survey
    # and the action are two when the pool is smaller than the fleet.
    after = accepted_logins(lab)
    per_host = {h: after[h] - logins[h] for h in after}
    assert per_host == {**{f"h0{i}": 1 if forks == 32 else 2 for i in range(1, 6)}, "h06": 1}
    assert {h: o for h, o in outcomes(report).items()} == {
        **{f"h0{i}": "healed" for i in range(1, 6)},
        "h06": "healthy",
    }
    assert all(uw_pid(lab, f"h0{i}") != before[f"h0{i}"] for i in range(1, 6))
    assert uw_pid(lab, "h06") == before["h06"]


def test_held_host_is_skipped_by_every_runner_until_the_hold_expires(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    assert run(lab, tmp_path, "deploy", "h03")[0] == 0
    code, report, _ = run(lab, tmp_path, "hold", "h03", hold_seconds=12.0, hold_reason="kernel upgrade")
    assert code == 0 and outcomes(report) == {"h03": "held"}
    lab.fault("h03", "uw")
    before = uw_pid(lab, "h03")
    code, report, _ = run(lab, tmp_path, "premarket", "h03")
    assert outcomes(report) == {"h03": "held"} and "kernel upgrade" in report.hosts[0].reason
    code, report, _ = run(lab, tmp_path, "recover", "h03", yes=True)
    assert outcomes(report) == {"h03": "held"}
    cron = run_cron_runner(lab, "h03")
    assert "outcome: held" in cron
    assert uw_pid(lab, "h03") == before
    deadline = time.monotonic() + 20
    while True:  # the hold expires on its own
        code, report, _ = run(lab, tmp_path, "premarket", "h03")
        if outcomes(report)["h03"] != "held" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert outcomes(report) == {"h03": "healed"} and uw_pid(lab, "h03") != before
    # release lifts a hold at once
    run(lab, tmp_path, "hold", "h03", hold_seconds=3600.0, hold_reason="again")
    code, report, _ = run(lab, tmp_path, "release", "h03")
    assert outcomes(report) == {"h03": "released"}
    assert outcomes(run(lab, tmp_path, "premarket", "h03")[1]) == {"h03": "healthy"}
