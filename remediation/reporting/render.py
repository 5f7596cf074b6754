"""Turn report data into something a person reads: live progress, the recap, per-host views.

Rendering never changes report data. Output captured from hosts is untrusted: control
characters and ANSI escapes are made visible before printing, so a check that prints escape
sequences cannot corrupt the operator's terminal.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..agent.outcomes import OK_OUTCOMES
from .report import HostReport, RunReport
from .views import TAIL_LINES, OutputExcerpt, OutputLine, output_excerpt, recap_reason, timeline

OUTCOME_STYLE = {
    "healthy": "green",
    "healed": "bold green",
    "still-degraded": "bold yellow",
    "still-unhealthy": "bold red",
    "degraded": "yellow",
    "unhealthy": "red",
    "unexpected": "bold magenta",
    "busy": "cyan",
    "failed": "bold red",
    "interrupted": "magenta",
    "unreachable": "bold red reverse",
    "host-key-rejected": "bold red reverse",
    "pending": "dim",
    "changed": "bold green",
    "unchanged": "green",
    "would-change": "yellow",
    "removed": "bold green",
    "preflight-failed": "bold red",
    "collected": "green",
    "held": "cyan",
    "released": "green",
    "skipped": "yellow",
}
#: The console width when no terminal is attached: wide enough that no table row wraps.
PIPE_WIDTH = 1000
EXIT_CODES_HELP = (
    "0: every host ok; 2: a host needs attention; 4: a host unreachable or its key rejected; 130: interrupted"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """Make control characters (ANSI escapes included) visible instead of interpreting them."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def output_console(*, stderr: bool = False) -> Console:
    """The console a command prints its tables to.

    On a terminal, the terminal's width (and cells fold rather than being cut, see
    :func:`fold_cells`). Anywhere else (piped, redirected to a file, cron, CI) Rich would assume
    80 columns and wrap every row: unless ``COLUMNS`` says otherwise, the width is then
    unbounded in practice, so each row stays on one line, whole, for grep and for the record.
    """
    console = Console(stderr=stderr)
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH)


def fold_cells(table: Table, *, keep_whole: Sequence[int] = ()) -> Table:
    """Make ``table`` complete at any width: long cells fold onto more lines instead of ending in
    "…", and the columns in ``keep_whole`` (outcomes, names) are the last to be narrowed, so
    they fold only when nothing else can give way. Returns the table."""
    for index, column in enumerate(table.columns):
        column.overflow = "fold"
        if index in keep_whole:
            column.no_wrap = True
    return table


def outcome_text(outcome: str) -> Text:
    return Text(outcome, style=OUTCOME_STYLE.get(outcome, ""))


def _state(check: dict[str, Any] | None) -> str:
    if not check:
        return "-"
    code = check.get("exit_code")
    return f"{check.get('state', '?')} ({'timeout' if check.get('timed_out') else code})"


def action_summary(action: dict[str, Any]) -> str:
    mark = {"ok": "✓", "failed": "✗", "skipped": "-", "planned": "?", "blocked": "✗ BLOCKED"}.get(
        str(action.get("result")), ""
    )
    return f"{action.get('kind')} {action.get('target')} {mark}".strip()


def recap_table(report: RunReport) -> Table:
    title = f"Guardian {report.command} {report.run_id}" + (" (dry run)" if report.options.get("dry_run") else "")
    table = Table(title=title, expand=False)
    table.add_column("host", style="bold")
    table.add_column("before")
    table.add_column("actions")
    table.add_column("after")
    table.add_column("outcome")
    table.add_column("time", justify="right")
    for host in report.hosts:
        if host.actions:
            actions = ", ".join(action_summary(a) for a in host.actions)
        elif host.plan and host.plan.get("actions"):
            actions = ", ".join(f"would {a['kind']} {a['target']}" for a in host.plan["actions"])
        else:
            actions = "-"
        table.add_row(
            host.host,
            _state(host.before),
            clean(actions),
            _state(host.after),
            outcome_text(host.outcome),
            f"{host.duration:.1f}s",
        )
    return fold_cells(table, keep_whole=(4,))


def deploy_table(report: RunReport) -> Table:
    title = f"Guardian deploy {report.run_id}" + (" (dry run)" if report.options.get("dry_run") else "")
    table = Table(title=title)
    for column in ("host", "outcome", "changes", "pre-flight", "time"):
        table.add_column(column)
    for host in report.hosts:
        changed = [c for c in host.changes if c.get("action") != "unchanged"]
        changes = "\n".join(f"{c['action']} {c['item']}" for c in changed) or ("-" if host.changes else "")
        failed = [f"{c['check']}: {c['detail']}" for c in host.preflight if not c.get("ok")]
        preflight = "\n".join(failed) if failed else ("ok" if host.preflight else "")
        table.add_row(host.host, outcome_text(host.outcome), clean(changes), clean(preflight), f"{host.duration:.1f}s")
    return fold_cells(table, keep_whole=(1,))


