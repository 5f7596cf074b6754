"""The events the on-host runner sends the controller: their kinds, fields and constructors.

The runner writes one JSON object per line on stdout, ``{"event": KIND, ...fields, "t": time}``
(``t`` is added by the emitter when the event has none of its own). The constructors below are
the only place the runner builds them, and the readers are what the controller
(``remediation.execution.hostrun``) takes out of them, so both sides of the SSH boundary use one
set of names. The records inside (check, plan, action, result) are described for report.json by
``docs/report.schema.json``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

Event = Dict[str, Any]

START = "start"  # the runner is up: hostname, version, dry_run
PHASE = "phase"  # a step begins: lock, check, gate, recover, settle, verify, collect, preflight, ...
CHECK = "check"  # a health-check run: which ("before" or "after") and the check's record
PLAN = "plan"  # the decision: state, recover, verify, settle_seconds, actions, notes, held_back
GATE = "gate"  # waiting for the controller's go/no-go on these signatures (blast-radius guard)
ACTION = "action"  # an action record: "started" before it runs, then its result; "planned" on a dry run
CONFIRM = "confirm"  # a restarted service after the settle: confirmed or not, and its pid
RESULT = "result"  # the run's record: outcome, reason, actions, locks, ... (last but for files)
FILE = "file"  # a collected file: name, size, mtime, truncated, sha256, data_b64
PREFLIGHT = "preflight"  # deploy: the pre-flight checks
CHANGE = "change"  # deploy: one item compared or changed

#: Each kind with the fields it always carries (besides ``event`` and ``t``).
FIELDS: Dict[str, Tuple[str, ...]] = {
    START: ("version", "dry_run"),  # and "hostname", except from deploy
    PHASE: ("phase",),
    CHECK: (
        "which",
        "argv",
        "exit_code",
        "timed_out",
        "error",
        "duration",
        "output_bytes",
        "tail",
        "matches",
        "state",
        "reason",
    ),
    PLAN: ("state", "recover", "verify", "settle_seconds", "actions", "notes", "held_back"),
    GATE: ("signatures",),
    ACTION: ("kind", "target", "reason", "result"),
    CONFIRM: ("service", "confirmed", "pid"),
    RESULT: ("outcome", "reason"),
    FILE: ("name", "size", "mtime", "truncated", "sha256", "data_b64"),
    PREFLIGHT: ("checks",),
    CHANGE: ("item", "action", "detail"),
}
KINDS: Tuple[str, ...] = tuple(FIELDS)

#: Results an action record can carry: "started" is written before the action runs; "deferred"
#: a restart put off on purpose (quiet window, safe_to_restart, pre_restart).
STARTED, PLANNED, DEFERRED = "started", "planned", "deferred"


# -- the runner's side: building events ---------------------------------------------------------


def start(*, version: str, dry_run: bool, hostname: Optional[str] = None) -> Event:
    event: Event = {"event": START, "version": version, "dry_run": dry_run}
    if hostname is not None:
        event["hostname"] = hostname
    return event


def phase(name: str) -> Event:
    return {"event": PHASE, "phase": name}


def check(which: str, record: Mapping[str, Any]) -> Event:
    return {"event": CHECK, "which": which, **record}


def plan(record: Mapping[str, Any]) -> Event:
    return {"event": PLAN, **record}


def gate(signatures: Sequence[str]) -> Event:
    return {"event": GATE, "signatures": list(signatures)}


def action(record: Mapping[str, Any]) -> Event:
    return {"event": ACTION, **record}


def planned(step: Mapping[str, Any]) -> Event:
    """A dry run's action: what would be done, why, and the exact command when there is one."""
    event: Event = {
        "event": ACTION,
        "kind": step["kind"],
        "target": step["target"],
        "result": PLANNED,
        "reason": step["reason"],
    }
    for key in ("command", "commands_before", "command_error"):
        if key in step:
            event[key] = step[key]
    return event


def confirm(service: str, confirmed: bool, pid: Optional[int]) -> Event:
    return {"event": CONFIRM, "service": service, "confirmed": confirmed, "pid": pid}


def result(record: Mapping[str, Any]) -> Event:
    """The run's record; its files travel as their own events."""
    return {"event": RESULT, **{k: v for k, v in record.items() if k != "files"}}


def file(item: Mapping[str, Any]) -> Event:
    return {"event": FILE, **item}


def preflight(checks: List[Dict[str, Any]]) -> Event:
    return {"event": PREFLIGHT, "checks": checks}


def change(item: Mapping[str, Any]) -> Event:
    return {"event": CHANGE, **item}


# -- the controller's side: reading them ---------------------------------------------------------


def kind(event: Mapping[str, Any]) -> Optional[str]:
    value = event.get("event")
    return value if isinstance(value, str) else None


def check_record(event: Mapping[str, Any]) -> Dict[str, Any]:
    """A check event's record as the report keeps it (no envelope, no ``which``)."""
    return {k: v for k, v in event.items() if k not in ("event", "which", "t")}


def plan_record(event: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("event", "t")}


def action_record(event: Mapping[str, Any]) -> Dict[str, Any]:
    """An action event's record (its ``t`` is the action's own start time, so it stays)."""
    return {k: v for k, v in event.items() if k != "event"}
