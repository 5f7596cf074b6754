"""Missed-run detection: did cron run Guardian when its schedule said it would?

A host whose crontab entry was lost, whose cron is stopped or whose clock is off looks exactly
like a host with nothing to report. From the schedule that deploy installed and the start times
of the cron runs' journals, this says whether the newest fire time that is due (older than the
grace period) was served by a run, and if not, since when the host has been silent.
Pure functions of plain data.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional, Sequence

from .cronexpr import CronSchedule, zone
from .records import record

#: A run that starts this long before its fire time still counts (clocks are not exact).
EARLY_SLACK = 60.0
#: How many past fire times to look at.
LOOKBACK = 5


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> Optional[dt.datetime]:
    """``2026-12-02T14:15:00Z`` (as journals write it) to an aware datetime; None if unreadable."""
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except (TypeError, ValueError):
        return None


@record(frozen=True)
class Silence:
    """One schedule's missed fire times on one host."""

    schedule: str  # the schedule's name (deploy's ``schedules[].name``)
    expression: str
    last_run: Optional[str]  # start of the newest cron run seen, ISO UTC
    expected: List[str]  # due fire times with no run, oldest first, ISO UTC

    def describe(self) -> str:
        since = self.last_run or "(no cron run seen)"
        return f"self-heal silent since {since} (expected at {', '.join(self.expected)}; schedule {self.schedule})"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "schedule": self.schedule,
            "expression": self.expression,
            "last_run": self.last_run,
            "expected": list(self.expected),
            "message": self.describe(),
        }


def missed_runs(
    name: str,
    expression: str,
    *,
    tz: str,
    run_starts: Sequence[dt.datetime],
    now: dt.datetime,
    grace: float = 300.0,
    since: Optional[dt.datetime] = None,
) -> Optional[Silence]:
    """The schedule's silence, or None when its newest due fire time was served by a run.

    Args:
        name: the schedule's name, for the message.
        expression: its five-field cron expression (or ``@daily`` and the like).
        tz: the host's time zone, which cron fires in (``UTC`` on most droplets).
        run_starts: when this schedule's cron runs started (from their journals).
        now: the controller's "now" (injected, so tests need no wall clock).
        grace: how long after a fire time a run may start (cron is late on a busy host).
        since: fire times before this (e.g. the deploy) are not expected.
    """
    schedule = CronSchedule.parse(expression)
    due = schedule.fires_before(now - dt.timedelta(seconds=grace), zone(tz), LOOKBACK)
    if since is not None:
        due = [fire for fire in due if fire >= since]
    if not due:
        return None

    def served(fire: dt.datetime) -> bool:
        return any(
            fire - dt.timedelta(seconds=EARLY_SLACK) <= run <= fire + dt.timedelta(seconds=grace) for run in run_starts
        )

    if served(due[0]):
        return None
    last = max(run_starts) if run_starts else None
    missed = [fire for fire in due if (last is None or fire > last) and not served(fire)]
    return Silence(name, schedule.expression, _iso(last) if last else None, [_iso(f) for f in reversed(missed)])
