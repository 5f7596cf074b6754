"""What the benchmark must show (issue 7's targets), written as data and checked on the summary.

A target compares medians of runs that all succeeded at one size: a peer against another (or
against the fastest of several), a peer's measure against a ceiling, or one run kind against
another. A size is a label (``"40"``) or :data:`LATENCY`, the first size measured through the
latency proxy. A target whose runs are missing or failed is "not measured", never met.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

LATENCY = "latency"
#: The other tools Guardian is compared with (the floor is Guardian's own runner).
OTHER_TOOLS = ("ansible", "pyinfra", "openssh")
NOT_MEASURED = "not measured (or a run failed)"

Row = dict[str, Any]  # one summary row: size, peer, runs, ok, median, rss1, ... (see summary.summarize)
Outcome = tuple[str, bool | None, str]  # (target, met? None: not measured, the numbers)


class Target(Protocol):
    def evaluate(self, rows: Sequence[Row]) -> Outcome:
        """Whether the summary ``rows`` meet this target, and the numbers that say so."""
        ...


def _size_label(size: str, rows: Sequence[Row]) -> str | None:
    """The row label of ``size``: itself, or for :data:`LATENCY` the first latency size measured."""
    if size == LATENCY:
        return next((r["size"] for r in rows if "@" in r["size"]), None)
    return size


def _title(size: str, label: str | None, claim: str, measured: bool) -> str:
    if size == LATENCY:
        return f"{label}: {claim}" if measured else f"latency size: {claim}"
    return f"{size} hosts: {claim}"


def _row(rows: Sequence[Row], size: str | None, peer: str) -> Row | None:
    """The row of ``peer`` at ``size`` if every one of its runs succeeded."""
    return next((r for r in rows if r["size"] == size and r["peer"] == peer and r["ok"] == r["runs"]), None)


@dataclass(frozen=True)
class Ratio:
    """``peer``'s median over ``against``'s (the fastest of them, if several) within a bound."""

    claim: str
    size: str
    peer: str
    against: tuple[str, ...]
    at_most: float | None = None
    at_least: float | None = None
    shown: str = "{:.2f}x"  # how the ratio is printed

    def evaluate(self, rows: Sequence[Row]) -> Outcome:
        label = _size_label(self.size, rows)
        mine = _row(rows, label, self.peer)
        found = [r for r in (_row(rows, label, p) for p in self.against) if r is not None]
        base = min(found, key=lambda r: r["median"]) if found else None
        if mine is None or base is None:
            return _title(self.size, label, self.claim, False), None, NOT_MEASURED
        ratio = mine["median"] / base["median"]
        met = (self.at_most is None or ratio <= self.at_most) and (self.at_least is None or ratio >= self.at_least)
        named = f"{base['peer']} " if len(self.against) > 1 else ""
        numbers = f"{mine['median']:.2f}s / {named}{base['median']:.2f}s = {self.shown.format(ratio)}"
        return _title(self.size, label, self.claim, True), met, numbers


@dataclass(frozen=True)
class Ceiling:
    """``peer``'s ``measure`` (a summary column, e.g. ``rss1``) below ``below``."""

    claim: str
    size: str
    peer: str
    measure: str
    below: float
    unit: str

    def evaluate(self, rows: Sequence[Row]) -> Outcome:
        label = _size_label(self.size, rows)
        mine = _row(rows, label, self.peer)
        if mine is None:
            return _title(self.size, label, self.claim, False), None, NOT_MEASURED
        value = mine[self.measure]
        return _title(self.size, label, self.claim, True), value < self.below, f"{value:.0f} {self.unit}"


@dataclass(frozen=True)
class Faster:
    """``peer``'s median below ``than``'s at the same size."""

    claim: str
    size: str
    peer: str
    than: str

    def evaluate(self, rows: Sequence[Row]) -> Outcome:
        label = _size_label(self.size, rows)
        mine, other = _row(rows, label, self.peer), _row(rows, label, self.than)
        if mine is None or other is None:
            return _title(self.size, label, self.claim, False), None, NOT_MEASURED
        numbers = f"{mine['median']:.2f}s vs {other['median']:.2f}s"
        return _title(self.size, label, self.claim, True), mine["median"] < other["median"], numbers


TARGETS: tuple[Target, ...] = (
    Ratio("Guardian <= 1.2x floor", "40", "guardian", ("floor",), at_most=1.2),
    Ratio("Guardian <= 0.85x best peer", "40", "guardian", OTHER_TOOLS, at_most=0.85),
    Ratio("Guardian <= 0.85x best peer", LATENCY, "guardian", OTHER_TOOLS, at_most=0.85),
    Ratio("ansible / Guardian >= 10", "40", "ansible", ("guardian",), at_least=10, shown="{:.1f}"),
    Ceiling("Guardian peak RSS < 100 MB", "100", "guardian", "rss1", below=100, unit="MB"),
    Faster("--dry-run faster than a healthy real run", "40", "guardian-dry", than="guardian-healthy"),
)


def evaluate(rows: Sequence[Row], targets: Sequence[Target] = TARGETS) -> list[Outcome]:
    """Every target checked on the summary ``rows``, in order."""
    return [target.evaluate(rows) for target in targets]
