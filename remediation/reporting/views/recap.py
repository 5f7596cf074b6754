"""The recap of a run: the columns each command's recap has, a row per host with its cells,
run-wide alerts (common-cause incidents, an early stop) and the exit code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...agent.outcomes import OK_OUTCOMES
from ..records import HostRecord, IncidentRecord, SelfHealRecord
from ..report import RunReport
from ..selfheal import silence_line
from .host import ChangeRow, change_row, deferred_text
from .labels import EXIT_CODES_HELP, Span, action_summary, outcome_counts, recap_reason, seconds, state_label

#: The recap's columns, per command (their names are their headings).
RECAP_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "deploy": ("host", "outcome", "changes", "pre-flight", "time"),
    "collect": ("host", "outcome", "cron runs", "last cron run", "self-heal", "files"),
    "status": ("host", "outcome", "last cron run", "self-heal", "next due", "runner", "guards"),
}
DEFAULT_COLUMNS = ("host", "before", "actions", "after", "outcome", "time")
#: Columns of numbers (right-aligned), and columns whose items go one per line.
NUMERIC_COLUMNS = frozenset({"time", "cron runs", "files"})
LINE_COLUMNS = frozenset({"changes", "pre-flight", "guards"})
INTERRUPTED_NOTE = "INTERRUPTED by the operator; unfinished hosts are marked interrupted."


@dataclass(frozen=True)
class RecapRow:
    """One host in the recap: a cell per column (``host`` and ``outcome`` are the renderers' own:
    a link, a coloured outcome), the reason line, and whether the reason needs a line of its own
    under a table that has no room for it (not ok, healed, or a restart blocked)."""

    host: str
    outcome: str
    cells: Mapping[str, tuple[Span, ...]]
    reason: str
    noted: bool
    warned: bool


@dataclass(frozen=True)
class Recap:
    """A run at a glance: title, columns, a row per host, run-wide alerts and the exit code."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[RecapRow, ...]
    counts: tuple[tuple[str, int], ...]
    alerts: tuple[str, ...]  # common-cause incidents, a rolling recovery's early stop
    interrupted: str  # what an interrupted run says, or nothing
    footer: str  # the exit code and what the codes mean


def run_title(report: RunReport) -> str:
    """``Guardian premarket 20260302T133001Z-7c1e (dry run)``."""
    return f"Guardian {report.command} {report.run_id}" + (" (dry run)" if report.options.get("dry_run") else "")


def incident_line(incident: IncidentRecord) -> str:
    """A common-cause incident in one line, with what was done about it."""
    verb = "acted anyway (--force)" if incident.get("forced") else "no restarts done; --force to act"
    return (
        f"COMMON-CAUSE INCIDENT: {incident['signature']} on {len(incident['hosts'])} of "
        f"{incident['selected']} hosts (> {incident['threshold_percent']:g}%): "
        f"{', '.join(incident['hosts'])}; {verb}"
    )


def recap(report: RunReport) -> Recap:
    """The recap of ``report``, for the terminal and the page alike."""
    record = report.to_dict()
    columns = RECAP_COLUMNS.get(report.command, DEFAULT_COLUMNS)
    rows = tuple(_recap_row(host, columns) for host in record["hosts"])
    alerts = [incident_line(i) for i in record["incidents"]]
    if report.stopped_reason:
        alerts.append(f"ROLLING RECOVERY STOPPED: {report.stopped_reason}")
    deferred = "RESTART WOULD BE DEFERRED" if report.options.get("dry_run") else "RESTART DEFERRED"
    alerts += [
        f"{deferred} on {h['host']}: {deferred_text(d)}" for h in record["hosts"] for d in h.get("deferred") or []
    ]
    alerts += [
        f"SELF-HEAL SILENT on {h['host']}: {silence_line(h.get('self_heal') or {})}"
        for h in record["hosts"]
        if silence_line(h.get("self_heal") or {})
    ]
    return Recap(
        title=run_title(report),
        columns=columns,
        rows=rows,
        counts=tuple(outcome_counts(h.outcome for h in report.hosts)),
        alerts=tuple(alerts),
        interrupted=INTERRUPTED_NOTE if report.interrupted else "",
        footer=f"exit code {report.exit_code} ({EXIT_CODES_HELP})",
    )


