"""A run's report as one self-contained HTML page: ``reports/<run-id>/index.html``.

The page shows the same view model as the terminal (:mod:`views`): the recap with the command's
columns, then per host its notices, checks, timeline, output, locks, deploy changes, collected
files and cron runs. Only the markup is decided here; the chrome (CSP, CSS, escaping) is
:mod:`htmlpage`. Links to collected files are relative (``<host>/<file>``) and only made for
plain file names.
"""

from __future__ import annotations

from pathlib import Path

from .htmlpage import badge, css_ident, esc, file_href, host_anchor, outcome_colours, page, spans_html, table
from .report import ReportStore, RunReport, atomic_write
from .views.excerpt import TAIL_LINES, OutputExcerpt, OutputLine
from .views.host import CheckSummary, HostPage, host_page
from .views.labels import EXIT_CODES_HELP, Span, result_text
from .views.recap import LINE_COLUMNS, NUMERIC_COLUMNS, Recap, RecapRow, recap
from .views.timeline import TimelineRow

#: Columns whose cells never wrap (a state label, a duration).
_NOWRAP_COLUMNS = frozenset({"before", "after", "time"})
_DIFF_CLASS = {"+": "add", "-": "del"}


def _result(result: str) -> str:
    return f'<span class="r-{css_ident(result)}">{esc(result_text(result))}</span>'


def _timeline_cells(row: TimelineRow) -> tuple[str, str, str]:
    """(when, what, result / reason) of one timeline row, escaped."""
    parts = [_result(row.result)] if row.result else []
    if row.detail:
        parts.append(spans_html(row.detail))
    why = f'<div class="why">why: {esc(row.why)}</div>' if row.why else ""
    ran = f'<div class="why">ran: <code>{esc(row.ran)}</code></div>' if row.ran else ""
    return (f'<span class="mono">{esc(row.when)}</span>', spans_html(row.what), " ".join(parts) + why + ran)


def _check_box(check: CheckSummary) -> str:
    label = f'<div class="label">{esc(check.label)}</div>'
    if not check.exit:
        return f'<div class="check">{label}<div class="code muted">&ndash;</div></div>'
    fg, _, _ = outcome_colours(check.state)
    note = f'<div class="muted">{esc(check.note)}</div>' if check.note else ""
    state = badge(check.state, title=f"{check.label}: {check.state}")
    code = f'<div class="code" style="color:{fg}">{esc(check.exit)}</div>'
    return f'<div class="check">{label}{code}<div>{state}</div>{note}</div>'


def _output_line(line: OutputLine) -> str:
    more = f' <span class="muted">[{line.cut:,} more characters not shown]</span>' if line.cut else ""
    return f'<mark class="hit">{esc(line.text)}</mark>{more}' if line.signatures else esc(line.text) + more


def _output(label: str, excerpt: OutputExcerpt) -> str:
    """A check's output: the lines that matched a signature (with line numbers and patterns)
    first, then a bounded tail in a box the page scrolls to its end, where the failure usually is."""
    size = f' <span class="sub">{excerpt.output_bytes:,} bytes</span>' if excerpt.output_bytes else ""
    out = [f"<h3>{esc(label)}{size}</h3>"]
    if excerpt.matched:
        rows = [
            (
                esc(line.line_no if line.line_no is not None else "-"),
                ", ".join(
                    f"<b>{esc(name)}</b> <code>{esc(pattern)}</code>"
                    for name, pattern in zip(line.signatures, line.patterns)
                ),
                f"<code>{_output_line(line)}</code>",
            )
            for line in excerpt.matched
        ]
        out.append(
            '<div class="muted">matched lines</div>'
            + table(["line", "signature and pattern", "output"], rows, num=(0,))
        )
    if excerpt.tail:
        note = excerpt.omitted_note()
        lines = ([f'<span class="muted">{esc(note)}</span>'] if note else []) + [_output_line(x) for x in excerpt.tail]
        out.append(f'<div class="muted">{esc(excerpt.tail_title())}</div>')
        out.append('<pre class="tail">' + "\n".join(lines) + "</pre>")
    return "".join(out)


