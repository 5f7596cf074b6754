"""The fleet across runs: per-host outcomes over time, in the terminal and in ``reports/index.html``.

Runs are read from the report folder (oldest first). Cron runs that happened on the hosts
themselves arrive as journals in any later run's ``cron_runs``; they are merged in as runs of
their own (marked cron), once per (run id, host) however many runs collected them. A host whose
health outcome changed at least ``FLAP_CHANGES`` times in the window is flagged as flapping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from rich.table import Table
from rich.text import Text

from ..errors import ReportError
from .htmlpage import badge, esc, host_anchor, outcome_colours, page
from .records import CronActionRecord
from .render import OUTCOME_STYLE, fold_cells
from .report import ReportStore, RunReport, atomic_write
from .selfheal import silence_line
from .views.labels import actions_text, clean, outcome_counts

FLAP_CHANGES = 3
NON_HEALTH_COMMANDS = frozenset({"deploy", "collect", "status", "hold", "release"})  # outcomes say nothing about health
#: Outcomes that say nothing about the host's health either (it was not looked at).
NO_VERDICT = frozenset({"pending", "running", "held", "skipped", "interrupted", "busy", "surveyed"})
_RUN_ID_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
#: The mark of each outcome in the terminal's strip of outcomes over time.
GLYPHS = {
    "pending": "…",
    "running": "…",
    "healthy": "●",
    "healed": "✚",
    "still-degraded": "▲",
    "still-unhealthy": "✖",
    "unexpected": "?",
    "degraded": "△",
    "unhealthy": "✕",
    "deferred": "◷",
    "busy": "◐",
    "untrusted": "⚠",
    "failed": "✖",
    "interrupted": "‖",
    "unreachable": "○",
    "host-key-rejected": "⊘",
    "changed": "◆",
    "unchanged": "◇",
    "would-change": "◈",
    "removed": "⌫",
    "preflight-failed": "⊗",
    "collected": "↓",
    "in-sync": "≡",
    "drifted": "≠",
    "not-deployed": "∅",
    "held": "⏸",
    "released": "▶",
    "skipped": "»",
    "surveyed": "⋯",
}
#: The mark of what is no known outcome (a cron journal's ``running``, one from a newer Guardian).
UNKNOWN_GLYPH = "■"


@dataclass
class HostCell:
    """One host's result in one run."""

    outcome: str
    reason: str = ""
    actions: str = ""
    silent: str | None = None  # the self-heal verdict: its silence line, "" if fine, None if none


@dataclass
class HistoryRun:
    """One run (from the laptop, or a cron run on hosts) with each host's outcome."""

    run_id: str
    command: str  # premarket, recover, deploy, collect, or "cron"
    started_at: str
    cron: bool = False
    cells: dict[str, HostCell] = field(default_factory=dict)
    exit_code: int | None = None
    dry_run: bool = False
    complete: bool = True
    source_run: str = ""  # the laptop run whose report holds this run (for cron runs, the collecting run)
    has_html: bool = False

    @property
    def health(self) -> bool:
        """Whether the outcomes of this run describe host health (not deploy or collect)."""
        return self.command not in NON_HEALTH_COMMANDS and not self.dry_run

    def href(self, host: str | None = None) -> str:
        """A link relative to ``reports/`` to this run's page (or report.json), optionally a host."""
        if not self.source_run:
            return ""
        if not self.has_html:
            return f"{self.source_run}/report.json"
        return f"{self.source_run}/index.html" + (f"#{host_anchor(host)}" if host else "")


@dataclass
class History:
    """Runs oldest to newest, the hosts seen in them, and the reports that could not be read."""

    runs: list[HistoryRun]
    hosts: list[str]
    host: str | None = None
    skipped: list[str] = field(default_factory=list)

    def timeline(self, host: str) -> list[tuple[HistoryRun, HostCell]]:
        """The host's results, oldest first."""
        return [(run, run.cells[host]) for run in self.runs if host in run.cells]

    def changes(self, host: str) -> int:
        """How many times the host went from fine to having a problem, or back, run to run."""
        # A change is between "was fine" (healthy) and "had a problem" (healed, still-*, unreachable, ...):
        # a host that alternates between the two is flapping.
        fine = [
            cell.outcome == "healthy"
            for run, cell in self.timeline(host)
            if run.health and cell.outcome not in NO_VERDICT
        ]
        return sum(1 for a, b in zip(fine, fine[1:]) if a != b)

    def flapping(self) -> list[str]:
        """Hosts whose health outcome changed at least ``FLAP_CHANGES`` times."""
        return [h for h in self.hosts if self.changes(h) >= FLAP_CHANGES]

    def silence(self, host: str) -> str:
        """The host's self-heal silence as its newest run with a verdict saw it ("" if none)."""
        verdicts = [cell.silent for _, cell in self.timeline(host) if cell.silent is not None]
        return verdicts[-1] if verdicts else ""


