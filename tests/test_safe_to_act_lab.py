"""Safe to act, on real lab hosts (supervisor, systemd as PID 1, the signal manager,
process-compose's stand-in): a restart of the trading bot waits while it has orders in flight,
inside a quiet window (unless --force) and when its pre_restart hook fails; a post_restart that
fails, a daemon that dies seconds after its restart and one that hangs are never "healed"; a dry
run shows the precondition's answer and the window decision and changes nothing; the cron runner
defers too. Each lab host is a separate network + PID + mount namespace with its own sshd."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CommandRun, checked_and_reset, own_lab, run_command, run_cron_runner

from remediation.agent.outcomes import EXIT_ATTENTION, EXIT_DEFERRED, EXIT_OK
from remediation.lab import Lab
from remediation.reporting.history import history_table, load_history
from remediation.reporting.render import to_text
from remediation.reporting.report import ReportStore

pytestmark = pytest.mark.lab
APP = "/root/stock-bot"
MANAGERS = ["supervisor", "systemd", "signal", "process-compose"]
FAST = {"settle_seconds": 1, "check_timeout": 20}
STATUS = {"uw-daemon": "state/uw_daemon.json", "trading-bot": "state/trading_bot.json"}


@pytest.fixture(scope="module")
def salab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with own_lab(tmp_path_factory, "ga", 12, len(MANAGERS), managers=MANAGERS) as fleet:
        yield fleet


@pytest.fixture
def sa(salab: Lab) -> Iterator[Lab]:
    with checked_and_reset(salab) as checked:
        yield checked


class Webhook:
    """A Slack-compatible webhook on loopback that keeps every message it is sent."""

    def __init__(self) -> None:
        messages: list[str] = []
        self.messages = messages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                messages.append(json.loads(body)["text"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run(
    lab: Lab, tmp_path: Path, command: str, hosts: str, extra: list[Path] | None = None, **request: Any
) -> CommandRun:
    overrides = {**FAST, **request.pop("overrides", {})}
    return run_command(
        command,
        hosts,
        inventory=[lab.inventory_path, *(extra or [])],
        reports=tmp_path / "reports",
        overrides=overrides,
        **request,
    )


def host_of(result: CommandRun, name: str) -> Any:
    return next(h for h in result.report.hosts if h.host == name)


def pid(lab: Lab, host: str, service: str) -> int:
    return int(json.loads(lab.path(host, f"{APP}/{STATUS[service]}").read_text())["pid"])


def alive(lab: Lab, host: str, process: int) -> bool:
    return process in lab.processes(host)


def deferred_alerts(lab: Lab, host: str) -> list[Path]:
    return sorted(lab.path(host, f"{APP}/logs").glob("guardian_deferred_trading-bot_alert_*.txt"))


def quiet_window_now(tmp_path: Path) -> Path:
    """An inventory layer with a quiet window for the trading bot around now (UTC), every day."""
    now = dt.datetime.now(dt.timezone.utc)
    window = {
        "name": "market hours",
        "services": ["trading-bot"],
        "days": "daily",
        "start": f"{now - dt.timedelta(hours=1):%H:%M}",
        "end": f"{now + dt.timedelta(hours=1):%H:%M}",
        "tz": "UTC",
    }
    path = tmp_path / "zz-quiet.yml"
    path.write_text(json.dumps({"groups": {"lab": {"vars": {"quiet_windows": [window]}}}}))
    return path


def newest_journal(lab: Lab, host: str) -> dict[str, Any]:
    journals = sorted(lab.path(host, f"{APP}/.guardian/state/journal").glob("*.json"), key=lambda p: p.stat().st_mtime)
    return dict(json.loads(journals[-1].read_text()))


def test_orders_in_flight_defer_the_restart_and_the_next_run_after_they_clear_heals(sa: Lab, tmp_path: Path) -> None:
    hosts = "h01,h02"  # supervisor and systemd
    for host in hosts.split(","):
        sa.fault(host, "unsafe")  # 3 orders in flight and a SIP delay: the bot's restart is due
    before = {h: pid(sa, h, "trading-bot") for h in hosts.split(",")}
    hook = Webhook()
    try:
        result = run(sa, tmp_path, "premarket", hosts, webhook=hook.url)
    finally:
        hook.close()
    assert result.code == EXIT_DEFERRED, result.out
    for host in hosts.split(","):
        report = host_of(result, host)
        assert report.outcome == "deferred", (host, report.reason)
        assert pid(sa, host, "trading-bot") == before[host], f"{host}: the bot was restarted with orders in flight"
        assert alive(sa, host, before[host])
        [entry] = report.deferred
        assert entry["service"] == "trading-bot" and entry["kind"] == "unsafe"
        assert "3 orders in flight" in entry["reason"] and "3 orders in flight" in report.reason
        assert "next premarket or recover run" in entry["retry"]  # nothing deployed: no schedule
        [step] = [a for a in report.actions if a["target"] == "trading-bot"]
        assert step["kind"] == "defer" and step["result"] == "deferred"
        assert step["gate"]["safe_to_restart"]["exit_code"] == 1
        assert len(deferred_alerts(sa, host)) == 1
        assert "3 orders in flight" in deferred_alerts(sa, host)[0].read_text()
        journal = newest_journal(sa, host)  # the host's own record of the run says the same
        assert journal["outcome"] == "deferred" and journal["deferred"][0]["kind"] == "unsafe"
    assert "RESTART DEFERRED on h01" in result.out and "3 orders in flight" in result.out
    assert sum("3 orders in flight" in m and "deferred" in m for m in hook.messages) == 2, hook.messages
    store = ReportStore(tmp_path / "reports")
    page = (store.run_dir(result.report.run_id) / "index.html").read_text()
    assert "deferred" in page and "3 orders in flight" in page
    history = to_text(history_table(load_history(store, host="h01")))
    assert "deferred" in history

    for host in hosts.split(","):
        sa.fault(host, "safe")  # the orders filled: safe_to_restart says go
    again = run(sa, tmp_path, "premarket", hosts)
    assert again.code == EXIT_OK, again.out
    for host in hosts.split(","):
        assert host_of(again, host).outcome == "healed"
        assert pid(sa, host, "trading-bot") != before[host]
        restart = next(a for a in host_of(again, host).actions if a["kind"] == "restart")
        assert restart["safe_to_restart"]["ok"] and restart["pre_restart"]["ok"] and restart["post_restart"]["ok"]


def test_a_quiet_window_defers_without_force_restarts_with_it_and_cron_never_forces(sa: Lab, tmp_path: Path) -> None:
    host = "h03"  # the signal manager: no supervisor, no systemd
    quiet = quiet_window_now(tmp_path)
    sa.fault(host, "sip")
    bot = pid(sa, host, "trading-bot")
    result = run(sa, tmp_path, "premarket", host, [quiet])
    report = host_of(result, host)
    assert (result.code, report.outcome) == (EXIT_DEFERRED, "deferred"), result.out
    [entry] = report.deferred
    assert entry["kind"] == "quiet-window" and "market hours" in entry["reason"] and "--force" in entry["reason"]
    assert pid(sa, host, "trading-bot") == bot

    # cron's runner, installed by deploy with the same window: it defers too, and says when it
    # tries again (the deployed pre_market schedule's next run after the window ends)
    deployed = run(sa, tmp_path, "deploy", host, [quiet])
    assert deployed.code == EXIT_OK, deployed.out
    out = run_cron_runner(sa, host)
    journal = newest_journal(sa, host)
    assert journal["runner"] == "cron" and journal["outcome"] == "deferred", out
    [cron_entry] = journal["deferred"]
    window_end = dt.datetime.fromisoformat(report.deferred[0]["reason"].split(" until ")[1].split(" ")[0][:-1])
    retry_at = dt.datetime.fromisoformat(str(cron_entry["retry_at"]).rstrip("Z"))
    assert retry_at >= window_end and "scheduled run" in cron_entry["retry"], cron_entry
    assert pid(sa, host, "trading-bot") == bot

    forced = run(sa, tmp_path, "recover", host, [quiet], only=["sip"], force=True)
    assert host_of(forced, host).outcome == "healed", forced.out
    assert pid(sa, host, "trading-bot") != bot
    plan = host_of(forced, host).plan
    assert any("overridden by --force" in n for n in plan["notes"])


def test_a_failing_pre_restart_restarts_nothing_and_a_failing_post_restart_is_never_healed(
    sa: Lab, tmp_path: Path
) -> None:
    sa.fault("h01", "pre-restart-fail")
    sa.fault("h04", "post-restart-fail")
    for host in ("h01", "h04"):
        sa.fault(host, "sip")
    bots = {h: pid(sa, h, "trading-bot") for h in ("h01", "h04")}
    result = run(sa, tmp_path, "premarket", "h01,h04")
    assert result.code == EXIT_ATTENTION, result.out
    pre = host_of(result, "h01")
    assert pre.outcome == "deferred" and pre.deferred[0]["kind"] == "pre-restart"
    assert "broker API unreachable" in pre.reason
    assert pid(sa, "h01", "trading-bot") == bots["h01"]
    [step] = [a for a in pre.actions if a["target"] == "trading-bot"]
    assert step["result"] == "deferred" and step["pre_restart"]["exit_code"] == 1
    post = host_of(result, "h04")
    assert post.outcome == "still-degraded", post.reason  # the check passes; the reconcile did not
    assert (post.after or {}).get("state") == "healthy"
    assert pid(sa, "h04", "trading-bot") != bots["h04"]  # the restart itself was done
    assert "post_restart for trading-bot failed" in post.reason and "reconcile failed" in post.reason
    assert post.unstable and post.unstable[0]["down"] is False


def test_a_daemon_that_dies_after_its_restart_is_never_healed_and_trips_the_breaker(sa: Lab, tmp_path: Path) -> None:
    hosts = ["h01", "h02"]  # supervisor leaves it dead; systemd (Restart=always) starts it again
    for host in hosts:
        sa.fault(host, "crash-after-start")
    runs = [run(sa, tmp_path, "premarket", ",".join(hosts)) for _ in range(4)]
    for n, result in enumerate(runs[:3]):
        for host in hosts:
            report = host_of(result, host)
            assert report.outcome == "still-unhealthy", (n, host, report.reason)
            restart = next(a for a in report.actions if a["kind"] == "restart")
            assert restart["result"] == "failed", (n, host, restart)
            if n == 0:  # later, systemd's own restarts may reach its start limit: the restart itself fails
                assert "exited" in report.reason or "restarted again" in report.reason, (host, report.reason)
    for host in hosts:
        last = host_of(runs[3], host)
        assert last.outcome != "healed"
        assert any(a["kind"] == "breaker_open" and a["result"] == "blocked" for a in last.actions), last.actions
        assert len(last.guards["breakers"]["uw-daemon"]["recent"]) == 3  # every attempt counted
    systemd = host_of(runs[0], "h02")
    assert "restarted again by its process manager (systemd)" in systemd.reason


def test_a_hung_daemon_whose_heartbeat_stops_is_detected(sa: Lab, tmp_path: Path) -> None:
    host = "h04"  # process-compose's stand-in
    sa.fault(host, "hung-daemon")
    result = run(sa, tmp_path, "premarket", host)
    report = host_of(result, host)
    assert report.outcome == "still-unhealthy", report.reason
    assert (report.after or {}).get("state") == "healthy"  # the check cannot see it; the heartbeat does
    [unstable] = report.unstable
    assert "state/uw_heartbeat did not move" in unstable["problem"] and "hung" in unstable["problem"]
    assert alive(sa, host, pid(sa, host, "uw-daemon"))  # the pid lives on: hung, not dead
    restart = next(a for a in report.actions if a["kind"] == "restart")
    assert restart["result"] == "failed"
    assert report.verify is not None and report.verify["stable"] is False


def test_dry_run_shows_the_precondition_answer_and_the_window_decision_and_changes_nothing(
    sa: Lab, tmp_path: Path
) -> None:
    host = "h01"
    sa.fault(host, "unsafe")
    quiet = quiet_window_now(tmp_path)
    bot = pid(sa, host, "trading-bot")
    state = sa.path(host, f"{APP}/.guardian")
    logs = sorted(p.name for p in sa.path(host, f"{APP}/logs").iterdir())
    result = run(sa, tmp_path, "premarket", host, [quiet], dry_run=True)
    report = host_of(result, host)
    assert report.outcome == "degraded"
    [step] = [a for a in report.plan["actions"] if a["target"] == "trading-bot"]
    assert step["kind"] == "defer"
    gate = step["detail"]["gate"]
    assert gate["window"]["quiet"] is True and gate["window"]["window"]["name"] == "market hours"
    assert gate["safe_to_restart"]["exit_code"] == 1 and "3 orders in flight" in gate["safe_to_restart"]["output"]
    assert "a real run would defer" in report.reason and "3 orders in flight" in report.reason
    assert "RESTART WOULD BE DEFERRED on h01" in result.out
    # nothing changed: the same bot, no Guardian files, no new log or alert file
    assert pid(sa, host, "trading-bot") == bot
    assert not state.exists() or not any(state.rglob("*.json"))
    assert sorted(p.name for p in sa.path(host, f"{APP}/logs").iterdir()) == logs
