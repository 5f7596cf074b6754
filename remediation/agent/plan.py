"""The decision: from a check result, the signatures and the host's facts to an ordered plan.

Everything here is a pure function of plain data. A real run applies the plan, ``--dry-run``
prints it, and reports explain each action with the plan's reasons, so the three never disagree.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .guards import BreakerState
from .locks import LockVerdict
from .records import asdict, field, record
from .safety import answer_text
from .signatures import Signature, SignatureMatch

HEALTHY, DEGRADED, UNHEALTHY, UNEXPECTED = "healthy", "degraded", "unhealthy", "unexpected"


@record(frozen=True)
class CheckState:
    """What one health-check run said, reduced to what the decision needs."""

    state: str
    reason: str


def check_state(exit_code: Optional[int], *, timed_out: bool = False, error: str = "") -> CheckState:
    """Map the check's exit code to a state, as the seed does (0/1/2, anything else unexpected)."""
    if error:
        return CheckState(UNEXPECTED, error)
    if timed_out:
        return CheckState(UNEXPECTED, "the health check did not finish before its timeout")
    if exit_code == 0:
        return CheckState(HEALTHY, "exit code 0")
    if exit_code == 1:
        return CheckState(DEGRADED, "exit code 1")
    if exit_code == 2:
        return CheckState(UNHEALTHY, "exit code 2")
    return CheckState(UNEXPECTED, f"unexpected exit code {exit_code}")


@record(frozen=True)
class RestartGate:
    """Whether a planned restart may go ahead now: its quiet windows and its ``safe_to_restart``
    answer, decided from facts gathered before the plan (see :func:`restart_gate`)."""

    service: str
    deferred: bool
    kind: str = ""  # why not: "quiet-window" | "unsafe"
    reason: str = ""
    notes: Tuple[str, ...] = ()  # what was overridden, what the precondition said
    detail: Dict[str, Any] = field(default_factory=dict)  # {"window": ..., "safe_to_restart": ...}


def restart_gate(
    service: str,
    window: Optional[Mapping[str, Any]],
    precondition: Optional[Mapping[str, Any]],
    *,
    override_windows: bool,
    override_unsafe: bool,
) -> RestartGate:
    """Pure: the gate of one restart from its window verdict (``windows.WindowVerdict.to_dict``)
    and its precondition's answer (``safety.HookRun.to_dict``; None: none configured).

    A quiet window defers unless ``override_windows`` (``--force``); a window that cannot be judged
    (unknown zone) defers too, never restarts blind. A ``safe_to_restart`` that does not say go
    defers unless ``override_unsafe`` (``--force-unsafe``), which the cron runner never sets."""
    notes: List[str] = []
    detail: Dict[str, Any] = {}
    reasons: List[Tuple[str, str]] = []
    if window is not None:
        detail["window"] = dict(window)
        if window.get("quiet"):
            shown = _window_text(window)
            if override_windows:
                notes.append(f"{service}: {shown}: overridden by --force")
            else:
                reasons.append(("quiet-window", f"{shown} (a restart now needs --force)"))
    if precondition is not None:
        detail["safe_to_restart"] = dict(precondition)
        said = answer_text(precondition)
        if precondition.get("ok"):
            notes.append(f"{service}: safe_to_restart says go ({said})")
        elif override_unsafe:
            notes.append(f"{service}: safe_to_restart said no ({said}): overridden by --force-unsafe")
        else:
            reasons.append(("unsafe", f"safe_to_restart said no: {said}"))
    if not reasons:
        return RestartGate(service, False, notes=tuple(notes), detail=detail)
    return RestartGate(
        service,
        True,
        reasons[0][0],
        "; ".join(text for _, text in reasons),
        tuple(notes),
        detail,
    )


def _window_text(window: Mapping[str, Any]) -> str:
    spec = window.get("window") or {}
    days = spec.get("days") or []
    days_text = "daily" if len(days) == 7 else ",".join(days)
    label = f"{spec.get('name')}: " if spec.get("name") else ""
    where = f"{label}{spec.get('start')}-{spec.get('end')} {spec.get('tz')} ({days_text})"
    if window.get("problem"):
        return f"quiet window {where} cannot be judged on this host ({window['problem']})"
    until = f" until {window['until']}" if window.get("until") else ""
    return f"in quiet window {where}{until}"


