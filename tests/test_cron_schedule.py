"""Cron fire times (five fields, names, steps, day-of-month OR day-of-week, specials, DST) and
missed-run detection, with injected clocks only."""

from __future__ import annotations

import datetime as dt

import pytest

from remediation.agent.cronblock import ScheduleError
from remediation.agent.cronexpr import CronSchedule, zone
from remediation.agent.missed import missed_runs

UTC = dt.timezone.utc
NY = "America/New_York"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(moments: list[dt.datetime]) -> list[str]:
    return [m.strftime("%Y-%m-%d %H:%M") for m in moments]


def test_the_seeds_premarket_schedule_fires_on_weekdays_only() -> None:
    schedule = CronSchedule.parse("15 14 * * 1-5")
    # Monday 2026-11-30 10:00 UTC: the previous fires are Fri, Thu, Wed (not the weekend).
    before = schedule.fires_before(at("2026-11-30T10:00:00"), UTC, 3)
    assert iso(before) == ["2026-11-27 14:15", "2026-11-26 14:15", "2026-11-25 14:15"]
    assert iso([schedule.next_fire(at("2026-11-28T00:00:00"), UTC)]) == ["2026-11-30 14:15"]  # type: ignore[list-item]


def test_names_steps_lists_and_specials() -> None:
    assert CronSchedule.parse("*/20 9-10 * * mon-fri").minutes == {0, 20, 40}
    assert CronSchedule.parse("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert CronSchedule.parse("0 0 1 jan,jul *").months == {1, 7}
    daily = CronSchedule.parse("@daily")
    assert iso(daily.fires_before(at("2026-12-02T12:00:00"), UTC, 1)) == ["2026-12-02 00:00"]
    assert CronSchedule.parse("@reboot").fires_before(at("2026-12-02T12:00:00"), UTC, 3) == []
    with pytest.raises(ScheduleError):
        CronSchedule.parse("61 * * * *")


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    schedule = CronSchedule.parse("0 12 1 * fri")  # the 1st, or any Friday
    fires = schedule.fires_before(at("2026-12-05T00:00:00"), UTC, 3)
    assert iso(fires) == ["2026-12-04 12:00", "2026-12-01 12:00", "2026-11-27 12:00"]


def test_new_york_morning_run_keeps_its_wall_time_across_both_dst_changes() -> None:
    schedule = CronSchedule.parse("15 9 * * 1-5")  # 09:15 in New York on weekdays
    ny = zone(NY)
    # Spring forward on Sunday 2026-03-08: Friday 09:15 EST = 14:15 UTC, Monday 09:15 EDT = 13:15 UTC.
    assert iso(schedule.fires_before(at("2026-03-09T20:00:00"), ny, 2)) == ["2026-03-09 13:15", "2026-03-06 14:15"]
    # Fall back on Sunday 2026-11-01: Friday 09:15 EDT = 13:15 UTC, Monday 09:15 EST = 14:15 UTC.
    assert iso(schedule.fires_before(at("2026-11-02T20:00:00"), ny, 2)) == ["2026-11-02 14:15", "2026-10-30 13:15"]


def test_a_skipped_wall_time_never_fires_and_a_repeated_one_fires_once() -> None:
    ny = zone(NY)
    # 02:30 does not exist in New York on 2026-03-08.
    spring = CronSchedule.parse("30 2 * * *").fires_before(at("2026-03-09T12:00:00"), ny, 2)
    assert iso(spring) == ["2026-03-09 06:30", "2026-03-07 07:30"]
    # 01:30 happens twice on 2026-11-01 (EDT, then EST): counted once, at its first occurrence.
    autumn = CronSchedule.parse("30 1 * * *").fires_before(at("2026-11-01T12:00:00"), ny, 2)
    assert iso(autumn) == ["2026-11-01 05:30", "2026-10-31 05:30"]


def test_unknown_time_zone_is_a_clear_error() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")


def test_a_served_schedule_is_not_silent() -> None:
    runs = [at("2026-11-27T14:15:02"), at("2026-11-30T14:15:01")]
    assert missed_runs("pre_market", "15 14 * * 1-5", tz="UTC", run_starts=runs, now=at("2026-11-30T15:00:00")) is None


def test_missed_fires_are_named_since_the_last_run() -> None:
    runs = [at("2026-11-26T14:15:03")]  # Thursday's run; Friday's and Monday's never happened
    silence = missed_runs("pre_market", "15 14 * * 1-5", tz="UTC", run_starts=runs, now=at("2026-11-30T15:00:00"))
    assert silence is not None
    assert silence.last_run == "2026-11-26T14:15:03Z"
    assert silence.expected == ["2026-11-27T14:15:00Z", "2026-11-30T14:15:00Z"]
    assert silence.describe().startswith("self-heal silent since 2026-11-26T14:15:03Z (expected at 2026-11-27T14:15:00Z")


def test_grace_period_and_deploy_time() -> None:
    # Monday's fire was 3 minutes ago: within the 5-minute grace, not missed yet.
    runs = [at("2026-11-27T14:15:00")]
    assert missed_runs("p", "15 14 * * 1-5", tz="UTC", run_starts=runs, now=at("2026-11-30T14:18:00")) is None
    # Deployed on Monday at noon: the fires before it are not expected.
    deployed = at("2026-11-30T12:00:00")
    assert missed_runs("p", "15 14 * * 1-5", tz="UTC", run_starts=[], now=at("2026-11-30T13:00:00"), since=deployed) is None
    silence = missed_runs("p", "15 14 * * 1-5", tz="UTC", run_starts=[], now=at("2026-11-30T16:00:00"), since=deployed)
    assert silence is not None and silence.last_run is None and silence.expected == ["2026-11-30T14:15:00Z"]
