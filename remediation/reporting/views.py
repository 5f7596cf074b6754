"""The view model the terminal (render.py) and the HTML page (html.py) both show.

Timeline order, the one-line reason next to each host's outcome and the excerpt of a check's
output are decided here, once, from report data; the renderers only choose the markup. So the
two views cannot disagree about what happened first or why a host ended as it did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .report import HostReport

#: Which phase each kind of timeline entry happens in (the runner's phases, in its order).
#: Entries whose phase is missing (old reports, a run cut short) fall back along the list.
_OWNER_PHASES: Mapping[str, tuple[str, ...]] = {
    "check": ("check",),
    "note": ("check",),
    "planned": ("check",),
    "action": ("recover", "check"),
    "after": ("verify", "settle", "recover"),
}
#: Lines of a check's output shown after its matched lines, and characters shown per line.
TAIL_LINES = 40
LINE_CHARS = 400


@dataclass(frozen=True)
class TimelineEntry:
    """One row of a host's timeline.

    ``kind`` is ``phase``, ``check`` (before), ``note``, ``action``, ``planned`` or ``after``;
    ``record`` is the phase, check or action dict it shows (empty for a note, whose ``text`` is
    the note); ``when`` is its epoch time when one was recorded.
    """

    kind: str
    when: float | None
    record: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""


def _time(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def timeline(host: HostReport) -> list[TimelineEntry]:
    """Phases, checks, notes and actions in the order they happened.

    Order comes from structure, not from comparing clocks: phases keep the order the runner
    announced them in, and every other entry is listed inside the phase it belongs to (the
    check's result and the plan's notes in ``check``, actions in ``recover``, the re-check in
    ``verify``). Times cannot decide this: a phase is stamped by the controller when it reads the
    event, an action by the host's clock, so an action can carry an earlier or equal time than
    the phase that contains it. Within a phase, actions keep their recorded time order.
    """
    phases = [TimelineEntry("phase", _time(p.get("t")), p) for p in host.phases]
    first: dict[str, int] = {}
    for index, entry in enumerate(phases):
        first.setdefault(str(entry.record.get("phase")), index)
    items: list[TimelineEntry] = []
    if host.before:
        items.append(TimelineEntry("check", None, host.before))
    items += [TimelineEntry("note", None, text=str(note)) for note in (host.plan or {}).get("notes", [])]
    actions = [TimelineEntry("action", _time(a.get("t")), a) for a in host.actions]
    items += sorted(actions, key=lambda e: e.when if e.when is not None else float("-inf"))
    if not host.actions and host.plan:
        items += [TimelineEntry("planned", None, a) for a in host.plan.get("actions", [])]
    if host.after:
        items.append(TimelineEntry("after", None, host.after))

    inside: dict[int, list[TimelineEntry]] = {}
    for item in items:
        inside.setdefault(_owner(item, first, phases), []).append(item)
    rows = list(inside.get(-1, []))
    for index, phase in enumerate(phases):
        rows.append(phase)
        rows += inside.get(index, [])
    return rows


def _owner(item: TimelineEntry, first: Mapping[str, int], phases: Sequence[TimelineEntry]) -> int:
    """The index of the phase ``item`` is listed in (-1: before every phase)."""
    for name in _OWNER_PHASES.get(item.kind, ()):
        if name in first:
            return first[name]
    if item.when is not None:
        earlier = [i for i, p in enumerate(phases) if p.when is not None and p.when <= item.when]
        return earlier[-1] if earlier else -1
    return len(phases) - 1


def action_phrase(action: Mapping[str, Any]) -> str:
    """What an action did, in a few words: ``restarted uw-daemon``, ``removed stale lock x.lock``."""
    kind, target = str(action.get("kind")), str(action.get("target"))
    if kind == "breaker_open" or action.get("result") == "blocked":
        breaker = action.get("breaker")
        if isinstance(breaker, Mapping) and isinstance(breaker.get("recent"), list):
            window = _time(breaker.get("window"))
            span = f" in {window:g} s" if window is not None else ""
            return f"restart of {target} blocked: breaker open ({len(breaker['recent'])} restarts{span})"
        return f"restart of {target} blocked: breaker open"
    if action.get("result") != "ok":
        return f"{kind} {target}: {action.get('result')}"
    return {
        "restart": f"restarted {target}",
        "remove_lock": f"removed stale lock {target}",
        "alert": f"wrote alert {target}",
    }.get(kind, f"{kind} {target}")


def recap_reason(host: HostReport) -> str:
    """The line next to a host's outcome in the recap.

    A healed host says what was healed and what the re-check said; a restart the breaker
    blocked is always named with the breaker's count, whatever the outcome; otherwise it is the
    runner's reason (why the host is still not healthy, unreachable, busy, ...).
    """
    parts = [host.reason] if host.reason else []
    blocked = [
        action_phrase(a) for a in host.actions if a.get("kind") == "breaker_open" or a.get("result") == "blocked"
    ]
    if host.outcome == "healed":
        parts += [action_phrase(a) for a in host.actions if a.get("result") == "ok"]
        parts += blocked
        parts.append(f"re-check {(host.after or {}).get('state', 'healthy')}")
    else:
        parts += [b for b in blocked if b not in host.reason]
    return "; ".join(parts)


@dataclass(frozen=True)
class OutputLine:
    """A line of check output as shown: at most ``LINE_CHARS`` characters (``cut`` more exist),
    with the signatures that matched it and, for a matched line, each one's pattern."""

    text: str
    line_no: int | None = None
    signatures: tuple[str, ...] = ()
    cut: int = 0
    patterns: tuple[str, ...] = ()  # one per signature, for the matched lines


