"""A check's output reduced to what an operator needs: the lines that matched a signature first,
then a bounded tail, and how much of the output is not shown.

Both views (terminal and HTML) show this excerpt; only the markup differs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import CheckRecord

#: Lines of a check's output shown after its matched lines, and characters shown per line.
TAIL_LINES = 40
LINE_CHARS = 400


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


def output_excerpt(check: CheckRecord, *, tail_lines: int = TAIL_LINES) -> OutputExcerpt:
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