def _recap_row(host: HostRecord, columns: Sequence[str]) -> RecapRow:
    reason = recap_reason(host)
    outcome = host["outcome"]
    cells = {name: _recap_cell(host, name) for name in columns if name not in ("host", "outcome")}
    noted = bool(reason) and (outcome not in OK_OUTCOMES or outcome == "healed" or "breaker open" in reason)
    return RecapRow(host["host"], outcome, cells, reason, noted, bool(host.get("warnings")))


def _recap_cell(host: HostRecord, column: str) -> tuple[Span, ...]:
    cron_runs = host.get("cron_runs") or []
    if column == "before":
        return (Span(state_label(host["before"])),)
    if column == "after":
        return (Span(state_label(host["after"])),)
    if column == "time":
        return (Span(seconds(host["duration"])),)
    if column == "actions":
        return _recap_actions(host) or (Span("-"),)
    if column == "changes":
        changes = host.get("changes") or []
        changed = [Span(f"{c.get('action')} {c.get('item')}") for c in changes if c.get("action") != "unchanged"]
        return tuple(changed) or ((Span("-"),) if changes else ())
    if column == "pre-flight":
        checks = host.get("preflight") or []
        failed = [  # a failed check that is not fatal (an optional schedule's script) is a warning
            Span(f"{c.get('check')}: {c.get('detail')}", result="failed" if c.get("fatal", True) else "")
            for c in checks
            if not c.get("ok")
        ]
        return tuple(failed) or ((Span("ok", result="ok"),) if checks else ())
    if column == "cron runs":
        return (Span(str(len(cron_runs))),)
    if column == "last cron run":
        last = cron_runs[0] if cron_runs else None
        if last is None:
            return (Span("-"),)
        return (Span(f"{last.get('run_id')}: {last.get('outcome')}"),)
    verdict = host.get("self_heal") or {}
    if column == "self-heal":
        return (_self_heal_cell(verdict),)
    if column == "next due":
        return (Span(str(verdict.get("next_due") or "-")),)
    if column == "runner":
        if not verdict.get("deployed"):
            return (Span("not deployed", result="failed"),)
        installed = f"{verdict.get('version')} ({verdict.get('bundle')})"
        current = verdict.get("controller_bundle")
        if current and current != verdict.get("bundle"):
            return (Span(f"{installed}, controller has {current}: run deploy", result="failed"),)
        return (Span(installed),)
    if column == "guards":
        return _guard_cells(host)
    if column == "files":
        return (Span(str(len(host["files"]))),)
    raise ValueError(f"no recap column {column!r}")


def _self_heal_cell(verdict: SelfHealRecord) -> Span:
    if not verdict:
        return Span("-")
    if verdict.get("silent"):
        since = verdict["silent"][0].get("last_run") or "never"
        return Span(f"SILENT since {since}", result="failed")
    if not verdict.get("deployed"):
        return Span("not deployed")
    return Span("ok", result="ok")


def _guard_cells(host: HostRecord) -> tuple[Span, ...]:
    guards = host.get("guards") or {}
    cells = [
        Span(f"breaker {'OPEN' if b.get('open') else 'closed'} {service}", result="failed" if b.get("open") else "")
        for service, b in (guards.get("breakers") or {}).items()
    ]
    if guards.get("hold"):
        cells.append(Span(f"hold until {(guards.get('hold') or {}).get('until_iso', '?')}", result="blocked"))
    return tuple(cells) or (Span("-"),)


def _recap_actions(host: HostRecord) -> tuple[Span, ...]:
    if host["actions"]:
        return tuple(
            Span(action_summary(a.get("kind"), a.get("target"), str(a.get("result"))), result=str(a.get("result")))
            for a in host["actions"]
        )
    planned = (host["plan"] or {}).get("actions") or []
    return tuple(Span(f"would {a.get('kind')} {a.get('target')}", result="planned") for a in planned)


def deploy_diffs(report: RunReport) -> list[tuple[str, ChangeRow]]:
    """Every change of a deploy that has a diff, with its host, in order."""
    return [
        (host.host, row)
        for host in report.hosts
        for row in (change_row(c) for c in host.to_dict().get("changes") or [])
        if row.diff
    ]