def _notices(host: HostPage) -> str:
    """Who holds the lock, breaker and hold state, and warnings."""
    if not host.notices:
        return ""
    items = "".join(
        f'<div class="warn">⚠ {esc(n.text)}</div>' if n.kind == "warning" else f"<div>{esc(n.text)}</div>"
        for n in host.notices
    )
    return f'<div class="guards"><h3>{esc(host.notices_title)}</h3>{items}</div>'


def _host_section(host: HostPage) -> str:
    _, _, solid = outcome_colours(host.outcome)
    out = [
        f'<section class="host" id="{esc(host_anchor(host.name))}" data-check="host" style="--oc:{solid}">',
        f'<h2>{esc(host.name)} {badge(host.outcome)} <span class="sub">{esc(" · ".join(host.facts))}</span>'
        '<a class="toplink" href="#recap">↑ recap</a></h2>',
    ]
    if host.reason:
        out.append(f'<div class="reason">{esc(host.reason)}</div>')
    out.append(_notices(host))
    if host.checks:
        boxes = '<div class="arrow">→</div>'.join(_check_box(c) for c in host.checks)
        out.append(f'<div class="checks">{boxes}</div>')
    if host.timeline:
        out.append("<h3>timeline (UTC)</h3>")
        out.append(table(["when", "what", "result / reason"], [_timeline_cells(r) for r in host.timeline]))
    out += [_output(label, excerpt) for label, excerpt in host.outputs]
    out += [_locks(host), _deploy(host), _files(host), _cron_runs(host)]
    out.append("</section>")
    return "\n".join(p for p in out if p)


def _result_word(result: str, word: str) -> str:
    return f'<span class="r-{css_ident(result)}">{esc(word)}</span>'


def _locks(host: HostPage) -> str:
    if not host.locks:
        return ""
    rows = [
        (
            f"<code>{esc(lk.name)}</code>",
            esc(lk.pid),
            _result_word("failed" if lk.stale else "ok", lk.verdict),
            esc(lk.reason),
        )
        for lk in host.locks
    ]
    return "<h3>locks</h3>" + table(["lock", "pid", "verdict", "reason"], rows)


def _deploy(host: HostPage) -> str:
    out = []
    if host.preflight:
        rows = [(esc(c.check), _result_word(c.result, c.result), esc(c.detail)) for c in host.preflight]
        out.append("<h3>pre-flight</h3>" + table(["check", "result", "detail"], rows))
    if host.changes:
        changes = []
        for c in host.changes:
            lines = [f'<span class="{_DIFF_CLASS[sign]}">{esc(t)}</span>' if sign else esc(t) for t, sign in c.diff]
            diff = '<pre class="diff">' + "\n".join(lines) + "</pre>" if lines else ""
            changes.append((badge(c.action), f"<code>{esc(c.item)}</code>{diff}"))
        out.append("<h3>changes</h3>" + table(["action", "item"], changes))
    return "".join(out)


def _files(host: HostPage) -> str:
    if not host.files:
        return ""
    rows = []
    for f in host.files:
        href = file_href(f.path)
        name = (
            f'<a href="{esc(href)}">{esc(f.name)}</a>'
            if href
            else f'{esc(f.name)} <span class="muted">(unsafe path, not linked)</span>'
        )
        rows.append((name, esc(f.size), f'<code title="{esc(f.sha256)}">{esc(f.sha256[:16])}</code>'))
    return "<h3>collected files</h3>" + table(["file", "bytes", "sha256"], rows, num=(1,))


def _cron_runs(host: HostPage) -> str:
    if not host.cron_runs:
        return ""
    rows = []
    for run in host.cron_runs:
        actions = "<br>".join(
            f"{esc(a.what)}: {_result(a.result)}" + (f' <span class="why">— {esc(a.why)}</span>' if a.why else "")
            for a in run.actions
        )
        rows.append(
            (
                f'<span class="mono">{esc(run.run_id)}</span>',
                esc(run.started_at),
                badge(run.outcome),
                esc(run.reason),
                actions or '<span class="muted">-</span>',
            )
        )
    return "<h3>cron runs on the host (newest first)</h3>" + table(
        ["run", "started", "outcome", "reason", "actions"], rows
    )