def _started(started_at: object, run_id: str) -> str:
    if isinstance(started_at, str) and started_at:
        return started_at
    m = _RUN_ID_TIME.match(run_id)
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}:{m[5]}:{m[6]}Z" if m else ""


def _actions(actions: object) -> str:
    if not isinstance(actions, list):
        return ""
    return actions_text(cast(list[CronActionRecord], [a for a in actions if isinstance(a, dict)]))


def load_history(store: ReportStore, *, host: str | None = None, limit: int = 50) -> History:
    """Read the newest ``limit`` runs (and the cron runs they collected) from the report folder.

    Args:
        store: The report folder.
        host: Only this host's results (runs without it are left out).
        limit: How many runs, laptop and cron together, to keep (the newest).

    Returns:
        The history, oldest run first. Unreadable reports are listed in ``skipped``.
    """
    runs: list[HistoryRun] = []
    cron: dict[str, HistoryRun] = {}
    skipped: list[str] = []
    for run_id in store.run_ids()[-max(limit, 1) :]:
        try:
            report: RunReport = store.load(run_id)
        except ReportError:
            skipped.append(run_id)
            continue
        run = HistoryRun(
            run_id=report.run_id,
            command=report.command,
            started_at=_started(report.started_at, report.run_id),
            exit_code=report.exit_code,
            dry_run=bool(report.options.get("dry_run")),
            complete=report.complete,
            source_run=report.run_id,
            has_html=(store.run_dir(run_id) / "index.html").is_file(),
        )
        for h in report.hosts:
            verdict = silence_line(h.self_heal) if h.self_heal else None
            run.cells[h.host] = HostCell(h.outcome, h.reason, _actions(h.actions), verdict)
            for journal in h.cron_runs:
                cron_id = str(journal.get("run_id") or "")
                if not cron_id:
                    continue
                entry = cron.get(cron_id)
                if entry is None:
                    entry = cron[cron_id] = HistoryRun(
                        run_id=cron_id,
                        command="cron",
                        started_at=_started(journal.get("started_at"), cron_id),
                        cron=True,
                        exit_code=None,
                        source_run=run.run_id,
                        has_html=run.has_html,
                    )
                if h.host not in entry.cells:
                    entry.cells[h.host] = HostCell(
                        str(journal.get("outcome") or "?"),
                        str(journal.get("reason") or ""),
                        _actions(journal.get("actions")),
                    )
        runs.append(run)
    merged = sorted([*runs, *cron.values()], key=lambda r: (r.started_at, r.run_id))
    if host is not None:
        merged = [r for r in merged if host in r.cells]
        for r in merged:
            r.cells = {host: r.cells[host]}
    merged = merged[-max(limit, 1) :]
    hosts = sorted({h for r in merged for h in r.cells})
    return History(runs=merged, hosts=hosts, host=host, skipped=skipped)


def _glyph(outcome: str) -> str:
    return GLYPHS.get(outcome, UNKNOWN_GLYPH)


