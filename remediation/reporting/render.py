"""Turn report data into something a person reads: live progress, the recap, per-host views.

Rendering never changes report data. Output captured from hosts is untrusted: control
characters and ANSI escapes are made visible before printing, so a check that prints escape
sequences cannot corrupt the operator's terminal.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .report import HostReport, RunReport
from .views.excerpt import TAIL_LINES, OutputExcerpt, OutputLine
from .views.host import ActionLine, host_page
from .views.labels import Span, clean, counts_label, result_text
from .views.recap import LINE_COLUMNS, NUMERIC_COLUMNS, Recap, deploy_diffs, recap
from .views.timeline import TimelineRow

OUTCOME_STYLE = {
    "healthy": "green",
    "healed": "bold green",
    "still-degraded": "bold yellow",
    "still-unhealthy": "bold red",
    "degraded": "yellow",
    "unhealthy": "red",
    "unexpected": "bold magenta",
    "deferred": "bold yellow",
    "busy": "cyan",
    "untrusted": "bold red",
    "failed": "bold red",
    "interrupted": "magenta",
    "unreachable": "bold red reverse",
    "host-key-rejected": "bold red reverse",
    "pending": "dim",
    "running": "dim",
    "changed": "bold green",
    "unchanged": "green",
    "would-change": "yellow",
    "removed": "bold green",
    "preflight-failed": "bold red",
    "collected": "green",
    "in-sync": "green",
    "drifted": "bold yellow",
    "not-deployed": "yellow",
    "held": "cyan",
    "released": "green",
    "skipped": "yellow",
    "surveyed": "dim",
}
#: How action results, the view model's text roles and diff lines are styled.
RESULT_STYLE = {
    "ok": "green",
    "failed": "bold red",
    "skipped": "dim",
    "planned": "yellow",
    "blocked": "bold red",
    "refused": "bold red",
    "deferred": "bold yellow",
    "started": "yellow",
    "interrupted": "magenta",
}
ROLE_STYLE = {"muted": "dim", "strong": "bold", "code": ""}
DIFF_STYLE = {"+": "green", "-": "red"}
#: The console width when no terminal is attached: wide enough that no table row wraps.
PIPE_WIDTH = 1000


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


def spans_text(spans: Iterable[Span], *, sep: str = "") -> Text:
    """Spans of the view model as Rich text: control characters made visible, styled by role and result."""
    text = Text()
    for index, span in enumerate(spans):
        if index and sep:
            text.append(sep)
        style = RESULT_STYLE.get(span.result, "") if span.result else ROLE_STYLE.get(span.role, "")
        text.append(clean(span.text), style=style)
    return text


def recap_table(report: RunReport) -> Table:
    """The recap's table: the columns the command's recap has, one row per host."""
    return _recap_table(recap(report))


def _recap_table(model: Recap) -> Table:
    table = Table(title=model.title, caption=counts_label(model.counts), expand=False)
    for name in model.columns:
        table.add_column(
            name, justify="right" if name in NUMERIC_COLUMNS else "left", style="bold" if name == "host" else None
        )
    for row in model.rows:
        cells: list[RenderableType] = []
        for name in model.columns:
            if name == "host":
                cells.append(clean(row.host) + (" ⚠" if row.warned else ""))
            elif name == "outcome":
                cells.append(outcome_text(row.outcome))
            else:
                cells.append(spans_text(row.cells[name], sep="\n" if name in LINE_COLUMNS else ", "))
        table.add_row(*cells)
    return fold_cells(table, keep_whole=(model.columns.index("outcome"),))


def diffs_block(report: RunReport) -> RenderableType:
    """The crontab and config diffs of a deploy, per host."""
    text = Text()
    for host, change in deploy_diffs(report):
        text.append(f"{clean(host)}: {clean(change.item)}\n", style="bold")
        for line, sign in change.diff:
            text.append(clean(line) + "\n", style=DIFF_STYLE.get(sign, ""))
    return text


def _reasons(model: Recap) -> Text:
    """One line per host whose reason the table has no room for: not ok (why: unreachable,
    busy, ...), healed (what was done) or with a restart blocked by its breaker."""
    lines = Text()
    for row in model.rows:
        if row.noted:
            lines.append(f"{clean(row.host)}: ", style="bold")
            lines.append(clean(row.reason) + "\n")
    return lines


def run_view(report: RunReport, report_dir: str = "") -> RenderableType:
    model = recap(report)
    parts: list[RenderableType] = [_recap_table(model)]
    if report.command == "deploy":
        parts.append(diffs_block(report))
    parts.append(_reasons(model))
    parts += [Text(clean(alert), style="bold red") for alert in model.alerts]
    footer = f"{model.interrupted} {model.footer}" if model.interrupted else model.footer
    if report_dir:
        footer += f"\nreport: {report_dir}/index.html"
    parts.append(Text(footer, style="dim"))
    return Group(*parts)


def host_view(report: RunReport, host: HostReport, *, tail_lines: int = TAIL_LINES) -> RenderableType:
    """One host: its notices, timeline of phases and actions with reasons, each check's matched
    lines and output tail, locks, deploy's pre-flight and changes, files and cron runs."""
    page = host_page(report, host, tail_lines=tail_lines)
    head = Text()
    head.append(f"{clean(page.name)} ", style="bold")
    head.append(f"({clean(', '.join(page.facts))}) ")
    head.append_text(outcome_text(page.outcome))
    if page.reason:
        head.append(f"\n{clean(page.reason)}")
    parts: list[RenderableType] = [head]
    if page.notices:
        notices = Text(f"{page.notices_title}:", style="bold yellow")
        for notice in page.notices:
            prefix = "warning: " if notice.kind == "warning" else ""
            notices.append(f"\n{prefix}{clean(notice.text)}", style="yellow")
        parts.append(notices)
    rows = Table(title="timeline", show_edge=False, expand=False)
    for name in ("when (UTC)", "what", "result / reason"):
        rows.add_column(name)
    for row in page.timeline:
        rows.add_row(clean(row.when), spans_text(row.what), _row_detail(row))
    parts.append(fold_cells(rows, keep_whole=(0,)))
    parts += [output_block(label, excerpt) for label, excerpt in page.outputs]
    if page.locks:
        parts.append(
            _table(
                "locks",
                ("lock", "pid", "verdict", "reason"),
                [(lk.name, lk.pid, lk.verdict, lk.reason) for lk in page.locks],
            )
        )
    if page.preflight:
        parts.append(
            _table("pre-flight", ("check", "result", "detail"), [(c.check, c.result, c.detail) for c in page.preflight])
        )
    if page.changes:
        parts.append(_table("changes", ("action", "item"), [(c.action, c.item) for c in page.changes]))
    if page.files:
        parts.append(
            _table(
                "collected files",
                ("file", "size", "sha256"),
                [(f.path, f.size, f.sha256) for f in page.files],
                numeric=(1,),
            )
        )
    if page.cron_runs:
        runs = [
            (
                r.run_id,
                r.started_at,
                outcome_text(r.outcome),
                r.reason,
                ", ".join(_action_line(a) for a in r.actions) or "-",
            )
            for r in page.cron_runs
        ]
        parts.append(
            _table(
                "cron runs on the host (newest first)",
                ("run", "started", "outcome", "reason", "actions"),
                runs,
                whole=(2,),
            )
        )
    return Group(*parts)