def _recap_cell(row: RecapRow, column: str) -> str:
    if column == "host":
        link = f'<a href="#{esc(host_anchor(row.host))}">{esc(row.host)}</a>'
        return f'<span class="nowrap">{link} ⚠</span>' if row.warned else link
    if column == "outcome":
        return badge(row.outcome)
    spans: tuple[Span, ...] = row.cells[column]
    if column in LINE_COLUMNS:
        return spans_html(spans, sep="<br>")
    return ", ".join(f'<span class="nowrap">{spans_html((s,))}</span>' for s in spans)


def _recap(model: Recap) -> str:
    columns = (*model.columns, "reason")
    head = "".join(f"<th{' class=num' if c in NUMERIC_COLUMNS else ''}>{esc(c)}</th>" for c in columns)
    rows = []
    for row in model.rows:
        _, _, solid = outcome_colours(row.outcome)
        cells = [
            f"<td{' class=num' if c in NUMERIC_COLUMNS else ' class=nowrap' if c in _NOWRAP_COLUMNS else ''}>"
            f"{_recap_cell(row, c)}</td>"
            for c in model.columns
        ]
        rows.append(
            f'<tr class="o-{css_ident(row.outcome)}" style="--oc:{solid}">'
            f"{''.join(cells)}<td>{esc(row.reason)}</td></tr>"
        )
    return f'<table class="recap"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _run_state(model: Recap) -> str:
    """Run-wide state: an interruption, common-cause incidents, a rolling recovery's early stop."""
    lines = [model.interrupted] if model.interrupted else []
    lines += model.alerts
    if not lines:
        return ""
    return (
        f'<div class="guards" id="run-state"><h3>run state</h3>{"".join(f"<div>{esc(x)}</div>" for x in lines)}</div>'
    )


def render_run_html(report: RunReport, *, tail_lines: int = TAIL_LINES) -> str:
    """One run as a self-contained HTML page: recap table, then one section per host.

    Args:
        report: The run.
        tail_lines: How many lines of each check output's tail to show (after its matched lines).

    Returns:
        The HTML document.
    """
    model = recap(report)
    state = "interrupted" if report.interrupted else "complete" if report.complete else "in progress"
    meta = (
        f"started {esc(report.started_at)}"
        + (f" · finished {esc(report.finished_at)}" if report.finished_at else "")
        + f" · {state} · exit code {esc(report.exit_code if report.exit_code is not None else '-')}"
        + f" · {len(report.hosts)} host{'s' if len(report.hosts) != 1 else ''}"
        + (f" · guardian {esc(report.guardian_version)}" if report.guardian_version else "")
        + ' · <a href="../index.html">all runs</a> · <a href="report.json">report.json</a>'
    )
    counts = " ".join(f"{badge(o)}&nbsp;&times;{n}" for o, n in model.counts)
    body = [
        f'<header class="top"><h1>{esc(model.title)}</h1><div class="meta">{meta}</div></header>',
        "<main>",
        f'<h2 id="recap">Recap <span class="sub">{counts}</span></h2>',
        _recap(model),
        _run_state(model),
    ]
    body += [_host_section(host_page(report, host, tail_lines=tail_lines)) for host in report.hosts]
    body.append("</main>")
    body.append(
        f"<footer>Exit codes: {esc(EXIT_CODES_HELP)}. "
        "Output from hosts is shown with control characters made visible.</footer>"
    )
    return page(model.title, "\n".join(body), expect=len(report.hosts))


def write_run_html(store: ReportStore, report: RunReport) -> Path:
    """Write ``reports/<run-id>/index.html`` atomically; returns its path."""
    path = store.run_dir(report.run_id) / "index.html"
    atomic_write(path, render_run_html(report).encode("utf-8"))
    return path
