"""A host's timeline: its phases, checks, plan notes and actions, in the order they happened,
as rows both views show (only the markup differs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..records import ActionRecord, CheckRecord, HostRecord, PlannedActionRecord
from .labels import Span, clock, command_line, state_label, verify_line

#: Which phase each kind of timeline entry happens in (the runner's phases, in its order).
#: Entries whose phase is missing (old reports, a run cut short) fall back along the list.
_OWNER_PHASES: Mapping[str, tuple[str, ...]] = {
    "check": ("check",),
    "note": ("check",),
    "planned": ("check",),
    "action": ("recover", "check"),
    "after": ("verify", "settle", "recover"),
}


@dataclass(frozen=True)
class TimelineRow:
    """One row of a host's timeline: when, what, and its result, detail and reason.

    ``kind`` is ``phase``, ``check`` (before), ``note``, ``action``, ``planned`` or ``after``;
    ``result`` is an action's result (``ok``, ``blocked``, ...); ``ran`` the command it ran.
    """

    kind: str
    when: str
    what: tuple[Span, ...]
    result: str = ""
    detail: tuple[Span, ...] = ()
    why: str = ""
    ran: str = ""


@dataclass(frozen=True)
class _Item:
    kind: str
    when: float | None
    row: TimelineRow
    phase: str = ""  # for a phase: its name


def _time(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None


def timeline(host: HostRecord) -> list[TimelineRow]:
    """Phases, checks, notes and actions in the order they happened.

    Order comes from structure, not from comparing clocks: phases keep the order the runner
    announced them in, and every other entry is listed inside the phase it belongs to (the
    check's result and the plan's notes in ``check``, actions in ``recover``, the re-check in
    ``verify``). Times cannot decide this: a phase is stamped by the controller when it reads the
    event, an action by the host's clock, so an action can carry an earlier or equal time than
    the phase that contains it. Within a phase, actions keep their recorded time order.
    """
    phases = []
    for p in host["phases"]:
        when = _time(p.get("t"))
        what = (Span("phase", "muted"), Span(" "), Span(str(p.get("phase"))))
        phases.append(_Item("phase", when, TimelineRow("phase", clock(when), what), phase=str(p.get("phase"))))
    first: dict[str, int] = {}
    for index, item in enumerate(phases):
        first.setdefault(item.phase, index)
    items: list[_Item] = []
    before, after, plan = host["before"], host["after"], host["plan"] or {}
    if before:
        items.append(_Item("check", None, _check_row("check", "check before", before, host["matched_signatures"])))
    for note in plan.get("notes") or []:
        items.append(_Item("note", None, TimelineRow("note", "", (Span("note", "muted"),), detail=(Span(str(note)),))))
    actions = [_action_item(a) for a in host["actions"]]
    items += sorted(actions, key=lambda e: e.when if e.when is not None else float("-inf"))
    if not host["actions"]:
        items += [_planned_item(a) for a in plan.get("actions") or []]
    if after:
        row = _check_row("after", "check after", after, None)
        verify = host.get("verify")
        if verify and (len(verify.get("passes") or []) > 1 or verify.get("stable") is False):
            text = verify_line(verify)
            row = TimelineRow(row.kind, row.when, row.what, detail=(*row.detail, Span(text)))
        items.append(_Item("after", None, row))

    inside: dict[int, list[_Item]] = {}
    for item in items:
        inside.setdefault(_owner(item, first, phases), []).append(item)
    rows = [i.row for i in inside.get(-1, [])]
    for index, phase in enumerate(phases):
        rows.append(phase.row)
        rows += [i.row for i in inside.get(index, [])]
    return rows


def _check_row(kind: str, label: str, check: CheckRecord, signatures: Sequence[str] | None) -> TimelineRow:
    what = (Span(label, "strong"), Span(f": {state_label(check)}"))
    if signatures is not None:  # the first check: what it matched
        detail = (Span(", ".join(signatures)),) if signatures else (Span("no signature matched", "muted"),)
        return TimelineRow(kind, "", what, detail=detail)
    reason = str(check.get("reason") or "")
    informative = reason and not reason.startswith("exit code ")
    return TimelineRow(kind, "", what, detail=(Span(reason),) if informative else ())


def _action_item(action: ActionRecord) -> _Item:
    when = _time(action.get("t"))
    what = (Span(str(action.get("kind")), "strong"), Span(" "), Span(str(action.get("target")), "code"))
    detail: tuple[Span, ...] = (Span(str(action.get("detail"))),) if action.get("detail") else ()
    hooks = hook_lines(action)
    if hooks:
        detail += (Span(f"{'; ' if detail else ''}{'; '.join(hooks)}", "muted"),)
    row = TimelineRow(
        "action",
        clock(when) if when is not None else str(action.get("at") or ""),
        what,
        result=str(action.get("result")),
        detail=detail,
        why=str(action.get("reason") or ""),
        ran=_commands(action),
    )
    return _Item("action", when, row)


def hook_lines(action: ActionRecord) -> list[str]:
    """What the service's hooks said around a restart: ``pre_restart ok: 0 open orders cancelled``."""
    lines = []
    for name in ("safe_to_restart", "pre_restart", "post_restart"):
        hook = action.get(name)
        if not isinstance(hook, Mapping):
            continue
        said = [line.strip() for line in str(hook.get("output") or "").splitlines() if line.strip()]
        ended = (
            "ok"
            if hook.get("ok")
            else "timed out"
            if hook.get("timed_out")
            else f"FAILED (exit {hook.get('exit_code')})"
        )
        lines.append(f"{name} {ended}" + (f": {said[-1][:160]}" if said else ""))
    return lines


def _commands(action: ActionRecord | PlannedActionRecord) -> str:
    """The commands an action ran (or would run), as a shell would chain them
    (``systemctl reset-failed uw-daemon && systemctl restart uw-daemon``), and why the manager was
    reached the second way when it was (``supervisorctl``: supervisord's socket was not usable)."""
    before = action.get("commands_before") or []
    lines = [command_line(c) for c in before] + [command_line(action.get("command"))]
    ran = " && ".join(line for line in lines if line)
    if ran and action.get("via_reason"):
        ran += f" (not XML-RPC: {action['via_reason']})"
    return ran


def _planned_item(action: PlannedActionRecord) -> _Item:
    what = (
        Span("(planned) "),
        Span(str(action.get("kind")), "strong"),
        Span(" "),
        Span(str(action.get("target")), "code"),
    )
    ran = _commands(action) or (f"no command: {action['command_error']}" if action.get("command_error") else "")
    row = TimelineRow("planned", "", what, why=str(action.get("reason") or ""), ran=ran)
    return _Item("planned", None, row)


def _owner(item: _Item, first: Mapping[str, int], phases: Sequence[_Item]) -> int:
    """The index of the phase ``item`` is listed in (-1: before every phase)."""
    for name in _OWNER_PHASES.get(item.kind, ()):
        if name in first:
            return first[name]
    if item.when is not None:
        earlier = [i for i, p in enumerate(phases) if p.when is not None and p.when <= item.when]
        return earlier[-1] if earlier else -1
    return len(phases) - 1