def diffs_block(report: RunReport) -> RenderableType:
    """The crontab and config diffs of a deploy, per host."""
    text = Text()
    for host in report.hosts:
        for change in host.changes:
            if change.get("diff"):
                text.append(f"{host.host}: {change['item']}\n", style="bold")
                for line in str(change["diff"]).splitlines():
                    style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
                    text.append(clean(line) + "\n", style=style)
    return text


def collect_table(report: RunReport) -> Table:
    table = Table(title=f"Guardian collect {report.run_id}")
    for column in ("host", "outcome", "cron runs", "last cron run", "files"):
        table.add_column(column)
    for host in report.hosts:
        last = host.cron_runs[0] if host.cron_runs else None
        last_text = f"{last['run_id']}: {last['outcome']}" if last else "-"
        table.add_row(
            host.host, outcome_text(host.outcome), str(len(host.cron_runs)), clean(last_text), str(len(host.files))
        )
    return fold_cells(table, keep_whole=(1,))


def reasons_block(report: RunReport) -> RenderableType:
    """One line per host that is not ok (why: unreachable, busy, ...), was healed (what was
    done) or had a restart blocked by its breaker; healthy hosts need no line."""
    lines = Text()
    for host in report.hosts:
        reason = recap_reason(host)
        shown = host.outcome not in OK_OUTCOMES or host.outcome == "healed" or "breaker open" in reason
        if shown and reason:
            lines.append(f"{host.host}: ", style="bold")
            lines.append(clean(reason) + "\n")
    return lines


def run_view(report: RunReport, report_dir: str = "") -> RenderableType:
    if report.command == "deploy":
        parts: list[RenderableType] = [deploy_table(report), diffs_block(report), reasons_block(report)]
    elif report.command == "collect":
        parts = [collect_table(report), reasons_block(report)]
    else:
        parts = [recap_table(report), reasons_block(report)]
    for incident in report.incidents:
        verb = "acted anyway (--force)" if incident.get("forced") else "no restarts done; --force to act"
        parts.append(
            Text(
                f"COMMON-CAUSE INCIDENT: {incident['signature']} on {len(incident['hosts'])} of "
                f"{incident['selected']} hosts (> {incident['threshold_percent']:g}%): "
                f"{', '.join(incident['hosts'])}; {verb}",
                style="bold red",
            )
        )
    if report.stopped_reason:
        parts.append(Text(f"ROLLING RECOVERY STOPPED: {report.stopped_reason}", style="bold red"))
    footer = f"exit code {report.exit_code} ({EXIT_CODES_HELP})"
    if report.interrupted:
        footer = "INTERRUPTED by the operator; unfinished hosts are marked interrupted. " + footer
    if report_dir:
        footer += f"\nreport: {report_dir}/index.html"
    parts.append(Text(footer, style="dim"))
    return Group(*parts)


def host_view(report: RunReport, host: HostReport, *, tail_lines: int = TAIL_LINES) -> RenderableType:
    """One host: timeline of phases and actions with reasons, each check's matched lines and
    output tail, files."""
    head = Text()
    head.append(f"{host.host} ", style="bold")
    head.append(f"({host.address}, {host.transport}, run {report.run_id}) ")
    head.append_text(outcome_text(host.outcome))
    if recap_reason(host):
        head.append(f"\n{clean(recap_reason(host))}")
    timeline = Table(title="timeline", show_edge=False, expand=False)
    timeline.add_column("when (UTC)")
    timeline.add_column("what")
    timeline.add_column("result / reason")
    for when, what, detail in _timeline_rows(host):
        timeline.add_row(_clock(when), clean(what), clean(detail))
    parts: list[RenderableType] = [head, fold_cells(timeline, keep_whole=(0,))]
    for label, check in (("check output (before)", host.before), ("check output (after)", host.after)):
        if check and (check.get("tail") or check.get("matches")):
            parts.append(output_block(label, output_excerpt(check, tail_lines=tail_lines)))
    if host.files:
        files = Table(title="collected files", show_edge=False)
        files.add_column("file")
        files.add_column("size", justify="right")
        files.add_column("sha256")
        for f in host.files:
            files.add_row(f.path, f"{f.size}{' (tail)' if f.truncated else ''}", f.sha256)
        parts.append(fold_cells(files))
    if host.cron_runs:
        runs = Table(title="cron runs on the host (newest first)", show_edge=False)
        runs.add_column("run")
        runs.add_column("outcome")
        runs.add_column("actions")
        for run in host.cron_runs:
            actions = ", ".join(f"{a.get('kind')} {a.get('target')}: {a.get('result')}" for a in run.get("actions", []))
            runs.add_row(str(run.get("run_id")), outcome_text(str(run.get("outcome"))), clean(actions or "-"))
        parts.append(fold_cells(runs, keep_whole=(1,)))
    if host.busy_holder:
        parts.append(Text(f"lock holder: {host.busy_holder}"))
    for warning in host.warnings:
        parts.append(Text(f"warning: {clean(warning)}", style="yellow"))
    return Group(*parts)