def history_table(history: History) -> Table:
    """The history for a terminal.

    Without a host filter: one row per host with a strip of outcomes over time (oldest left,
    cron runs underlined) and flapping hosts flagged. With ``history.host``: one row per run.
    """
    if history.host is not None:
        return _host_runs_table(history, history.host)
    flapping = set(history.flapping())
    first = history.runs[0].run_id if history.runs else "-"
    last = history.runs[-1].run_id if history.runs else "-"
    table = Table(title=f"Guardian history: {len(history.runs)} runs, {first} → {last}")
    table.add_column("host", style="bold")
    table.add_column("outcomes (oldest → newest)", no_wrap=True)
    table.add_column("last")
    table.add_column("changes", justify="right")
    table.add_column("")
    for host in history.hosts:
        strip = Text()
        for run in history.runs:
            cell = run.cells.get(host)
            if cell is None:
                strip.append("·", style="dim")
            else:
                style = OUTCOME_STYLE.get(cell.outcome, "")
                strip.append(_glyph(cell.outcome), style=f"{style} underline" if run.cron else style)
        timeline = history.timeline(host)
        last_outcome = timeline[-1][1].outcome if timeline else "-"
        flag = Text("FLAPPING", style="bold yellow reverse") if host in flapping else Text("")
        if history.silence(host):
            flag.append((" " if flag.plain else "") + "SELF-HEAL SILENT", style="bold red reverse")
        table.add_row(
            clean(host),
            strip,
            Text(last_outcome, style=OUTCOME_STYLE.get(last_outcome, "")),
            str(history.changes(host)),
            flag,
        )
    seen = sorted({c.outcome for r in history.runs for c in r.cells.values()})
    legend = "  ".join(f"{_glyph(o)} {o}" for o in seen)
    table.caption = f"{legend}  · no result; underlined: cron run on the host" if seen else "no runs yet"
    if history.skipped:
        table.caption += f"\nunreadable reports skipped: {', '.join(history.skipped)}"
    return fold_cells(table, keep_whole=(2,))


def _host_runs_table(history: History, host: str) -> Table:
    changes = history.changes(host)
    flag = " — FLAPPING" if changes >= FLAP_CHANGES else ""
    table = Table(title=f"Guardian history of {clean(host)}: {changes} outcome changes{flag}")
    for column in ("started (UTC)", "run", "kind", "outcome", "actions / reason"):
        table.add_column(column)
    for run, cell in history.timeline(host):
        kind = "cron" if run.cron else run.command + (" (dry run)" if run.dry_run else "")
        detail = "; ".join(x for x in (cell.actions, cell.reason, cell.silent) if x) or "-"
        table.add_row(
            run.started_at,
            run.run_id,
            kind,
            Text(cell.outcome, style=OUTCOME_STYLE.get(cell.outcome, "")),
            clean(detail),
        )
    return fold_cells(table, keep_whole=(3,))


HISTORY_CSS = """
.heat { border-collapse: separate; border-spacing: 3px; width: auto; }
.heat th, .heat td { border: 0; padding: 0; }
.heat th.h { text-align: right; padding-right: 10px; white-space: nowrap; background: none; font-size: 13px;
             color: var(--fg); }
.heat td.c a, .heat td.c span { display: block; width: 22px; height: 22px; border-radius: 4px; }
.heat td.c .cron { border-radius: 50%; transform: scale(.8); }
.heat td.c .none { background: #f6f8fa; border: 1px dashed #d1d9e0; }
.heat tr.flap th.h { color: #9a6700; }
.heat td.x { padding-left: 10px; white-space: nowrap; font-size: 12px; }
.heat thead th { background: none; font-size: 10px; color: var(--muted); font-weight: 400; height: 70px;
                 vertical-align: bottom; }
.heat thead th div { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; width: 22px; }
.flagged { background: #fff8c5; color: #7d4e00; border-radius: 999px; padding: 1px 8px; font-weight: 600;
           font-size: 12px; }
.scroll { overflow-x: auto; }
"""


def _cell_html(run: HistoryRun, host: str) -> str:
    cell = run.cells.get(host)
    if cell is None:
        return f'<td class="c"><span class="none" title="{esc(host)}: not in {esc(run.run_id)}"></span></td>'
    _, _, solid = outcome_colours(cell.outcome)
    kind = "cron run on the host" if run.cron else run.command + (" (dry run)" if run.dry_run else "")
    tip = f"{host} · {run.started_at} · {run.run_id} ({kind}) · {cell.outcome}"
    if cell.actions:
        tip += f" · {cell.actions}"
    if cell.reason:
        tip += f" · {cell.reason}"
    if cell.silent:
        tip += f" · {cell.silent}"
    cls = "cron" if run.cron else ""
    attrs = f'class="{cls}" style="background:{solid}" title="{esc(tip)}"'
    href = run.href(host)
    if href:
        return f'<td class="c"><a href="{esc(href)}" {attrs}></a></td>'
    return f'<td class="c"><span {attrs}></span></td>'


