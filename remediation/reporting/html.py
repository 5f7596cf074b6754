"""A run's report as one self-contained HTML page: ``reports/<run-id>/index.html``.

The page needs nothing but itself: inline CSS, one tiny inline script, no external URL, and a
Content-Security-Policy that forbids every fetch, so it works from ``file://`` and a hostile
string cannot make it load anything. Everything that came from a host (output, reasons, file
names, even host names) is untrusted: control characters are made visible, then HTML-escaped.
Links to collected files are relative (``<host>/<file>``) and only made for plain file names.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .render import clean
from .report import HostReport, ReportStore, RunReport, atomic_write
from .views import TAIL_LINES, OutputExcerpt, OutputLine, output_excerpt, recap_reason, timeline

# outcome -> (text colour, background, solid colour for heat-map cells)
OUTCOME_COLOURS: dict[str, tuple[str, str, str]] = {
    "healthy": ("#116329", "#dafbe1", "#4ac26b"),
    "healed": ("#0a4a1f", "#aceebb", "#1b7c83"),
    "still-degraded": ("#7d4e00", "#fff1b3", "#d4a72c"),
    "still-unhealthy": ("#a40e26", "#ffdcd7", "#cf222e"),
    "degraded": ("#7d4e00", "#fff8c5", "#e3b341"),
    "unhealthy": ("#a40e26", "#ffebe9", "#fa4549"),
    "unexpected": ("#6639ba", "#fbefff", "#8250df"),
    "busy": ("#0550ae", "#ddf4ff", "#218bff"),
    "failed": ("#a40e26", "#ffdcd7", "#a40e26"),
    "interrupted": ("#8c1d73", "#ffeff7", "#bf3989"),
    "unreachable": ("#ffffff", "#a40e26", "#82071e"),
    "host-key-rejected": ("#ffffff", "#82071e", "#4c0010"),
    "pending": ("#57606a", "#eaeef2", "#afb8c1"),
    "changed": ("#0a4a1f", "#aceebb", "#1a7f37"),
    "unchanged": ("#116329", "#dafbe1", "#2da44e"),
    "would-change": ("#7d4e00", "#fff8c5", "#e3b341"),
    "removed": ("#0a4a1f", "#aceebb", "#1a7f37"),
    "preflight-failed": ("#a40e26", "#ffdcd7", "#cf222e"),
    "collected": ("#116329", "#dafbe1", "#6fdd8b"),
    "held": ("#0550ae", "#ddf4ff", "#54aeff"),
    "skipped": ("#57606a", "#eaeef2", "#8c959f"),
}
_UNKNOWN_COLOURS = ("#24292f", "#eaeef2", "#8c959f")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_KNOWN_HOST_FIELDS = frozenset(
    {
        "host",
        "address",
        "transport",
        "outcome",
        "reason",
        "started_at",
        "duration",
        "phases",
        "before",
        "after",
        "plan",
        "actions",
        "locks",
        "files",
        "busy_holder",
        "runner",
        "remote_version",
        "warnings",
        "preflight",
        "changes",
        "cron_runs",
    }
)
_KNOWN_RUN_FIELDS = frozenset(
    {
        "run_id",
        "command",
        "started_at",
        "options",
        "hosts",
        "finished_at",
        "complete",
        "interrupted",
        "exit_code",
        "guardian_version",
    }
)
_NO_SIGNATURE = '<span class="muted">no signature matched</span>'
_GUARD_WORDS = re.compile(r"breaker|hold|incident|guard|quarantin|paused|suppress", re.IGNORECASE)

# The page's only script. It is constant so the CSP can pin it by hash: an injected inline
# script (were escaping ever to fail) would be refused by the browser. It scrolls each check
# output box to its end (the last lines are where a failure shows), and records on <html
# data-selfcheck> "ok" once every element marked data-check exists and every in-page link has
# a target, or "error: ..." on any script error, failed resource load or CSP violation.
SELF_CHECK_JS = """(function () {
  var d = document.documentElement;
  function fail(m) {
    if ((d.getAttribute('data-selfcheck') || '').indexOf('error') !== 0) {
      d.setAttribute('data-selfcheck', 'error: ' + m);
    }
  }
  window.addEventListener('error', function (e) {
    var t = e.target || {};
    fail(e.message || ('failed to load ' + (t.src || t.href || t.tagName)));
  }, true);
  document.addEventListener('securitypolicyviolation', function (e) {
    fail('CSP ' + e.violatedDirective + ' ' + e.blockedURI);
  });
  document.addEventListener('DOMContentLoaded', function () {
    var boxes = document.querySelectorAll('pre.tail');
    for (var b = 0; b < boxes.length; b++) { boxes[b].scrollTop = boxes[b].scrollHeight; }
    var want = parseInt(d.getAttribute('data-expect') || '0', 10);
    var got = document.querySelectorAll('[data-check]').length;
    if (got !== want) { fail('expected ' + want + ' sections, found ' + got); return; }
    var links = document.querySelectorAll('a[href^="#"]');
    for (var i = 0; i < links.length; i++) {
      var id = decodeURIComponent(links[i].getAttribute('href').slice(1));
      if (id && !document.getElementById(id)) { fail('dangling link #' + id); return; }
    }
    if (!d.getAttribute('data-selfcheck')) { d.setAttribute('data-selfcheck', 'ok'); }
  });
})();"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SELF_CHECK_JS.encode()).digest()).decode()
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)

CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --panel:#f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); }
header.top { background: #24292f; color: #f6f8fa; padding: 16px 28px; }
header.top h1 { margin: 0 0 4px; font-size: 20px; font-weight: 600; }
header.top .meta { color: #c9d1d9; font-size: 13px; }
header.top a { color: #9ecbff; }
main { padding: 8px 28px 40px; max-width: 1400px; }
h2 { font-size: 17px; margin: 26px 0 8px; }
h3 { font-size: 14px; margin: 18px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { text-align: left; padding: 5px 9px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; font-size: 12px; color: var(--muted); }
td.num, th.num { text-align: right; white-space: nowrap; }
td.nowrap, span.nowrap { white-space: nowrap; }
h2 .sub { color: var(--muted); font-weight: 400; font-size: 13px; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #0d1117; color: #e6edf3; padding: 10px 12px; border-radius: 6px; overflow-x: auto;
      white-space: pre-wrap; word-break: break-word; margin: 4px 0 8px; max-height: 360px; }
pre.diff .add { color: #7ee787; } pre.diff .del { color: #ffa198; }
mark.hit { background: #5a4a00; color: #ffe58f; padding: 0 2px; border-radius: 2px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
         white-space: nowrap; border: 1px solid rgba(0,0,0,.08); }
.recap td:first-child { border-left: 6px solid var(--oc, #8c959f); }
.recap a { color: inherit; font-weight: 600; }
.host { border: 1px solid var(--line); border-left: 6px solid var(--oc, #8c959f); border-radius: 6px;
        padding: 4px 18px 12px; margin: 18px 0; }
.host > h2 { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
.host .sub { color: var(--muted); font-weight: 400; font-size: 13px; }
.reason { background: var(--panel); border-radius: 6px; padding: 6px 10px; margin: 6px 0; }
.checks { display: flex; gap: 12px; flex-wrap: wrap; margin: 8px 0; }
.check { border: 1px solid var(--line); border-radius: 6px; padding: 6px 14px; min-width: 170px; }
.check .label { color: var(--muted); font-size: 12px; }
.check .code { font-size: 22px; font-weight: 700; }
.arrow { align-self: center; font-size: 22px; color: var(--muted); }
.guards { border: 1px solid #d4a72c; background: #fff8c5; border-radius: 6px; padding: 6px 12px; margin: 8px 0; }
.guards h3 { margin-top: 4px; color: #7d4e00; }
.warn { color: #7d4e00; }
.r-ok { color: #1a7f37; font-weight: 600; } .r-failed { color: #cf222e; font-weight: 600; }
.r-skipped, .r-planned { color: var(--muted); font-weight: 600; }
.why { color: var(--muted); }
.muted { color: var(--muted); }
.toplink { float: right; font-size: 12px; font-weight: 400; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 4px 0; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; }
.legend { display: flex; gap: 8px; flex-wrap: wrap; margin: 6px 0 10px; }
footer { color: var(--muted); font-size: 12px; padding: 0 28px 24px; }
"""


def esc(value: Any) -> str:
    """Untrusted text for HTML: control characters made visible, then escaped (quotes too)."""
    return html.escape(clean(str(value)), quote=True)


def css_ident(value: str) -> str:
    """A string reduced to characters safe in a CSS class name."""
    return re.sub(r"[^a-z0-9-]", "-", value.lower())[:40] or "unknown"


def outcome_colours(outcome: str) -> tuple[str, str, str]:
    """(text, background, solid) colours for an outcome; grey for unknown outcomes."""
    return OUTCOME_COLOURS.get(outcome, _UNKNOWN_COLOURS)


def badge(outcome: str, *, title: str = "") -> str:
    """An outcome as a coloured pill."""
    fg, bg, _ = outcome_colours(outcome)
    tip = f' title="{esc(title)}"' if title else ""
    return f'<span class="badge o-{css_ident(outcome)}" style="color:{fg};background:{bg}"{tip}>{esc(outcome)}</span>'


def host_anchor(name: str) -> str:
    """The id of a host's section: ``host-<name>`` (other characters replaced by ``_``)."""
    return "host-" + re.sub(r"[^A-Za-z0-9._-]", "_", name)[:200]


def file_href(path: str) -> str | None:
    """A relative href for a collected file (``<host>/<file>``), or None if the path is not plain."""
    parts = path.split("/")
    if len(parts) != 2 or not all(_SAFE_NAME.fullmatch(p) and p not in (".", "..") for p in parts):
        return None
    return "/".join(quote(p, safe="") for p in parts)


def page(title: str, body: str, *, expect: int) -> str:
    """A complete, self-contained HTML document around ``body``.

    Args:
        title: The document title (escaped here).
        body: Already-escaped HTML for ``<body>``.
        expect: How many ``data-check`` elements the self-check must find.
    """
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en" data-expect="{int(expect)}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)}</title>\n<script>{SELF_CHECK_JS}</script>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _clock(ts: Any) -> str:
    try:
        return time.strftime("%H:%M:%S", time.gmtime(float(ts))) if ts else ""
    except (TypeError, ValueError, OverflowError):
        return esc(ts)


def _state(check: dict[str, Any] | None) -> str:
    if not check:
        return "-"
    code = "timeout" if check.get("timed_out") else check.get("exit_code")
    return f"{check.get('state', '?')} ({code})"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "", num: Sequence[int] = ()) -> str:
    """A table; ``rows`` cells are already-escaped HTML."""
    head = "".join(f"<th{' class=num' if i in num else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in num else ''}>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def generic(value: Any, *, depth: int = 0) -> str:
    """Any JSON-like value as escaped HTML: dicts as key/value lists, lists as lines."""
    if depth > 4:
        return f"<code>{esc(json.dumps(value, default=str)[:2000])}</code>"
    if isinstance(value, dict):
        if not value:
            return '<span class="muted">-</span>'
        items = "".join(f"<dt>{esc(k)}</dt><dd>{generic(v, depth=depth + 1)}</dd>" for k, v in value.items())
        return f'<dl class="kv">{items}</dl>'
    if isinstance(value, (list, tuple)):
        if not value:
            return '<span class="muted">-</span>'
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return ", ".join(esc(v) for v in value)
        return "".join(f"<div>{generic(v, depth=depth + 1)}</div>" for v in value)
    if value is None:
        return '<span class="muted">-</span>'
    return esc(value)


def _action_result(result: Any) -> str:
    mark = {"ok": "✓ ok", "failed": "✗ failed", "skipped": "&ndash; skipped", "planned": "? planned"}
    return f'<span class="r-{css_ident(str(result))}">{mark.get(str(result)) or esc(result)}</span>'


def _timeline(host: HostReport) -> list[tuple[str, str, str]]:
    """(when, what, result/reason) rows, already escaped, for each entry of the shared timeline."""
    rows: list[tuple[str, str, str]] = []
    for entry in timeline(host):
        record = entry.record
        if entry.kind == "phase":
            rows.append((_clock(entry.when), f'<span class="muted">phase</span> {esc(record.get("phase"))}', ""))
        elif entry.kind == "check":
            sigs = ", ".join(esc(s) for s in host.matched_signatures)
            rows.append(("", f"<b>check before</b>: {esc(_state(host.before))}", sigs or _NO_SIGNATURE))
        elif entry.kind == "note":
            rows.append(("", '<span class="muted">note</span>', esc(entry.text)))
        elif entry.kind == "action":
            detail = f" {esc(record.get('detail'))}" if record.get("detail") else ""
            why = f'<div class="why">why: {esc(record.get("reason", ""))}</div>' if record.get("reason") else ""
            when = _clock(entry.when) if entry.when is not None else esc(record.get("at", ""))
            what = f"<b>{esc(record.get('kind'))}</b> <code>{esc(record.get('target'))}</code>"
            rows.append((when, what, f"{_action_result(record.get('result'))}{detail}{why}"))
        elif entry.kind == "planned":
            what = f"(planned) <b>{esc(record.get('kind'))}</b> <code>{esc(record.get('target'))}</code>"
            rows.append(("", what, f'<div class="why">why: {esc(record.get("reason", ""))}</div>'))
        elif entry.kind == "after":
            after = host.after or {}
            rows.append(("", f"<b>check after</b>: {esc(_state(after))}", esc(after.get("reason", ""))))
    return rows


def _check_box(label: str, check: dict[str, Any] | None) -> str:
    if not check:
        return f'<div class="check"><div class="label">{esc(label)}</div><div class="code muted">&ndash;</div></div>'
    code = "timeout" if check.get("timed_out") else check.get("exit_code")
    state = str(check.get("state", "?"))
    fg, _, _ = outcome_colours(state)
    why = str(check.get("reason") or "")
    reason = f'<div class="muted">{esc(why)}</div>' if why and why != f"exit code {code}" else ""
    return (
        f'<div class="check"><div class="label">{esc(label)}</div>'
        f'<div class="code" style="color:{fg}">exit {esc(code)}</div><div>{badge(state)}</div>{reason}</div>'
    )


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
            + _table(["line", "signature and pattern", "output"], rows, num=(0,))
        )
    if excerpt.tail:
        note = excerpt.omitted_note()
        lines = ([f'<span class="muted">{esc(note)}</span>'] if note else []) + [_output_line(x) for x in excerpt.tail]
        out.append(f'<div class="muted">{esc(excerpt.tail_title())}</div>')
        out.append('<pre class="tail">' + "\n".join(lines) + "</pre>")
    return "".join(out)


def _guards(host: HostReport) -> str:
    """Warnings, breaker/hold/incident state and any fields this renderer does not know yet."""
    parts: list[str] = []
    if host.busy_holder:
        parts.append(f"<div><b>lock held by</b> {generic(host.busy_holder)}</div>")
    for warning in host.warnings:
        parts.append(f'<div class="warn">⚠ {esc(warning)}</div>')
    for f in dataclasses.fields(host):
        if f.name in _KNOWN_HOST_FIELDS:
            continue
        value = getattr(host, f.name)
        if value in (None, "", [], {}, 0, False):
            continue
        parts.append(f"<div><b>{esc(f.name)}</b> {generic(value)}</div>")
    if not parts:
        return ""
    guardy = any(_GUARD_WORDS.search(str(w)) for w in host.warnings) or len(parts) > len(host.warnings)
    title = "breaker / hold / incident state" if guardy else "warnings"
    return f'<div class="guards"><h3>{title}</h3>{"".join(parts)}</div>'


def _host_section(report: RunReport, host: HostReport, *, tail_lines: int) -> str:
    _, _, solid = outcome_colours(host.outcome)
    sub = f"{host.address} · {host.transport} · {host.runner}"
    if host.remote_version:
        sub += f" · agent {host.remote_version}"
    if host.started_at:
        sub += f" · started {host.started_at}"
    sub += f" · {host.duration:.1f}s"
    out = [
        f'<section class="host" id="{esc(host_anchor(host.host))}" data-check="host" style="--oc:{solid}">',
        f'<h2>{esc(host.host)} {badge(host.outcome)} <span class="sub">{esc(sub)}</span>'
        '<a class="toplink" href="#recap">↑ recap</a></h2>',
    ]
    if recap_reason(host):
        out.append(f'<div class="reason">{esc(recap_reason(host))}</div>')
    out.append(_guards(host))
    if host.before or host.after:
        out.append(
            f'<div class="checks">{_check_box("health check before", host.before)}'
            f'<div class="arrow">→</div>{_check_box("health check after", host.after)}</div>'
        )
    rows = _timeline(host)
    if rows:
        out.append("<h3>timeline (UTC)</h3>")
        out.append(
            _table(["when", "what", "result / reason"], [(f'<span class="mono">{w}</span>', a, b) for w, a, b in rows])
        )
    for label, check in (("check output before", host.before), ("check output after", host.after)):
        if check and (check.get("tail") or check.get("matches")):
            out.append(_output(label, output_excerpt(check, tail_lines=tail_lines)))
    if host.locks:
        out.append("<h3>locks</h3>")
        out.append(
            _table(
                ["lock", "pid", "verdict", "reason"],
                [
                    (
                        f"<code>{esc(lk.get('name'))}</code>",
                        esc(lk.get("pid") if lk.get("pid") is not None else "-"),
                        '<span class="r-failed">stale</span>' if lk.get("stale") else '<span class="r-ok">live</span>',
                        esc(lk.get("reason", "")),
                    )
                    for lk in host.locks
                ],
            )
        )
    out.append(_deploy(host))
    if host.files:
        file_rows = []
        for f in host.files:
            href = file_href(f.path)
            name = (
                f'<a href="{esc(href)}">{esc(f.name)}</a>'
                if href
                else f'{esc(f.name)} <span class="muted">(unsafe path, not linked)</span>'
            )
            size = f"{f.size:,}" + (" (tail)" if f.truncated else "")
            file_rows.append((name, esc(size), f'<code title="{esc(f.sha256)}">{esc(f.sha256[:16])}</code>'))
        out.append("<h3>collected files</h3>" + _table(["file", "bytes", "sha256"], file_rows, num=(1,)))
    if host.cron_runs:
        cron_rows = []
        for run in host.cron_runs:
            actions = "<br>".join(
                f"{esc(a.get('kind'))} <code>{esc(a.get('target'))}</code>: {_action_result(a.get('result'))}"
                + (f' <span class="why">— {esc(a.get("reason"))}</span>' if a.get("reason") else "")
                for a in run.get("actions", [])
            )
            cron_rows.append(
                (
                    f'<span class="mono">{esc(run.get("run_id"))}</span>',
                    esc(run.get("started_at") or ""),
                    badge(str(run.get("outcome"))),
                    esc(run.get("reason") or ""),
                    actions or '<span class="muted">-</span>',
                )
            )
        out.append("<h3>cron runs on the host (newest first)</h3>")
        out.append(_table(["run", "started", "outcome", "reason", "actions"], cron_rows))
    out.append("</section>")
    return "\n".join(p for p in out if p)


def _deploy(host: HostReport) -> str:
    out: list[str] = []
    if host.preflight:
        rows = [
            (
                esc(c.get("check")),
                '<span class="r-ok">ok</span>' if c.get("ok") else '<span class="r-failed">failed</span>',
                esc(c.get("detail", "")),
            )
            for c in host.preflight
        ]
        out.append("<h3>pre-flight</h3>" + _table(["check", "result", "detail"], rows))
    if host.changes:
        change_rows: list[tuple[str, str]] = []
        for c in host.changes:
            diff = ""
            if c.get("diff"):
                lines = []
                for line in str(c["diff"]).splitlines():
                    cls = "add" if line.startswith("+") else "del" if line.startswith("-") else ""
                    lines.append(f'<span class="{cls}">{esc(line)}</span>' if cls else esc(line))
                diff = '<pre class="diff">' + "\n".join(lines) + "</pre>"
            change_rows.append((badge(str(c.get("action"))), f"<code>{esc(c.get('item'))}</code>{diff}"))
        out.append("<h3>changes</h3>" + _table(["action", "item"], change_rows))
    return "".join(out)


def _recap(report: RunReport) -> str:
    rows = []
    for host in report.hosts:
        _, _, solid = outcome_colours(host.outcome)
        if host.actions:
            actions = ", ".join(
                f'<span class="nowrap">{esc(a.get("kind"))} {esc(a.get("target"))} '
                f"{_action_result(a.get('result'))}</span>"
                for a in host.actions
            )
        elif host.plan and host.plan.get("actions"):
            actions = ", ".join(f"would {esc(a.get('kind'))} {esc(a.get('target'))}" for a in host.plan["actions"])
        elif host.changes:
            changed = [c for c in host.changes if c.get("action") != "unchanged"]
            actions = ", ".join(f"{esc(c.get('action'))} {esc(c.get('item'))}" for c in changed) or "-"
        else:
            actions = "-"
        flags = " ⚠" if host.warnings else ""
        rows.append(
            f'<tr class="o-{css_ident(host.outcome)}" style="--oc:{solid}">'
            f'<td><a href="#{esc(host_anchor(host.host))}">{esc(host.host)}</a>{flags}</td>'
            f"<td>{badge(host.outcome)}</td>"
            f'<td class="nowrap">{esc(_state(host.before))}</td><td>{actions}</td>'
            f'<td class="nowrap">{esc(_state(host.after))}</td>'
            f'<td class="num">{host.duration:.1f}s</td><td>{esc(recap_reason(host))}</td></tr>'
        )
    head = "".join(
        f"<th{' class=num' if h == 'time' else ''}>{h}</th>"
        for h in ("host", "outcome", "before", "actions", "after", "time", "reason")
    )
    return f'<table class="recap"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _run_state(report: RunReport) -> str:
    """Run-wide state: interruption, incidents, an early stop, and fields not known here yet."""
    parts: list[str] = []
    if report.interrupted:
        parts.append("<div>Interrupted by the operator; unfinished hosts are marked interrupted.</div>")
    for f in dataclasses.fields(report):
        if f.name in _KNOWN_RUN_FIELDS:
            continue
        value = getattr(report, f.name)
        if value in (None, "", [], {}, 0, False):
            continue
        label = {"incidents": "common-cause incidents", "stopped_reason": "stopped early"}.get(f.name, f.name)
        parts.append(f"<div><b>{esc(label)}</b> {generic(value)}</div>")
    if not parts:
        return ""
    return f'<div class="guards" id="run-state"><h3>run state</h3>{"".join(parts)}</div>'


def _counts(report: RunReport) -> str:
    counts: dict[str, int] = {}
    for host in report.hosts:
        counts[host.outcome] = counts.get(host.outcome, 0) + 1
    return " ".join(f"{badge(o)}&nbsp;&times;{n}" for o, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def render_run_html(report: RunReport, *, tail_lines: int = TAIL_LINES) -> str:
    """One run as a self-contained HTML page: recap table, then one section per host.

    Args:
        report: The run.
        tail_lines: How many lines of each check output's tail to show (after its matched lines).

    Returns:
        The HTML document.
    """
    dry = " (dry run)" if report.options.get("dry_run") else ""
    state = "interrupted" if report.interrupted else "complete" if report.complete else "in progress"
    meta = (
        f"started {esc(report.started_at)}"
        + (f" · finished {esc(report.finished_at)}" if report.finished_at else "")
        + f" · {state} · exit code {esc(report.exit_code if report.exit_code is not None else '-')}"
        + f" · {len(report.hosts)} host{'s' if len(report.hosts) != 1 else ''}"
        + (f" · guardian {esc(report.guardian_version)}" if report.guardian_version else "")
        + ' · <a href="../index.html">all runs</a> · <a href="report.json">report.json</a>'
    )
    body = [
        f'<header class="top"><h1>Guardian {esc(report.command)} · {esc(report.run_id)}{dry}</h1>'
        f'<div class="meta">{meta}</div></header>',
        "<main>",
        f'<h2 id="recap">Recap <span class="sub">{_counts(report)}</span></h2>',
        _recap(report),
    ]
    body.append(_run_state(report))
    body.extend(_host_section(report, host, tail_lines=tail_lines) for host in report.hosts)
    body.append("</main>")
    body.append(
        "<footer>Exit codes: 0 every host ok · 2 a host needs attention · 4 a host unreachable or its key "
        "rejected. Output from hosts is shown with control characters made visible.</footer>"
    )
    return page(f"Guardian {report.command} {report.run_id}", "\n".join(body), expect=len(report.hosts))


def write_run_html(store: ReportStore, report: RunReport) -> Path:
    """Write ``reports/<run-id>/index.html`` atomically; returns its path."""
    path = store.run_dir(report.run_id) / "index.html"
    atomic_write(path, render_run_html(report).encode("utf-8"))
    return path