def _output_line(line: OutputLine) -> str:
    more = f" [{line.cut:,} more characters not shown]" if line.cut else ""
    return clean(line.text) + more


def output_block(label: str, excerpt: OutputExcerpt) -> RenderableType:
    """A check's output: the lines that matched a signature (with their line numbers) first,
    then a bounded tail that says how much it leaves out, so a flood never buries the signal."""
    parts: list[RenderableType] = []
    size = f" — {excerpt.output_bytes:,} bytes of output" if excerpt.output_bytes else ""
    parts.append(Text(f"{label}{size}", style="bold"))
    if excerpt.matched:
        matched = Table(title="matched lines", title_justify="left", show_edge=False, expand=False)
        matched.add_column("line", justify="right", no_wrap=True)
        matched.add_column("signature")
        matched.add_column("output")
        for line in excerpt.matched:
            matched.add_row(
                str(line.line_no) if line.line_no is not None else "-",
                clean(", ".join(f"{name} /{pattern}/" for name, pattern in zip(line.signatures, line.patterns))),
                _output_line(line),
            )
        parts.append(fold_cells(matched, keep_whole=(0,)))
    if excerpt.tail:
        body = Text()
        if excerpt.omitted_note():
            body.append(excerpt.omitted_note() + "\n", style="dim")
        for index, line in enumerate(excerpt.tail):
            body.append(_output_line(line), style="bold yellow" if line.signatures else "")
            if index < len(excerpt.tail) - 1:
                body.append("\n")
        parts.append(Text(excerpt.tail_title()))  # not the panel's title: a title is cut to the panel's width
        parts.append(Panel(body, expand=False))
    return Group(*parts)


def _timeline_rows(host: HostReport) -> list[tuple[float | None, str, str]]:
    """(when, what, result / reason) for each entry of the shared timeline, in its order."""
    rows: list[tuple[float | None, str, str]] = []
    for entry in timeline(host):
        record = entry.record
        if entry.kind == "phase":
            rows.append((entry.when, f"phase {record.get('phase')}", ""))
        elif entry.kind == "check":
            rows.append((None, f"check before: {_state(host.before)}", ", ".join(host.matched_signatures)))
        elif entry.kind == "note":
            rows.append((None, "note", entry.text))
        elif entry.kind == "action":
            result = f"{record.get('result')}: {record.get('detail', '')} — why: {record.get('reason', '')}"
            rows.append((entry.when, f"{record.get('kind')} {record.get('target')}", result))
        elif entry.kind == "planned":
            rows.append((None, f"(planned) {record.get('kind')} {record.get('target')}", str(record.get("reason", ""))))
        elif entry.kind == "after":
            rows.append((None, f"check after: {_state(host.after)}", ""))
    return rows


def inventory_view(name: str, groups: Sequence[str], protected: bool, rows: Sequence[tuple[str, str, str]]) -> Table:
    """One host's effective settings with the source of each (``invoke inventory``)."""
    title = f"{name}  groups: {', '.join(groups) or '-'}" + ("  [protected]" if protected else "")
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("setting")
    table.add_column("value")
    table.add_column("from", style="dim")
    for key, value, source in rows:
        table.add_row(key, clean(value), clean(source))
    return fold_cells(table)


def _clock(ts: Any) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(float(ts))) if ts else ""


def to_text(renderable: RenderableType, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


class ProgressView:
    """Each host's current phase, live on a terminal; one line per finished host otherwise."""

    def __init__(self, console: Console, hosts: list[str]) -> None:
        self.console = console
        self.phases = dict.fromkeys(hosts, "queued")
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.live: Live | None = None

    def update(self, host: str, phase: str) -> None:
        with self.lock:
            self.phases[host] = phase
            if self.live is not None:
                self.live.update(self._table())
            elif phase.startswith("done"):
                self.console.print(f"{host}: {phase}", highlight=False)

    def notice(self, message: str) -> None:
        """A run-wide message (e.g. what Ctrl-C does now), printed above the live view."""
        with self.lock:
            self.console.print(Text(message, style="bold yellow"), highlight=False)

    def _table(self) -> Table:
        table = Table(show_header=True, expand=False, title=f"{time.monotonic() - self.started:.1f}s")
        table.add_column("host")
        table.add_column("phase")
        for host, phase in self.phases.items():
            style = OUTCOME_STYLE.get(phase.removeprefix("done: "), "") if phase.startswith("done") else ""
            table.add_row(host, Text(phase, style=style))
        return table

    @contextmanager
    def running(self) -> Iterator[ProgressView]:
        if self.console.is_terminal and len(self.phases) <= 60:
            with Live(self._table(), console=self.console, refresh_per_second=4, transient=True) as live:
                self.live = live
                try:
                    yield self
                finally:
                    self.live = None
        else:
            yield self
