"""Is a droplet still healing itself? The controller's verdict on a host's cron runs.

From what a run brings home (deploy's manifest: the schedules cron runs and when they last
changed; the host's zone and clock; the cron runs' journals) and the controller's clock, this
says for each schedule whether its newest due fire time was served by a cron run, flags
``self-heal silent since T (expected at T1, T2)`` when not, and gives the next fire time. The
controller's clock is the reference: a host whose clock is off is flagged as such too. Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ..agent.cronblock import ScheduleError
from ..agent.cronexpr import CronSchedule, zone
from ..agent.missed import missed_runs, parse_iso

#: A host clock further off than this (seconds) from the controller's is flagged.
CLOCK_SKEW_LIMIT = 120.0


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def assess(
    facts: Mapping[str, Any] | None,
    cron_runs: Sequence[Mapping[str, Any]],
    *,
    now: float,
    grace: float,
    controller_bundle: str = "",
) -> dict[str, Any]:
    """The self-heal verdict of one host (what ``report.json`` keeps as ``self_heal``).

    Args:
        facts: the runner's ``self_heal`` (``deployed`` manifest or None, ``tz``, ``host_time``).
        cron_runs: the cron runs' journal summaries, newest first.
        now: the controller's clock when the facts arrived (Unix time).
        grace: how long after a fire time its run may start before it counts as missed.
        controller_bundle: the digest of the runner the controller would deploy now.
    """
    if not facts:
        return {}
    verdict: dict[str, Any] = {"deployed": bool(facts.get("deployed")), "tz": str(facts.get("tz") or "UTC")}
    if facts.get("problem"):
        verdict["problem"] = str(facts["problem"])
    host_time = facts.get("host_time")
    if isinstance(host_time, (int, float)):
        verdict["clock_skew"] = round(float(host_time) - now, 1)
    last = cron_runs[0] if cron_runs else None
    verdict["last_cron_run"] = (
        {k: last.get(k) for k in ("run_id", "started_at", "outcome", "check")} if last is not None else None
    )
    manifest = facts.get("deployed")
    if not isinstance(manifest, Mapping):
        verdict["silent"] = []
        return verdict
    verdict["version"] = str(manifest.get("version", "?"))
    verdict["bundle"] = str(manifest.get("bundle", "?"))
    verdict["scheduler"] = str(manifest.get("scheduler", "cron"))
    if verdict["scheduler"] == "systemd-timer":
        verdict["tz"] = "UTC"  # deploy writes the timers' OnCalendar= in UTC, whatever the host's zone
    if controller_bundle:
        verdict["controller_bundle"] = controller_bundle
    moment = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    since = parse_iso(str(manifest.get("changed_at", "")))
    silent: list[dict[str, Any]] = []
    upcoming: list[dt.datetime] = []
    for entry in manifest.get("schedules") or []:
        if not isinstance(entry, Mapping):
            continue
        name, expression, check = str(entry.get("name")), str(entry.get("schedule")), str(entry.get("check"))
        starts = [
            started
            for run in cron_runs
            if str(run.get("check")) in (check, "?")
            for started in [parse_iso(str(run.get("started_at", "")))]
            if started is not None
        ]
        newest = parse_iso(str((facts.get("last_runs") or {}).get(check, "")))
        if newest is not None:  # a rare schedule's run, older than the journals brought home
            starts.append(newest)
        try:
            silence = missed_runs(
                name, expression, tz=verdict["tz"], run_starts=starts, now=moment, grace=grace, since=since
            )
            fire = CronSchedule.parse(expression).next_fire(moment, zone(verdict["tz"]))
        except (ScheduleError, ValueError) as exc:
            verdict.setdefault("problems", []).append(f"schedule {name}: {exc}")
            continue
        if fire is not None:
            upcoming.append(fire)
        if silence is not None:
            silent.append(silence.to_dict())
    verdict["silent"] = silent
    verdict["next_due"] = _iso(min(upcoming)) if upcoming else None
    return verdict


def silence_line(verdict: Mapping[str, Any]) -> str:
    """The operator's line for a silent host, or "" when its cron runs came as scheduled."""
    silent = verdict.get("silent") or []
    if not silent:
        return ""
    return "; ".join(str(s.get("message")) for s in silent)


def clock_line(verdict: Mapping[str, Any]) -> str:
    """A warning when the host's clock is off (cron fires by it), or ""."""
    skew = verdict.get("clock_skew")
    if isinstance(skew, (int, float)) and abs(skew) > CLOCK_SKEW_LIMIT:
        return (
            f"host clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the controller's: cron fires by it"
        )
    return ""


def is_silent(verdict: Mapping[str, Any] | None) -> bool:
    return bool(verdict and verdict.get("silent"))
