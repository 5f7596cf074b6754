"""What every Guardian HTML page shares: the page chrome (a Content-Security-Policy, the one
inline script, the CSS), escaping, outcome colours and badges, anchors, links and tables.

A page needs nothing but itself: inline CSS, one tiny inline script, no external URL, and a
Content-Security-Policy that forbids every fetch, so it works from ``file://`` and a hostile
string cannot make it load anything. Everything that came from a host (output, reasons, file
names, even host names) is untrusted: control characters are made visible, then HTML-escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from .views.labels import Span, clean, outcome_title

# outcome -> (text colour, background, solid colour for heat-map cells)
OUTCOME_COLOURS: dict[str, tuple[str, str, str]] = {
    "healthy": ("#116329", "#dafbe1", "#4ac26b"),
    "healed": ("#0a4a1f", "#aceebb", "#1b7c83"),
    "still-degraded": ("#7d4e00", "#fff1b3", "#d4a72c"),
    "still-unhealthy": ("#a40e26", "#ffdcd7", "#cf222e"),
    "degraded": ("#7d4e00", "#fff8c5", "#e3b341"),
    "unhealthy": ("#a40e26", "#ffebe9", "#fa4549"),
    "unexpected": ("#6639ba", "#fbefff", "#8250df"),
    "deferred": ("#7d4e00", "#fff1b3", "#bf8700"),
    "busy": ("#0550ae", "#ddf4ff", "#218bff"),
    "untrusted": ("#a40e26", "#ffdcd7", "#a40e26"),
    "failed": ("#a40e26", "#ffdcd7", "#a40e26"),
    "interrupted": ("#8c1d73", "#ffeff7", "#bf3989"),
    "unreachable": ("#ffffff", "#a40e26", "#82071e"),
    "host-key-rejected": ("#ffffff", "#82071e", "#4c0010"),
    "pending": ("#57606a", "#eaeef2", "#afb8c1"),
    "running": ("#57606a", "#eaeef2", "#afb8c1"),
    "changed": ("#0a4a1f", "#aceebb", "#1a7f37"),
    "unchanged": ("#116329", "#dafbe1", "#2da44e"),
    "would-change": ("#7d4e00", "#fff8c5", "#e3b341"),
    "removed": ("#0a4a1f", "#aceebb", "#1a7f37"),
    "preflight-failed": ("#a40e26", "#ffdcd7", "#cf222e"),
    "collected": ("#116329", "#dafbe1", "#6fdd8b"),
    "in-sync": ("#116329", "#dafbe1", "#2da44e"),
    "drifted": ("#7d4e00", "#fff8c5", "#d4a72c"),
    "not-deployed": ("#7d4e00", "#fff8c5", "#e3b341"),
    "held": ("#0550ae", "#ddf4ff", "#54aeff"),
    "released": ("#116329", "#dafbe1", "#8ddb8c"),
    "skipped": ("#57606a", "#eaeef2", "#8c959f"),
    "surveyed": ("#57606a", "#f6f8fa", "#d0d7de"),
}
_UNKNOWN_COLOURS = ("#24292f", "#eaeef2", "#8c959f")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")

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
.recap .r-ok, .recap .r-planned { font-weight: 400; }
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
.r-ok { color: #1a7f37; font-weight: 600; } .r-failed, .r-blocked, .r-refused { color: #cf222e; font-weight: 600; }
.r-deferred { color: #9a6700; font-weight: 600; }
.r-skipped, .r-planned { color: var(--muted); font-weight: 600; }
.r-started { color: #9a6700; font-weight: 600; } .r-interrupted { color: #8c1d73; font-weight: 600; }
.r-warning { color: #7d4e00; font-weight: 600; }
.why { color: var(--muted); }
.muted { color: var(--muted); }
.toplink { float: right; font-size: 12px; font-weight: 400; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 4px 0; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; }
.legend { display: flex; gap: 8px; flex-wrap: wrap; margin: 6px 0 10px; }
footer { color: var(--muted); font-size: 12px; padding: 0 28px 24px; }
"""


def esc(value: object) -> str:
    """Untrusted text for HTML: control characters made visible, then escaped (quotes too)."""
    return html.escape(clean(str(value)), quote=True)


def css_ident(value: str) -> str:
    """A string reduced to characters safe in a CSS class name."""
    return re.sub(r"[^a-z0-9-]", "-", value.lower())[:40] or "unknown"


def outcome_colours(outcome: str) -> tuple[str, str, str]:
    """(text, background, solid) colours for an outcome; grey for unknown outcomes."""
    return OUTCOME_COLOURS.get(outcome, _UNKNOWN_COLOURS)


def badge(outcome: str, *, title: str = "") -> str:
    """An outcome as a coloured pill; its tooltip says what the outcome means, unless ``title`` is given."""
    fg, bg, _ = outcome_colours(outcome)
    title = title or outcome_title(outcome)
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


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "", num: Sequence[int] = ()) -> str:
    """A table; ``rows`` cells are already-escaped HTML."""
    head = "".join(f"<th{' class=num' if i in num else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in num else ''}>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


#: How the view model's text roles are set.
_ROLE_TAGS = {"muted": ('<span class="muted">', "</span>"), "strong": ("<b>", "</b>"), "code": ("<code>", "</code>")}


def spans_html(spans: Iterable[Span], *, sep: str = "") -> str:
    """Spans of the view model as escaped HTML, set by role, an action result coloured by its class."""
    out = []
    for span in spans:
        if span.result:
            out.append(f'<span class="r-{css_ident(span.result)}">{esc(span.text)}</span>')
            continue
        start, end = _ROLE_TAGS.get(span.role, ("", ""))
        out.append(f"{start}{esc(span.text)}{end}")
    return sep.join(out)
