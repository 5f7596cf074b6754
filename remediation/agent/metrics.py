"""Prometheus metrics of the last Guardian run on this host, for node_exporter's textfile collector.

Every run (cron's included) rewrites ``guardian.prom`` in the metrics directory atomically: the
text goes to a temporary file in the same directory whose name does not end in ``.prom`` (the
collector reads only ``*.prom``), then is renamed over the old one, so the collector never reads
half a file. The format is Prometheus' text exposition format, version 0.0.4.
Standard library only.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .atomic import write_atomic
from .outcomes import OUTCOMES

METRICS_FILE = "guardian.prom"
#: The metrics directory when ``metrics_dir`` is not set, inside Guardian's own directory.
DEFAULT_METRICS_SUBDIR = "metrics"


def metrics_dir(app_dir: str, guardian_dir: str, setting: str) -> str:
    """Where guardian.prom goes: ``metrics_dir`` (relative to the app dir), else ``guardian_dir/metrics``."""
    if not setting:
        return os.path.join(guardian_dir, DEFAULT_METRICS_SUBDIR)
    return os.path.join(app_dir, os.path.expanduser(setting))


Labels = Sequence[Tuple[str, str]]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Family:
    def __init__(self, name: str, help_text: str, kind: str = "gauge") -> None:
        self.name = name
        self.lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def add(self, value: float, labels: Labels = ()) -> None:
        rendered = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels)
        series = f"{self.name}{{{rendered}}}" if rendered else self.name
        self.lines.append(f"{series} {_number(value)}")


def render_metrics(record: Mapping[str, Any], *, now: float, bundle: str = "dev") -> str:
    """The metrics of one finished run record (what the runner journals), as exposition text."""
    runner = str(record.get("runner", "laptop"))
    base: List[Tuple[str, str]] = [("runner", runner)]
    families: List[_Family] = []

    info = _Family("guardian_info", "Guardian's version and the digest of its on-host runner.")
    info.add(1, [("version", str(record.get("version", "?"))), ("bundle", bundle)])
    families.append(info)

    last = _Family("guardian_last_run_timestamp_seconds", "When the last Guardian run on this host finished.")
    last.add(now, base)
    families.append(last)

    duration = _Family("guardian_last_run_duration_seconds", "How long the last Guardian run took.")
    duration.add(float(record.get("duration", 0.0)), base)
    families.append(duration)

    outcome = _Family("guardian_last_run_outcome", "1 for the outcome of the last run, 0 for every other outcome.")
    current = str(record.get("outcome", "failed"))
    for name in OUTCOMES:
        outcome.add(1 if name == current else 0, [*base, ("outcome", name)])
    families.append(outcome)

    exit_codes = _Family("guardian_check_exit_code", "The health check's exit code before and after recovery.")
    for phase in ("before", "after"):
        check = record.get(phase)
        code = check.get("exit_code") if isinstance(check, dict) else None
        if isinstance(code, int):
            exit_codes.add(code, [*base, ("check", phase)])
    families.append(exit_codes)

    restarts = _Family("guardian_last_run_restarts", "Restarts started by the last run, per service.")
    counts: Dict[str, int] = {}
    for action in record.get("actions", []):
        if action.get("kind") == "restart":
            counts[str(action.get("target"))] = counts.get(str(action.get("target")), 0) + 1
    for service, count in sorted(counts.items()):
        restarts.add(count, [*base, ("service", service)])
    families.append(restarts)

    breakers = record.get("breakers") or {}
    budget = _Family("guardian_restart_budget_used", "Restarts inside the restart budget's window, per service.")
    tripped = _Family("guardian_breaker_open", "1 when a service's restart budget is spent (restarts blocked).")
    for service, state in sorted(breakers.items()):
        budget.add(len(state.get("recent", [])), [("service", str(service))])
        tripped.add(1 if state.get("open") else 0, [("service", str(service))])
    families += [budget, tripped]

    hold = _Family("guardian_hold", "1 while a maintenance hold keeps Guardian off this host.")
    hold.add(1 if record.get("hold") else 0)
    families.append(hold)
    return "\n".join(line for family in families for line in family.lines) + "\n"


def write_metrics(directory: str, text: str) -> Optional[str]:
    """Atomically replace ``directory/guardian.prom``; returns an error message instead of raising."""
    path = os.path.join(directory, METRICS_FILE)
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        # The temporary name ends in .tmp, so node_exporter (which reads *.prom) never reads it.
        write_atomic(path, text, mode=0o644, durable=True)
    except OSError as exc:
        return f"metrics not written to {path}: {exc.strerror or exc}"
    return None
