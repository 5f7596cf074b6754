"""What the benchmark must show (issue 18's targets), written as data and checked on the summary.

A target compares medians of runs that all succeeded at one size: a peer against another (or
against the fastest of several), a peer's measure against a ceiling, the time per host at one
size against another, or one run kind against another. A size is a row label (``"40"``,
``"40-nopid"``; a bare label also finds its ``-nopid`` row when only that one was run) or
:data:`LATENCY`, the first size measured through the latency proxy. A target whose runs are
missing or failed is "not measured", never met. Targets are printed with their numbers, never
asserted in tests: the machine is shared, only ratios within one run mean anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

LATENCY = "latency"
#: The other tools Guardian is compared with.
OTHER_TOOLS = ("ansible", "pyinfra", "openssh")
NOPID = "-nopid"
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
    if size.endswith("*"):  # the first mode measured: where ansible and the dry-run pair run
        return next((r["size"] for r in rows if r["size"] in (size[:-1], f"{size[:-1]}{NOPID}")), None)
    labels = {r["size"] for r in rows}
    return size if size in labels or f"{size}{NOPID}" not in labels else f"{size}{NOPID}"


def _title(size: str, label: str | None, claim: str, measured: bool) -> str:
    if size == LATENCY:
        return f"{label}: {claim}" if measured else f"latency size: {claim}"
    if "@" in size or (label or size).endswith(NOPID):
        return f"{label or size.rstrip('*')}: {claim}"
    return f"{size.rstrip('*')} hosts: {claim}"


def _row(rows: Sequence[Row], size: str | None, peer: str) -> Row | None:
    """The row of ``peer`` at ``size`` if every one of its runs succeeded."""
    return next((r for r in rows if r["size"] == size and r["peer"] == peer and r["ok"] == r["runs"]), None)


@dataclass(frozen=True)
class Ratio:
    """``peer``'s ``measure`` (median time by default) over ``against``'s (the lowest of them, if
    several) within a bound."""

    claim: str
    size: str
    peer: str
    against: tuple[str, ...]
    at_most: float | None = None
    at_least: float | None = None
    shown: str = "{:.2f}x"  # how the ratio is printed
    measure: str = "median"
    unit: str = "s"

    def evaluate(self, rows: Sequence[Row]) -> Outcome:
        label = _size_label(self.size, rows)
        mine = _row(rows, label, self.peer)
        found = [r for r in (_row(rows, label, p) for p in self.against) if r is not None]
        base = min(found, key=lambda r: r[self.measure]) if found else None
        if mine is None or base is None:
            return _title(self.size, label, self.claim, False), None, NOT_MEASURED
        ratio = mine[self.measure] / base[self.measure]
        met = (self.at_most is None or ratio <= self.at_most) and (self.at_least is None or ratio >= self.at_least)
        named = f"{base['peer']} " if len(self.against) > 1 else ""
        numbers = (
            f"{mine[self.measure]:.2f}{self.unit} / {named}{base[self.measure]:.2f}{self.unit} "
            f"= {self.shown.format(ratio)}"
        )
        return _title(self.size, label, self.claim, True), met, numbers


@dataclass(frozen=True)
class Ceiling:
    """``peer``'s ``measure`` (a summary column, e.g. ``rss1``) below ``below`` (or at it, with
    ``inclusive``)."""

    claim: str
    size: str
    peer: str
    measure: str
    below: float
    unit: str
    inclusive: bool = False
    shown: str = "{:.0f}"

    def evaluate(self, rows: Sequence[Row]) -> Outcome:
        label = _size_label(self.size, rows)
        mine = _row(rows, label, self.peer)
        if mine is None or mine.get(self.measure) is None:
            return _title(self.size, label, self.claim, False), None, NOT_MEASURED
        value = mine[self.measure]
        met = value <= self.below if self.inclusive else value < self.below
        return _title(self.size, label, self.claim, True), met, f"{self.shown.format(value)} {self.unit}"


@dataclass(frozen=True)
class PerHost:
    """``peer``'s time per host at ``size`` no worse than (at most ``slack`` x) at ``than``."""

    claim: str
    size: str
    than: str
    peer: str
    slack: float = 1.0

    def evaluate(self, rows: Sequence[Row]) -> Outcome:
        label = _size_label(self.size, rows)
        other = f"{self.than}{NOPID}" if label and label.endswith(NOPID) else self.than  # the same mode
        big, small = _row(rows, label, self.peer), _row(rows, other, self.peer)
        if big is None or small is None:
            return _title(self.size, label, self.claim, False), None, NOT_MEASURED
        per_big = big["median"] / _hosts(big["size"]) * 1000
        per_small = small["median"] / _hosts(small["size"]) * 1000
        numbers = f"{per_big:.0f} ms/host vs {per_small:.0f} ms/host at {small['size']}"
        return _title(self.size, label, self.claim, True), per_big <= per_small * self.slack, numbers