@record
class PlannedAction:
    """One step of a plan, with the reason an operator will read in the report."""

    kind: str  # "remove_lock" | "restart" | "defer" | "breaker_open" | "alert"
    target: str
    reason: str
    detail: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@record
class Plan:
    """What Guardian will do on one host, in order, and whether it re-checks afterwards."""

    state: str
    recover: bool
    actions: List[PlannedAction]
    settle_seconds: float
    notes: List[str] = field(default_factory=list)
    #: Recovery was called for, but everything it would do is held back (a common-cause
    #: incident): nothing is changed, so nothing is waited for or re-checked.
    held_back: bool = False

    @property
    def verify(self) -> bool:
        return self.recover

    def to_dict(self) -> Dict[str, Any]:
        return {
            "state": self.state,
            "recover": self.recover,
            "verify": self.verify,
            "settle_seconds": self.settle_seconds,
            "actions": [a.to_dict() for a in self.actions],
            "notes": list(self.notes),
            "held_back": self.held_back,
        }


def decide(
    state: CheckState,
    matches: Sequence[SignatureMatch],
    locks: Sequence[LockVerdict],
    signatures: Sequence[Signature],
    services: Sequence[str],
    *,
    settle_seconds: float,
    force: bool = False,
    only: Sequence[str] = (),
    suppress: Mapping[str, str] | None = None,
    breakers: Mapping[str, BreakerState] | None = None,
    gates: Mapping[str, RestartGate] | None = None,
) -> Plan:
    """Decide what to do on one host.

    The seed's order: clear stale locks (always, when recovering), then each matched
    signature's actions in rules order (UW restart before the Alpaca alert and re-init), then
    wait ``settle_seconds`` and re-run the check.

    Args:
        state: the first check's state.
        matches: signature matches in the check output.
        locks: every lock in the lock dir with its verdict.
        signatures: the rules, in order.
        services: logical service names this host defines.
        settle_seconds: the stabilisation wait before verification.
        force: recover whatever the check said (``invoke recover``): every signature's actions.
        only: limit recovery to these steps: ``locks`` and/or signature names.
        suppress: signature name -> why its actions must not run here (a common-cause incident).
        breakers: service -> restart budget state; a spent budget blocks the restart.
        gates: service -> whether its restart may go ahead now (quiet window, safe_to_restart);
            a deferred restart becomes a ``defer`` step (an alert file, nothing restarted).
    """
    notes: List[str] = []
    if not force and state.state == HEALTHY:
        return Plan(state.state, False, [], settle_seconds, ["healthy: nothing to do"])
    if not force and state.state == UNEXPECTED:
        return Plan(
            state.state,
            False,
            [],
            settle_seconds,
            [f"no recovery: {state.reason} (only exit codes 1 and 2 trigger recovery)"],
        )
    wanted = set(only)
    actions: List[PlannedAction] = []
    if not wanted or "locks" in wanted:
        for verdict in locks:
            if verdict.stale:
                actions.append(
                    PlannedAction(
                        "remove_lock",
                        verdict.lock.name,
                        f"stale lock: {verdict.reason}",
                        {"path": verdict.lock.path, "content": verdict.lock.content[:512]},
                    )
                )
            else:
                notes.append(f"lock {verdict.lock.name} kept: {verdict.reason}")
    by_signature: Dict[str, List[SignatureMatch]] = {}
    for match in matches:
        by_signature.setdefault(match.signature, []).append(match)
    restarted: List[str] = []
    held_back = False
    for signature in signatures:
        hits = by_signature.get(signature.name)
        if not hits and not force:
            continue
        if wanted and signature.name not in wanted:
            continue
        if suppress and signature.name in suppress:
            notes.append(f"{signature.name}: actions suppressed: {suppress[signature.name]}")
            held_back = True
            continue
        if hits:
            first = hits[0]
            line = first.line.strip()[:160]
            why = f"{signature.name}: line {first.line_no} matched /{first.pattern}/: {line}"
        else:
            why = f"{signature.name}: forced recovery"
        for rule_action in signature.actions:
            kind = "restart" if rule_action.kind == "restart" else "alert"
            if kind == "restart":
                if rule_action.target not in services:
                    notes.append(
                        f"{signature.name} asks to restart {rule_action.target!r}, which this "
                        f"host does not define (services: {', '.join(services) or 'none'})"
                    )
                    continue
                if rule_action.target in restarted:
                    continue
                restarted.append(rule_action.target)
                breaker = (breakers or {}).get(rule_action.target)
                if breaker is not None and breaker.open:
                    actions.append(
                        PlannedAction(
                            "breaker_open",
                            rule_action.target,
                            f"{why}; restart NOT done: restart budget spent: {breaker.describe()}",
                            {"signature": signature.name, "breaker": breaker.to_dict()},
                        )
                    )
                    continue
                gate = (gates or {}).get(rule_action.target)
                if gate is not None:
                    notes.extend(gate.notes)
                    if gate.deferred:
                        actions.append(
                            PlannedAction(
                                "defer",
                                rule_action.target,
                                f"{why}; restart deferred: {gate.reason}",
                                {"signature": signature.name, "defer": gate.kind, "gate": gate.detail},
                            )
                        )
                        continue
                    if gate.detail:
                        actions.append(
                            PlannedAction(
                                kind, rule_action.target, why, {"signature": signature.name, "gate": gate.detail}
                            )
                        )
                        continue
            actions.append(PlannedAction(kind, rule_action.target, why, {"signature": signature.name}))
    if not matches and not force:
        notes.append("no known failure signature matched; clearing stale locks and re-checking")
    elif not actions and held_back:
        # Everything it would have done is held back (a common-cause incident): nothing changes
        # on this host, so there is nothing to wait for and nothing to re-check.
        return Plan(state.state, False, [], settle_seconds, notes, held_back=True)
    return Plan(state.state, True, actions, settle_seconds, notes)


