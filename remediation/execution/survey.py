"""The blast-radius guard: one signature on too many hosts is an upstream outage, not N host
problems, and restarting everywhere would make a bad morning worse.

Pure decisions over what the survey of each host said; the fleet runner applies them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BlastGuard:
    """Treat a signature as a common-cause incident when it hits more than ``percent`` of the
    selected hosts (only when at least ``min_hosts`` are selected). ``force`` acts anyway."""

    percent: float = 50.0
    min_hosts: int = 4
    force: bool = False


def signature_verdicts(survey: Mapping[str, Sequence[str] | None], guard: BlastGuard) -> dict[str, str | None]:
    """For each signature seen so far: "incident", "ok", or None while it cannot be decided yet.

    ``survey`` maps every selected host to the signatures its check matched, or None while its
    check has not come back. A signature is decided as soon as the hosts still unknown cannot
    change the answer, so one hanging host does not hold the others up near a clear result.
    """
    total = len(survey)
    unknown = sum(1 for sigs in survey.values() if sigs is None)
    counts: dict[str, int] = {}
    for sigs in survey.values():
        for sig in set(sigs or ()):
            counts[sig] = counts.get(sig, 0) + 1
    verdicts: dict[str, str | None] = {}
    for sig, count in counts.items():
        if total < guard.min_hosts:
            verdicts[sig] = "ok"
        elif count * 100.0 / total > guard.percent:
            verdicts[sig] = "incident"
        elif (count + unknown) * 100.0 / total <= guard.percent:
            verdicts[sig] = "ok"
        else:
            verdicts[sig] = None
    return verdicts


def host_decision(signatures: Sequence[str], verdicts: Mapping[str, str | None]) -> tuple[bool, list[str]]:
    """(decidable, incident signatures among ``signatures``) for one host."""
    if any(verdicts.get(sig) is None for sig in signatures):
        return False, []
    return True, [sig for sig in signatures if verdicts.get(sig) == "incident"]


def batches_for(names: Sequence[str], serial: str | None) -> list[list[str]]:
    """Split hosts for rolling recovery: ``serial`` is a count ("2") or a share ("25%")."""
    if not serial:
        return [list(names)]
    text = serial.strip()
    try:
        size = max(1, -(-len(names) * int(text[:-1]) // 100)) if text.endswith("%") else int(text)
    except ValueError:
        raise ValueError(f"--serial {serial!r}: expected a number of hosts or a percentage like 25%") from None
    if size < 1:
        raise ValueError(f"--serial {serial!r}: must be at least 1")
    return [list(names[i : i + size]) for i in range(0, len(names), size)]
