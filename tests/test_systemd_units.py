"""systemd without a lab: what Guardian reads of a unit and decides about it (recorded output of
real systemd 252), the commands the manager yields, and the timer units deploy writes, checked
against systemd's own calendar parser (``systemd-analyze calendar``) and cron's semantics."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from remediation.agent.commands import Command, CommandResult
from remediation.agent.cronblock import ScheduleError
from remediation.agent.cronexpr import CronSchedule
from remediation.agent.deploy import logrotate_argv, runner_argv
from remediation.agent.managers import ManagerError, ServiceSpec, ServiceState, SystemdManager
from remediation.agent.systemd import (
    MASKED,
    NOT_FOUND,
    RESET_FAILED,
    RESTART,
    STOPPED,
    UnitFacts,
    judge,
    parse_show,
    unit_preflight,
)
from remediation.agent.timers import exec_quote, on_calendar, render_units, unit_stem
from remediation.inventory.settings import SettingError, validate_setting

FIXTURES = Path(__file__).parent / "fixtures" / "systemd"
SPEC = ServiceSpec("uw-daemon", "uw-daemon", "uw_flow_daemon.py", "/nonexistent/uw.pid")


def recorded(name: str) -> str:
    return (FIXTURES / f"real_show_{name}.txt").read_text()


def state_of(name: str) -> ServiceState:
    return SystemdManager({}).parse_status(SPEC, CommandResult(0, recorded(name)))


# -- a unit's facts and the verdict on it ---------------------------------------------------------


def test_a_crash_loop_that_systemd_gave_up_on_is_named_start_limit_hit_though_result_says_exit_code() -> None:
    facts = parse_show(recorded("start_limit_crash_loop"))
    assert (facts.active_state, facts.result, facts.restart) == ("failed", "exit-code", "always")
    assert facts.gave_up
    verdict = judge(facts)
    assert verdict.verdict == RESET_FAILED and not verdict.refused
    assert verdict.reason.startswith("start-limit-hit: systemd gave up restarting uw-daemon.service")
    assert "more than 3 starts within 2min" in verdict.reason
    assert "systemctl reset-failed uw-daemon.service" in verdict.reason


def test_a_failed_unit_without_restart_policy_is_reset_but_not_called_start_limit_hit() -> None:
    facts = UnitFacts("x.service", "loaded", "failed", "failed", result="exit-code", restart="no", n_restarts=0)
    verdict = judge(facts)
    assert verdict.verdict == RESET_FAILED
    assert "start-limit-hit" not in verdict.reason
    assert judge(UnitFacts("x.service", "loaded", "failed", "failed", result="start-limit-hit")).reason.startswith(
        "start-limit-hit"
    )


@pytest.mark.parametrize(
    ("name", "verdict", "says"),
    [
        ("masked", MASKED, "`systemctl unmask uw-daemon.service`"),
        ("not_found", NOT_FOUND, "set its `name` in the inventory's `services`"),
        ("stopped", STOPPED, "`systemctl start trading-bot.service` if it should run"),
    ],
)
def test_units_an_operator_took_down_are_refused_with_what_to_do(name: str, verdict: str, says: str) -> None:
    judged = judge(parse_show(recorded(name)))
    assert judged.verdict == verdict and judged.refused
    assert says in judged.reason


def test_a_broken_unit_file_is_refused() -> None:
    facts = UnitFacts(
        "x.service", "bad-setting", "inactive", "dead", load_error="org.freedesktop.systemd1.BadUnitSetting"
    )
    judged = judge(facts)
    assert judged.refused and "does not load (LoadState=bad-setting" in judged.reason


@pytest.mark.parametrize("name", ["running", "auto_restart"])
def test_running_or_auto_restarting_units_are_restarted_as_they_are(name: str) -> None:
    assert judge(parse_show(recorded(name))).verdict == RESTART


# -- the manager's commands and records ----------------------------------------------------------


def test_the_manager_refuses_a_masked_unit_and_resets_a_failed_one_first() -> None:
    manager = SystemdManager({})
    masked = state_of("masked")
    assert manager.refusal(SPEC, masked) is not None and "is masked" in str(manager.refusal(SPEC, masked))
    failed = state_of("start_limit_crash_loop")
    assert manager.refusal(SPEC, failed) is None
    assert manager.restart_prelude(SPEC, failed) == [Command.run("systemctl", "reset-failed", "uw-daemon")]
    assert manager.restart_command(SPEC, failed) == Command.run("systemctl", "restart", "uw-daemon")
    running = state_of("running")
    assert manager.restart_prelude(SPEC, running) == []
    assert manager.authoritative  # its state, not the daemon's pid file, confirms a restart


def test_the_restart_record_keeps_invocation_and_restart_count() -> None:
    manager = SystemdManager({})
    before, after = state_of("start_limit_crash_loop"), state_of("running")
    facts = manager.restart_facts(SPEC, before, after)["systemd"]
    assert facts["reset_failed"] is True
    assert facts["before"]["state"] == "failed/failed (exit-code)" and facts["after"]["main_pid"] == 127
    assert facts["after"]["invocation_id"] and facts["after"]["n_restarts"] == 0
    assert "InvocationID" in facts["note"] and "NRestarts 0" in facts["note"]
    assert "props" not in after.to_dict()  # the report keeps raw once


def test_the_manager_is_not_fooled_by_a_host_without_systemd() -> None:
    manager = SystemdManager({})
    offline = "System has not been booted with systemd as init system (PID 1). Can't operate.\noffline\n"
    with pytest.raises(ManagerError, match="systemd is not answering"):
        manager.probe_answer(CommandResult(1, offline))
    assert manager.probe_answer(CommandResult(0, "running\n")) == "systemd running"
    with pytest.raises(ManagerError, match="start limit refused it"):
        manager.restart_answer(SPEC, CommandResult(1, "Job for uw-daemon.service failed because the control process"))


def test_deploy_preflight_verdicts_per_unit() -> None:
    def props(name: str) -> dict[str, str]:
        return dict(state_of(name).props)

    assert unit_preflight(props("running"), "uw-daemon")[:2] == (True, False)
    assert unit_preflight(props("not_found"), "nosuch")[:2] == (False, True)
    ok, fatal, detail = unit_preflight(props("masked"), "uw-daemon")
    assert (ok, fatal) == (False, False) and "masked" in detail


# -- timers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "calendars"),
    [
        ("15 14 * * 1-5", ["Mon..Fri *-*-* 14:15:00 UTC"]),
        ("30 20 * * 5", ["Fri *-*-* 20:30:00 UTC"]),
        ("*/15 * * * *", ["*-*-* *:00,15,30,45:00 UTC"]),
        ("0 9-17/2 * * sat,sun", ["Sat,Sun *-*-* 09,11,13,15,17:00:00 UTC"]),
        ("0 0 1,15 * 1", ["*-*-01,15 00:00:00 UTC", "Mon *-*-* 00:00:00 UTC"]),  # cron: day OR weekday
        ("@weekly", ["Sun *-*-* 00:00:00 UTC"]),
        ("5 4 * jan-mar 0", ["Sun *-01..03-* 04:05:00 UTC"]),
    ],
)
def test_cron_schedules_become_calendar_expressions(cron: str, calendars: list[str]) -> None:
    assert on_calendar(cron) == calendars


def test_reboot_has_no_calendar() -> None:
    with pytest.raises(ScheduleError, match="timer cannot express it"):
        on_calendar("@reboot")


SAMPLES = ["15 14 * * 1-5", "30 20 * * 5", "*/20 3-5 * * *", "0 0 1,15 * 1", "7 1 * 2,8 *", "0 12 29 2 *"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("cron", SAMPLES)
def test_systemd_fires_the_timer_when_cron_would(cron: str) -> None:
    """systemd's own parser reads each expression, and its next elapses are cron's next fire times."""
    start = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.timezone.utc)  # a Monday
    base = start - dt.timedelta(seconds=30)  # systemd's next elapse is strictly after its base
    schedule, utc = CronSchedule.parse(cron), dt.timezone.utc
    expected: list[dt.datetime] = []
    moment = start
    while len(expected) < 6:
        fire = schedule.next_fire(moment, utc)
        assert fire is not None
        expected.append(fire)
        moment = fire + dt.timedelta(minutes=1)
    got: set[dt.datetime] = set()
    for calendar in on_calendar(cron):
        out = subprocess.run(
            ["systemd-analyze", "calendar", "--iterations=6", f"--base-time={base:%Y-%m-%d %H:%M:%S} UTC", calendar],
            capture_output=True,
            text=True,
            check=True,
            env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
        ).stdout
        stamps = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", out)
        assert stamps, out
        got |= {dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=utc) for s in stamps}
    assert sorted(got)[:6] == expected


def test_exec_lines_quote_as_systemd_reads_them() -> None:
    assert exec_quote("/usr/bin/python3") == "/usr/bin/python3"
    assert exec_quote("my check.py") == '"my check.py"'
    assert exec_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert exec_quote("100%$HOME") == '"100%%$$HOME"'  # no specifier, no variable expanded
    with pytest.raises(ScheduleError):
        exec_quote("two\nlines")


def test_the_timer_pair_runs_the_runner_as_the_cron_line_would() -> None:
    install = "/root/stock-bot/.guardian"
    units = render_units(
        app_dir="/root/stock-bot",
        schedules=[
            {
                "name": "pre_market",
                "schedule": "15 14 * * 1-5",
                "check": "pre_market_health_check.py",
                "log": "logs/pre_market.log",
            }
        ],
        runner_argv=lambda check: runner_argv("/usr/bin/python3", install, check),
        logrotate_argv=logrotate_argv(install),
    )
    assert sorted(units) == [
        "guardian-logrotate.service",
        "guardian-logrotate.timer",
        "guardian-pre-market.service",
        "guardian-pre-market.timer",
    ]
    timer = units["guardian-pre-market.timer"].splitlines()
    assert "OnCalendar=Mon..Fri *-*-* 14:15:00 UTC" in timer and "Persistent=true" in timer
    assert "Unit=guardian-pre-market.service" in timer and "WantedBy=timers.target" in timer
    service = units["guardian-pre-market.service"].splitlines()
    assert "Type=oneshot" in service and "WorkingDirectory=/root/stock-bot" in service
    assert (
        "ExecStart=/usr/bin/python3 -I -S /root/stock-bot/.guardian/guardian-runner.py --config "
        "/root/stock-bot/.guardian/config.json --runner cron --format text --check pre_market_health_check.py"
    ) in service
    assert "StandardOutput=append:/root/stock-bot/logs/pre_market.log" in service
    assert all(text.startswith("# Generated by Guardian's deploy") for text in units.values())
    assert unit_stem("friday_eow_audit") == "guardian-friday-eow-audit"


def test_a_log_path_a_timer_cannot_hold_is_refused() -> None:
    with pytest.raises(ScheduleError, match="without spaces"):
        render_units(
            app_dir="/root/stock bot",
            schedules=[],
            runner_argv=lambda check: [check],
            logrotate_argv=["logrotate"],
        )


def test_scheduler_is_a_validated_setting() -> None:
    assert validate_setting("scheduler", "systemd-timer") == "systemd-timer"
    with pytest.raises(SettingError, match="cron, systemd-timer"):
        validate_setting("scheduler", "anacron")