def final_outcome(
    before: CheckState,
    after: Optional[CheckState],
    *,
    dry_run: bool,
    held_back: bool = False,
    deferred: bool = False,
    unstable: Sequence[str] = (),
    service_down: bool = False,
) -> str:
    """The host's outcome from the first check and (when recovery ran) the verification.

    A host whose recovery was all held back stays what its check said (``still-*``). Healed means
    stable: a check that passes while a restarted service died, hung or failed its post_restart
    hook (``unstable``; ``service_down`` for the first two) is never ``healed``. A host still not
    healthy because a restart was put off on purpose (``deferred``) is ``deferred``."""
    if before.state == UNEXPECTED and after is None:
        return "unexpected"
    if held_back and not dry_run and before.state in (DEGRADED, UNHEALTHY):
        return f"still-{before.state}"
    if dry_run:
        return before.state
    if after is None:
        return "deferred" if deferred else before.state
    if after.state == HEALTHY:
        if unstable:
            return "still-unhealthy" if service_down or before.state == UNHEALTHY else "still-degraded"
        return "healthy" if before.state == HEALTHY else "healed"
    if deferred and not unstable:
        return "deferred"
    if after.state == DEGRADED:
        return "still-unhealthy" if service_down else "still-degraded"
    if after.state == UNHEALTHY:
        return "still-unhealthy"
    return "unexpected"


def outcome_reason(
    outcome: str,
    after: Optional[CheckState],
    plan: Plan,
    failed: Sequence[str] = (),
    *,
    unstable: Sequence[str] = (),
    deferred: Sequence[str] = (),
) -> str:
    """The one line an operator reads next to the outcome: why a recovered host is still not
    healthy (what the re-check said, which actions failed, what did not stay up), why a restart
    was deferred and when Guardian tries again, or why nothing was done."""
    if plan.held_back:
        return "; ".join(plan.notes)
    if outcome == "deferred" or (deferred and outcome in (DEGRADED, UNHEALTHY)):  # a dry run: would defer
        why = "; ".join(deferred) if outcome == "deferred" else "a real run would defer: " + "; ".join(deferred)
        if after is not None:
            why += f"; the check still gives {after.reason}"
        return why
    if unstable and outcome.startswith("still-"):
        why = "not stable after recovery: " + "; ".join(unstable)
        if after is not None and after.state != HEALTHY:
            why += f"; the check gives {after.reason}"
        return why + (f"; failed: {', '.join(failed)}" if failed else "")
    if after is not None and outcome not in ("healthy", "healed"):
        why = f"after recovery the check still gives {after.reason}"
        why += f"; failed: {', '.join(failed)}" if failed else ""
        # What Guardian deliberately left alone may be the cause: say so.
        left_alone = [n for n in plan.notes if not n.startswith("no known failure signature")]
        return why + (f"; left alone: {'; '.join(left_alone)}" if left_alone else "")
    return plan.notes[0] if plan.notes and not plan.actions else ""