def _row_detail(row: TimelineRow) -> Text:
    """A timeline row's result, detail and reason: ``✓ ok: pid 1 -> 2 — why: ...``."""
    text = Text()
    if row.result:
        text.append(result_text(row.result), style=RESULT_STYLE.get(row.result, ""))
        if row.detail:
            text.append(": ")
    text.append_text(spans_text(row.detail))
    for label, value in (("why", row.why), ("ran", row.ran)):
        if value:
            text.append(" — " if text.plain else "")
            text.append(f"{label}: {clean(value)}")
    return text


def _action_line(action: ActionLine) -> str:
    return clean(f"{action.what}: {action.result_text}" + (f" — {action.why}" if action.why else ""))


def _table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[str | Text]],
    *,
    numeric: Sequence[int] = (),
    whole: Sequence[int] = (),
) -> Table:
    """A host view's table; plain strings in ``rows`` are cleaned here."""
    table = Table(title=title, show_edge=False)
    for index, name in enumerate(columns):
        table.add_column(name, justify="right" if index in numeric else "left")
    for row in rows:
        table.add_row(*(clean(c) if isinstance(c, str) else c for c in row))
    return fold_cells(table, keep_whole=whole)


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


def to_text(renderable: RenderableType, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


class ProgressView:
    """Each host's current phase, live on a terminal; one line per finished host otherwise.

    An event only records the host's phase; the table is built when the live display refreshes
    (4 times a second), not once per event: with many hosts, rebuilding it on every event was
    controller CPU that grew with hosts x events."""

    def __init__(self, console: Console, hosts: list[str]) -> None:
        self.console = console
        self.phases = dict.fromkeys(hosts, "queued")
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.live: Live | None = None

    def update(self, host: str, phase: str) -> None:
        with self.lock:
            self.phases[host] = phase
            if self.live is None and phase.startswith("done"):
                self.console.print(f"{host}: {phase}", highlight=False)

    def notice(self, message: str) -> None:
        """A run-wide message (e.g. what Ctrl-C does now), printed above the live view."""
        with self.lock:
            self.console.print(Text(message, style="bold yellow"), highlight=False)

    def _snapshot(self) -> Table:
        """The table as of now. The live display calls it from its refresh thread, and from
        ``notice``'s print while that holds ``self.lock``: so it takes no lock (the hosts are
        fixed, only their phases change, and a list of the items is taken at once)."""
        return self._table()

    def _table(self) -> Table:
        table = Table(show_header=True, expand=False, title=f"{time.monotonic() - self.started:.1f}s")
        table.add_column("host")
        table.add_column("phase")
        for host, phase in list(self.phases.items()):
            style = OUTCOME_STYLE.get(phase.removeprefix("done: "), "") if phase.startswith("done") else ""
            table.add_row(host, Text(phase, style=style))
        return table

    @contextmanager
    def running(self) -> Iterator[ProgressView]:
        if self.console.is_terminal and len(self.phases) <= 60:
            with Live(
                console=self.console, refresh_per_second=4, transient=True, get_renderable=self._snapshot
            ) as live:
                self.live = live
                try:
                    yield self
                finally:
                    self.live = None
        else:
            yield self