def _hosts(label: str) -> int:
    """The host count of a row label: ``200-nopid`` -> 200, ``20@50ms`` -> 20."""
    return int(label.removesuffix(NOPID).split("@")[0])


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


def _direct_targets(size: str) -> tuple[Target, ...]:
    """40 hosts direct, in one pid-file mode: the installed runner against the peers and the floor."""
    return (
        Ratio("guardian-installed <= 0.85x pyinfra", size, "guardian-installed", ("pyinfra",), at_most=0.85),
        Ratio("guardian-installed <= 0.85x plain OpenSSH", size, "guardian-installed", ("openssh",), at_most=0.85),
        Ratio("guardian-installed <= 1.3x the shell-job floor", size, "guardian-installed", ("floor",), at_most=1.3),
    )


def _latency_targets(size: str) -> tuple[Target, ...]:
    return (
        Ratio("guardian-installed <= 0.85x pyinfra", size, "guardian-installed", ("pyinfra",), at_most=0.85),
        Ratio("guardian-installed <= 1.0x plain OpenSSH", size, "guardian-installed", ("openssh",), at_most=1.0),
    )


def _host_cpu_targets(size: str) -> tuple[Target, ...]:
    """A healthy host's CPU for the whole run (runner + check), as the host counts it: the
    ``runner_cpu`` each runner reports (its own and its children's CPU). The on-host column
    beside it also holds sshd's share and the app's idle daemons over the run."""
    return (
        Ceiling(
            "healthy host runner+check CPU <= 0.10 CPU-s, installed",
            size,
            "guardian-installed",
            "runner_cpu_healthy",
            below=0.10,
            unit="CPU-s",
            inclusive=True,
            shown="{:.3f}",
        ),
        Ceiling(
            "healthy host runner+check CPU <= 0.15 CPU-s, streamed",
            size,
            "guardian",
            "runner_cpu_healthy",
            below=0.15,
            unit="CPU-s",
            inclusive=True,
            shown="{:.3f}",
        ),
    )


def _controller_cpu_targets(size: str) -> tuple[Target, ...]:
    return tuple(
        Ratio(
            f"controller CPU per host: {peer} <= pyinfra",
            size,
            peer,
            ("pyinfra",),
            at_most=1.0,
            measure="cpu",
            unit=" CPU-s",
        )
        for peer in ("guardian", "guardian-installed")
    )


TARGETS: tuple[Target, ...] = (
    *_direct_targets("40-nopid"),
    *_direct_targets("40"),
    *_latency_targets("20@50ms"),
    *_latency_targets("40@50ms"),
    *_host_cpu_targets("40-nopid"),
    *_host_cpu_targets("40"),
    *_controller_cpu_targets("40-nopid"),
    *_controller_cpu_targets("40"),
    Ceiling("Guardian controller peak RSS < 150 MB", "200", "guardian", "rss1", below=150, unit="MB"),
    PerHost("Guardian time per host no worse than at 40", "200", "40", "guardian"),
    Ratio("ansible-core / Guardian >= 12", "40*", "ansible", ("guardian-installed",), at_least=12, shown="{:.1f}"),
    Faster("--dry-run faster than a healthy real run", "40*", "guardian-dry", than="guardian-healthy"),
)


def evaluate(rows: Sequence[Row], targets: Sequence[Target] = TARGETS) -> list[Outcome]:
    """Every target checked on the summary ``rows``, in order; a target that resolves to the same
    rows as an earlier one (``40`` falls back to ``40-nopid`` when only that mode ran) once."""
    outcomes = [target.evaluate(rows) for target in targets]
    return [o for i, o in enumerate(outcomes) if o not in outcomes[:i]]