def render_history_html(history: History) -> str:
    """The fleet over time as a self-contained page: a hosts-by-runs heat-map, then the runs.

    Links are relative to ``reports/`` (the page is ``reports/index.html``).
    """
    flapping = set(history.flapping())
    cols = "".join(
        f'<th title="{esc(r.run_id)}"><div>{esc(r.started_at[5:16].replace("T", " "))}'
        f"{' cron' if r.cron else ''}</div></th>"
        for r in history.runs
    )
    rows = []
    for host in history.hosts:
        changes = history.changes(host)
        flag = f' <span class="flagged">flapping: {changes} changes</span>' if host in flapping else ""
        if history.silence(host):
            flag += f' <span class="flagged" title="{esc(history.silence(host))}">self-heal silent</span>'
        cells = "".join(_cell_html(run, host) for run in history.runs)
        rows.append(
            f'<tr class="{"flap" if host in flapping else ""}" data-check="host">'
            f'<th class="h">{esc(host)}</th>{cells}<td class="x">{flag}</td></tr>'
        )
    seen = sorted({c.outcome for r in history.runs for c in r.cells.values()})
    legend = "".join(badge(o) for o in seen) + ' <span class="muted">round cells: cron runs on the hosts</span>'
    run_rows = []
    for run in reversed(history.runs):
        counts = outcome_counts(cell.outcome for cell in run.cells.values())
        summary = " ".join(f"{badge(o)}&nbsp;&times;{n}" for o, n in counts)
        href = run.href()
        if run.cron:
            name = f'<span class="mono">{esc(run.run_id)}</span>'
            kind = "cron on " + ", ".join(esc(h) for h in run.cells)
            if href:
                kind += f' <span class="muted">(collected by <a href="{esc(href)}">{esc(run.source_run)}</a>)</span>'
        else:
            name = f'<a class="mono" href="{esc(href)}">{esc(run.run_id)}</a>'
            kind = esc(run.command) + (" (dry run)" if run.dry_run else "") + ("" if run.complete else " (incomplete)")
        code = "" if run.exit_code is None else esc(run.exit_code)
        run_rows.append(
            f'<tr><td class="nowrap">{esc(run.started_at)}</td><td>{name}</td><td>{kind}</td>'
            f'<td class="num">{code}</td><td>{summary}</td></tr>'
        )
    flap_note = (
        f'<p><span class="flagged">{len(flapping)} flapping</span> '
        + ", ".join(f"<b>{esc(h)}</b>" for h in sorted(flapping))
        + f" (health outcome changed {FLAP_CHANGES} or more times)</p>"
        if flapping
        else f'<p class="muted">No flapping host (none changed outcome {FLAP_CHANGES} or more times).</p>'
    )
    skipped = (
        f'<p class="muted">Unreadable reports skipped: {", ".join(esc(s) for s in history.skipped)}</p>'
        if history.skipped
        else ""
    )
    scope = f" · host {esc(history.host)}" if history.host else ""
    body = (
        f'<style>{HISTORY_CSS}</style><header class="top"><h1>Guardian fleet history</h1>'
        f'<div class="meta">{len(history.runs)} runs · {len(history.hosts)} hosts{scope} · oldest left, newest right'
        " · hover a cell for details, click it for the run</div></header><main>"
        f'<h2 id="heatmap">Outcome per host over time</h2><div class="legend">{legend}</div>{flap_note}'
        f'<div class="scroll"><table class="heat"><thead><tr><th></th>{cols}<th></th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        '<h2 id="runs">Runs (newest first)</h2>'
        '<table><thead><tr><th>started (UTC)</th><th>run</th><th>kind</th><th class="num">exit</th>'
        f"<th>outcomes</th></tr></thead><tbody>{''.join(run_rows)}</tbody></table>{skipped}</main>"
    )
    return page("Guardian fleet history", body, expect=len(history.hosts))


def write_history_html(store: ReportStore, *, limit: int = 50) -> Path:
    """Write ``reports/index.html`` (the fleet over the newest ``limit`` runs) atomically."""
    path = store.root / "index.html"
    atomic_write(path, render_history_html(load_history(store, limit=limit)).encode("utf-8"))
    return path