@dataclass(frozen=True)
class OutputExcerpt:
    """A check's output reduced to what an operator needs: the matched lines first, then a
    bounded tail, and how much was left out."""

    matched: list[OutputLine]
    tail: list[OutputLine]
    kept_lines: int  # lines of the tail the report holds
    output_bytes: int  # the whole output's size on the host
    kept_bytes: int

    @property
    def omitted(self) -> int:
        return self.kept_lines - len(self.tail)

    def tail_title(self) -> str:
        """``last 40 of 1,702 lines`` and, when the host kept only a tail, of how much."""
        title = f"last {len(self.tail)} of {self.kept_lines:,} line{'s' if self.kept_lines != 1 else ''}"
        if self.output_bytes > self.kept_bytes:
            title += f" kept (the output's last {self.kept_bytes:,} of {self.output_bytes:,} bytes)"
        return title

    def omitted_note(self) -> str:
        """Says how many lines are not shown, or nothing when the whole tail is."""
        if not self.omitted:
            return ""
        return f"[{self.omitted:,} earlier line{'s' if self.omitted != 1 else ''} not shown]"


def _line(
    text: str, line_no: int | None = None, signatures: tuple[str, ...] = (), patterns: tuple[str, ...] = ()
) -> OutputLine:
    text = text.rstrip("\r\n")
    cut = max(0, len(text) - LINE_CHARS)
    return OutputLine(text[:LINE_CHARS], line_no, signatures, cut, patterns)


def output_excerpt(check: Mapping[str, Any], *, tail_lines: int = TAIL_LINES) -> OutputExcerpt:
    """The matched lines (with their line numbers, one entry per line) and the last
    ``tail_lines`` lines of the kept tail, each marked with the signatures it matched."""
    by_line: dict[tuple[int | None, str], dict[str, str]] = {}  # (line no, line) -> signature: pattern
    for match in check.get("matches", []) or []:
        line_no = match.get("line_no")
        key = (int(line_no) if isinstance(line_no, int) else None, str(match.get("line", "")).rstrip("\r\n"))
        by_line.setdefault(key, {}).setdefault(str(match.get("signature")), str(match.get("pattern", "")))
    matched = [
        _line(text, no, tuple(found), tuple(found.values()))
        for (no, text), found in sorted(by_line.items(), key=_line_order)
    ]
    hits: dict[str, tuple[str, ...]] = {}
    for (_, text), found in by_line.items():
        hits[text] = tuple(dict.fromkeys((*hits.get(text, ()), *found)))
    tail = str(check.get("tail") or "")
    kept_bytes = len(tail.encode("utf-8", errors="replace"))
    output_bytes = int(check.get("output_bytes") or kept_bytes)
    lines = tail.splitlines()
    if output_bytes > kept_bytes and len(lines) > 1:
        lines = lines[1:]  # the kept tail starts inside a line: do not show half of it
    shown = lines[-tail_lines:] if tail_lines > 0 else []
    return OutputExcerpt(
        matched=matched,
        tail=[_line(text, None, hits.get(text.rstrip("\r\n"), ())) for text in shown],
        kept_lines=len(lines),
        output_bytes=max(output_bytes, kept_bytes),
        kept_bytes=kept_bytes,
    )


def _line_order(item: tuple[tuple[int | None, str], dict[str, str]]) -> tuple[int, str]:
    (line_no, text), _ = item
    return (line_no if line_no is not None else 1 << 62, text)
