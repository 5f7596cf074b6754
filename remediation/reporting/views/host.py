"""One host as both views show it: its facts, notices (who holds its lock, breakers, a hold,
warnings), checks, timeline, check output, locks, deploy's pre-flight and changes, collected
files and cron runs, in that order."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..records import (
    BreakerRecord,
    ChangeRecord,
    CheckRecord,
    CronRunRecord,
    DeferredRecord,
    FileRecord,
    HolderRecord,
    HoldRecord,
    HostRecord,
    LockRecord,
    PreflightRecord,
    VerifyRecord,
)
from ..report import HostReport, RunReport
from ..selfheal import clock_line, silence_line
from .excerpt import TAIL_LINES, OutputExcerpt, output_excerpt
from .labels import clock, exit_label, recap_reason, result_text, seconds, verify_line
from .timeline import TimelineRow, timeline

#: Words in a warning that make the host's notices a guard's business, not just warnings.
_GUARD_WORDS = re.compile(r"breaker|hold|incident|guard|quarantin|paused|suppress", re.IGNORECASE)


@dataclass(frozen=True)
class Notice:
    """Something about the host's state an operator should see: ``kind`` is ``holder`` (who
    holds its lock), ``breaker``, ``hold``, ``deferred`` (a restart put off, and its next try),
    ``unstable`` (what did not stay up after a restart), ``silent`` (missed cron runs), ``clock``
    (the host's clock is off) or ``warning``."""

    kind: str
    text: str


@dataclass(frozen=True)
class CheckSummary:
    """A health check at a glance: its exit code, state and, when it says more, its reason."""

    label: str
    exit: str
    state: str
    note: str


@dataclass(frozen=True)
class LockRow:
    name: str
    pid: str
    stale: bool
    reason: str

    @property
    def verdict(self) -> str:
        return "stale" if self.stale else "live"


@dataclass(frozen=True)
class PreflightRow:
    check: str
    result: str  # ok, failed, or warning (a failed check that is not fatal)
    detail: str


@dataclass(frozen=True)
class ChangeRow:
    action: str
    item: str
    diff: tuple[tuple[str, str], ...]  # (line, "+" / "-" / "")


@dataclass(frozen=True)
class FileRow:
    name: str
    path: str  # relative to the run folder
    size: str  # ``1,200`` or ``1,048,576 (tail)``
    sha256: str


@dataclass(frozen=True)
class ActionLine:
    """An action in a list (a cron run's): what, its result, why."""

    what: str
    result: str
    why: str

    @property
    def result_text(self) -> str:
        return result_text(self.result)


@dataclass(frozen=True)
class CronRow:
    run_id: str
    started_at: str
    outcome: str
    reason: str
    actions: tuple[ActionLine, ...]


@dataclass(frozen=True)
class HostPage:
    """Everything the views show about one host, in the order they show it."""

    name: str
    outcome: str
    facts: tuple[str, ...]  # address, transport, runner, agent version, start, duration, run
    reason: str
    notices_title: str
    notices: tuple[Notice, ...]
    checks: tuple[CheckSummary, ...]  # before and after, when the host was checked at all
    timeline: tuple[TimelineRow, ...]
    outputs: tuple[tuple[str, OutputExcerpt], ...]
    locks: tuple[LockRow, ...]
    preflight: tuple[PreflightRow, ...]
    changes: tuple[ChangeRow, ...]
    files: tuple[FileRow, ...]
    cron_runs: tuple[CronRow, ...]


def host_page(report: RunReport, host: HostReport, *, tail_lines: int = TAIL_LINES) -> HostPage:
    """The view of one host of ``report``; ``tail_lines`` bounds each check output's tail."""
    record = host.to_dict()
    notices = _notices(record)
    guardy = any(n.kind != "warning" or _GUARD_WORDS.search(n.text) for n in notices)
    checks = {"before": record["before"], "after": record["after"]}
    summaries = [_check_summary(w, c) for w, c in checks.items()] if any(checks.values()) else []
    verify = record.get("verify")
    if verify:
        summaries.append(verify_summary(verify))
    return HostPage(
        name=record["host"],
        outcome=record["outcome"],
        facts=_facts(record, report.run_id),
        reason=recap_reason(record),
        notices_title="breaker / hold / deferral / incident state" if guardy else "warnings",
        notices=notices,
        checks=tuple(summaries),
        timeline=tuple(timeline(record)),
        outputs=tuple(
            (f"check output ({which})", output_excerpt(check, tail_lines=tail_lines))
            for which, check in checks.items()
            if check and (check.get("tail") or check.get("matches"))
        ),
        locks=tuple(_lock_row(lock) for lock in record["locks"]),
        preflight=tuple(_preflight_row(c) for c in record.get("preflight") or []),
        changes=tuple(change_row(c) for c in record.get("changes") or []),
        files=tuple(_file_row(f) for f in record["files"]),
        cron_runs=tuple(_cron_row(run) for run in record.get("cron_runs") or []),
    )


def _facts(host: HostRecord, run_id: str) -> tuple[str, ...]:
    facts = [host["address"], host["transport"], host.get("runner", "")]
    if host.get("remote_version"):
        facts.append(f"agent {host.get('remote_version')}")
    if host.get("runner_code"):
        facts.append(f"{host.get('runner_code')} code")  # deploy's installed runner, or the code sent
    cpu = host.get("runner_cpu")
    if cpu is not None:
        facts.append(f"{cpu:.2f} CPU-s on the host")  # what the run cost the droplet
    if host.get("started_at"):
        facts.append(f"started {host.get('started_at')}")
    facts += [seconds(host["duration"]), f"run {run_id}"]
    return tuple(f for f in facts if f)


def _lock_row(lock: LockRecord) -> LockRow:
    pid = lock.get("pid")
    return LockRow(
        str(lock.get("name")), "-" if pid is None else str(pid), bool(lock.get("stale")), str(lock.get("reason", ""))
    )


def _file_row(file: FileRecord) -> FileRow:
    size = f"{file['size']:,}" + (" (tail)" if file["truncated"] else "")
    return FileRow(file["name"], file["path"], size, file["sha256"])


def _cron_row(run: CronRunRecord) -> CronRow:
    actions = tuple(
        ActionLine(f"{a.get('kind')} {a.get('target')}", str(a.get("result")), str(a.get("reason") or ""))
        for a in run.get("actions") or []
    )
    return CronRow(
        str(run.get("run_id") or ""),
        str(run.get("started_at") or ""),
        str(run.get("outcome") or "?"),
        str(run.get("reason") or ""),
        actions,
    )


def _check_summary(which: str, check: CheckRecord | None) -> CheckSummary:
    label = f"health check {which}"
    if not check:
        return CheckSummary(label, "", "", "")
    code = exit_label(check)
    reason = str(check.get("reason") or "")
    note = reason if reason and reason != f"exit code {code}" else ""
    if check.get("user"):
        note = "; ".join(x for x in (note, f"ran as {check.get('user')}") if x)
    return CheckSummary(label, f"exit {code}", str(check.get("state", "?")), note)


def verify_summary(verify: VerifyRecord) -> CheckSummary:
    """The verification after recovery, beside the checks before and after."""
    stable = verify.get("stable")
    state = "stable" if stable else "not stable" if stable is False else "?"
    return CheckSummary("verification", f"{len(verify.get('passes') or [])} check(s)", state, verify_line(verify))


def deferred_text(entry: DeferredRecord) -> str:
    """``restart of trading-bot deferred: safe_to_restart said no: exit 1: 3 orders in flight;
    next try: the scheduled run at 2026-12-03T14:15:00Z``."""
    return f"restart of {entry.get('service')} deferred: {entry.get('reason')}; next try: {entry.get('retry')}"


def _notices(host: HostRecord) -> tuple[Notice, ...]:
    notices: list[Notice] = []
    notices += [Notice("deferred", deferred_text(d)) for d in host.get("deferred") or []]
    notices += [Notice("unstable", f"not stable: {u.get('problem')}") for u in host.get("unstable") or []]
    if host.get("busy_holder"):
        notices.append(Notice("holder", holder_text(host.get("busy_holder") or {})))
    guards = host.get("guards") or {}
    for service, breaker in (guards.get("breakers") or {}).items():
        notices.append(Notice("breaker", breaker_text(service, breaker)))
    if guards.get("hold"):
        notices.append(Notice("hold", hold_text(guards.get("hold") or {})))
    verdict = host.get("self_heal") or {}
    if silence_line(verdict):
        notices.append(Notice("silent", silence_line(verdict)))
    if clock_line(verdict):
        notices.append(Notice("clock", clock_line(verdict)))
    notices += [Notice("warning", str(w)) for w in host.get("warnings") or []]
    return tuple(notices)


def holder_text(holder: HolderRecord) -> str:
    """Who holds a busy host's lock: ``lock held by cron, pid 812, run 2026…, since 2026-…``."""
    parts = [str(holder.get("runner") or "another run")]
    if holder.get("pid") is not None:
        parts.append(f"pid {holder.get('pid')}")
    if holder.get("run_id"):
        parts.append(f"run {holder.get('run_id')}")
    if holder.get("since_iso"):
        parts.append(f"since {holder.get('since_iso')}")
    return "lock held by " + ", ".join(parts)


def breaker_text(service: str, breaker: BreakerRecord) -> str:
    """A service's restart budget: ``breaker open for trading-bot: 3 restart(s) … (budget 3)``."""
    state = "OPEN" if breaker.get("open") else "closed"
    description = breaker.get("description")
    if not description:
        recent = breaker.get("recent")
        count = len(recent) if isinstance(recent, list) else recent
        description = f"{count} restart(s) in the window (budget {breaker.get('max_restarts', '?')})"
    return f"breaker {state} for {service}: {description}"


def hold_text(hold: HoldRecord) -> str:
    """``maintenance hold until 2026-03-02T15:00:00Z by ops: kernel upgrade``."""
    until = hold.get("until_iso") or clock(hold.get("until")) or "?"
    return f"maintenance hold until {until} by {hold.get('by') or '?'}: {hold.get('reason', '')}"


def _preflight_row(check: PreflightRecord) -> PreflightRow:
    result = "ok" if check.get("ok") else "failed" if check.get("fatal", True) else "warning"
    return PreflightRow(str(check.get("check")), result, str(check.get("detail", "")))


def change_row(change: ChangeRecord) -> ChangeRow:
    """A deploy change with its diff split into lines, each with its sign."""
    diff = str(change.get("diff") or "")
    lines = tuple((line, line[:1] if line[:1] in ("+", "-") else "") for line in diff.splitlines())
    return ChangeRow(str(change.get("action")), str(change.get("item")), lines)
