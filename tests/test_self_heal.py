"""Watch the watcher, without a lab: the controller's verdict on a host's cron runs (injected
clocks, no wall clock), the exit code it leads to, and how deploy's ping URL travels (on stdin,
never on a command line) and is kept (secrets.json, mode 0600, never shown)."""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from remediation.agent.config import RunnerConfig, RunnerConfigError
from remediation.agent.outcomes import EXIT_ATTENTION, EXIT_OK, EXIT_SILENT
from remediation.agent.telemetry import read_secrets
from remediation.execution.bundle import build_runner
from remediation.execution.hostrun import JobOptions, runner_config, runner_invocation
from remediation.inventory import load_inventory
from remediation.inventory.settings import SettingError, validate_setting
from remediation.reporting.report import HostReport, RunReport
from remediation.reporting.selfheal import assess, clock_line, silence_line

PRE_MARKET = {"name": "pre_market", "schedule": "15 14 * * 1-5", "check": "pre_market_health_check.py"}
SECRET = "https://hc-ping.example/0b9a-secret-uuid"


def ts(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def facts(changed_at: str = "2026-11-30T10:00:00Z", **extra: Any) -> dict[str, Any]:
    manifest = {"version": "0.1.0", "bundle": "abc", "scheduler": "cron", "schedules": [PRE_MARKET]}
    return {"deployed": {**manifest, "changed_at": changed_at}, "tz": "UTC", **extra}


def cron_run(started_at: str, outcome: str = "healthy") -> dict[str, Any]:
    return {"run_id": f"{started_at}-cron", "started_at": started_at, "outcome": outcome, "check": PRE_MARKET["check"]}


# 2026-11-30 is a Monday; Tuesday's 14:15 UTC run is the one that goes missing.
def test_a_missed_weekday_run_is_silent_since_the_last_run() -> None:
    verdict = assess(facts(), [cron_run("2026-11-30T14:15:02Z")], now=ts("2026-12-01T15:00:00Z"), grace=300)
    assert [s["expected"] for s in verdict["silent"]] == [["2026-12-01T14:15:00Z"]]
    assert verdict["silent"][0]["last_run"] == "2026-11-30T14:15:02Z"
    line = silence_line(verdict)
    assert "self-heal silent since 2026-11-30T14:15:02Z (expected at 2026-12-01T14:15:00Z" in line
    assert verdict["next_due"] == "2026-12-02T14:15:00Z"
    assert verdict["last_cron_run"]["outcome"] == "healthy"


def test_a_served_run_or_one_still_within_the_grace_is_not_silent() -> None:
    runs = [cron_run("2026-12-01T14:15:03Z"), cron_run("2026-11-30T14:15:02Z")]
    assert assess(facts(), runs, now=ts("2026-12-01T15:00:00Z"), grace=300)["silent"] == []
    # Tuesday's run is 2 minutes late at most so far: Monday's run still stands.
    late = assess(facts(), runs[1:], now=ts("2026-12-01T14:17:00Z"), grace=300)
    assert late["silent"] == []


def test_fire_times_before_the_deploy_and_on_weekends_are_not_expected() -> None:
    fresh = facts(changed_at="2026-12-01T14:16:00Z")  # deployed just after Tuesday's fire time
    assert assess(fresh, [], now=ts("2026-12-01T20:00:00Z"), grace=300)["silent"] == []
    # Friday's run came; Saturday and Sunday have no fire time; Monday's is missed.
    verdict = assess(facts(), [cron_run("2026-12-04T14:15:01Z")], now=ts("2026-12-07T16:00:00Z"), grace=300)
    assert [s["expected"] for s in verdict["silent"]] == [["2026-12-07T14:15:00Z"]]


def test_a_host_that_never_ran_cron_and_one_not_deployed() -> None:
    never = assess(facts(), [], now=ts("2026-12-01T15:00:00Z"), grace=300)
    assert never["silent"][0]["last_run"] is None
    assert "since (no cron run seen)" in silence_line(never)
    assert never["silent"][0]["expected"] == ["2026-11-30T14:15:00Z", "2026-12-01T14:15:00Z"]
    bare = assess({"deployed": None, "tz": "UTC"}, [], now=ts("2026-12-01T15:00:00Z"), grace=300)
    assert bare["deployed"] is False and bare["silent"] == [] and silence_line(bare) == ""


def test_the_hosts_zone_is_the_one_cron_fires_in() -> None:
    # 9:15 in New York is 14:15 UTC in winter: a run at 14:15:05 UTC served it.
    ny = {**facts(), "tz": "America/New_York"}
    ny["deployed"]["schedules"] = [{**PRE_MARKET, "schedule": "15 9 * * 1-5"}]
    assert assess(ny, [cron_run("2026-12-01T14:15:05Z")], now=ts("2026-12-01T15:00:00Z"), grace=300)["silent"] == []


def test_a_host_clock_that_is_off_is_flagged() -> None:
    now = ts("2026-12-01T15:00:00Z")
    verdict = assess(facts(host_time=now - 600), [cron_run("2026-12-01T14:15:03Z")], now=now, grace=300)
    assert verdict["clock_skew"] == -600.0
    assert clock_line(verdict) == "host clock is 600 s behind the controller's: cron fires by it"
    assert clock_line(assess(facts(host_time=now + 3), [], now=now, grace=300)) == ""


def test_a_silent_host_gives_its_own_exit_code_unless_something_is_worse() -> None:
    silent = HostReport("h1", "a", "ssh", outcome="healthy", self_heal={"silent": [{"message": "x"}]})
    fine = HostReport("h2", "b", "ssh", outcome="healthy", self_heal={"silent": []})
    report = RunReport("r", "premarket", "t", hosts=[silent, fine])
    assert report.compute_exit_code() == EXIT_SILENT
    fine.outcome = "still-unhealthy"
    assert report.compute_exit_code() == EXIT_ATTENTION
    silent.self_heal = {"silent": []}
    fine.outcome = "healthy"
    assert report.compute_exit_code() == EXIT_OK


def lab_like_inventory(tmp_path: Path, **host: Any) -> Path:
    path = tmp_path / "inv.yml"
    entry = {"transport": "local", "app_dir": str(tmp_path / "app"), "python": sys.executable, "manager": "signal"}
    path.write_text(json.dumps({"groups": {"g": {"hosts": {"here": {**entry, **host}}}}}))
    return path


def test_the_ping_url_is_never_on_the_command_line_and_comes_back_on_stdin(tmp_path: Path) -> None:
    host = load_inventory([lab_like_inventory(tmp_path, ping_url=SECRET)]).select("here")[0]
    job = JobOptions(run_id="r1", action="deploy", dry_run=True)
    command, secrets = runner_invocation(host, job)
    assert SECRET not in command and secrets == {"ping_url": SECRET}
    assert runner_config(host, job).deploy is not None
    # A premarket run carries no secret at all.
    assert runner_invocation(host, JobOptions(run_id="r2"))[1] == {}

    # The runner itself: the config on its command line, the secrets as the first stdin line.
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "pre_market_health_check.py").write_text("print('ok')\n")
    config, secrets = runner_config(host, job).split_secrets()
    script = build_runner(config)
    assert SECRET not in script
    proc = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps({"secrets": secrets}) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = [json.loads(line) for line in proc.stdout.splitlines() if '"event": "result"' in line][-1]
    change = next(c for c in result["changes"] if c["item"].endswith("secrets.json"))
    assert change["action"] == "create" and "secret: content not shown" in change["detail"]
    assert SECRET not in proc.stdout + proc.stderr
    assert not (tmp_path / "app" / ".guardian").exists()  # a dry run wrote nothing

    # Without the stdin line the runner refuses instead of deploying without the secret.
    proc = subprocess.run([sys.executable, "-c", script], input="", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and "did not send the secrets" in proc.stdout


def test_secrets_are_validated_and_never_echoed(tmp_path: Path) -> None:
    with pytest.raises(SettingError) as err:
        validate_setting("ping_url", "ftp://hc-ping.example/secret-uuid")
    assert "secret-uuid" not in str(err.value)
    assert validate_setting("ping_url", SECRET) == SECRET and validate_setting("ping_url", None) is None
    config = RunnerConfig.from_dict({"action": "deploy"})
    with pytest.raises(RunnerConfigError, match="unknown secret 'webhook'"):
        config.with_secrets({"webhook": "x"})


def test_cron_reads_its_secrets_and_warns_when_others_can_read_them(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    assert read_secrets(str(path)) == ({}, None)
    path.write_text(json.dumps({"ping_url": SECRET}))
    os.chmod(path, 0o644)
    secrets, warning = read_secrets(str(path))
    assert secrets == {"ping_url": SECRET} and warning and "mode 0644" in warning and SECRET not in warning
    os.chmod(path, 0o600)
    assert read_secrets(str(path)) == ({"ping_url": SECRET}, None)


def test_timers_fire_in_utc_whatever_the_hosts_zone() -> None:
    # 14:15 UTC is 09:15 in New York; a timer host's runs are judged in UTC, as deploy writes them.
    timer = {**facts(), "tz": "America/New_York"}
    timer["deployed"]["scheduler"] = "systemd-timer"
    verdict = assess(timer, [cron_run("2026-12-01T14:15:04Z")], now=ts("2026-12-01T15:00:00Z"), grace=300)
    assert verdict["tz"] == "UTC" and verdict["silent"] == []
    cron = {**facts(), "tz": "America/New_York"}  # the same schedule under cron fires at 14:15 New York
    assert assess(cron, [cron_run("2026-12-01T14:15:04Z")], now=ts("2026-12-01T20:00:00Z"), grace=300)["silent"]


@pytest.mark.parametrize(
    "url",
    ["https://hc-ping.com:uuid-secret/x", "https://hc-ping.com/uuid-secret\x01", "https://hc-ping.com/a\x7fsecret"],
)
def test_a_malformed_ping_url_is_refused_at_load_without_showing_it(url: str) -> None:
    with pytest.raises(SettingError) as err:
        validate_setting("ping_url", url)
    assert "secret" not in str(err.value).replace("it is a secret", "")


def test_a_ping_never_raises_and_never_quotes_the_url() -> None:
    from remediation.agent.ping import send_ping

    for url in ("https://hc-ping.com/SECRETUUID\x01", "https://hc-ping.com:notaport/SECRETUUID", "http://[::1"):
        problem = send_ping(url, "start", timeout=0.5)
        assert problem and "SECRETUUID" not in problem


def test_a_rare_schedules_last_run_counts_even_when_older_than_the_journals_brought_home() -> None:
    audit = {"name": "friday_eow_audit", "schedule": "30 20 * * 5", "check": "friday_eow_audit.py"}
    data = facts()
    data["deployed"]["schedules"] = [audit]
    now = ts("2026-12-07T10:00:00Z")  # Monday; the audit ran on Friday 2026-12-04 at 20:30
    assert assess(data, [], now=now, grace=300)["silent"]  # its journal not among those brought home
    data["last_runs"] = {"friday_eow_audit.py": "2026-12-04T20:30:02Z"}
    assert assess(data, [], now=now, grace=300)["silent"] == []
