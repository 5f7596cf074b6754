"""The words and marks both views use for report data: clocks, durations, check states, action
results, outcomes, what an action did and why a host ended as it did, and :class:`Span`, a
piece of text with how it is set. Defined once here, so that the terminal and the HTML page call
everything the same.
"""

from __future__ import annotations

import re
import shlex
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...agent.outcomes import DESCRIPTIONS, EXIT_CODES, EXIT_USAGE
from ..records import ActionRecord, CheckRecord, CronActionRecord, HostRecord
from ..report import HostReport

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: What the exit codes a run's report can carry mean (a usage error writes no report).
EXIT_CODES_HELP = "; ".join(f"{code}: {text}" for code, text in EXIT_CODES.items() if code != EXIT_USAGE)


def clean(text: str) -> str:
    """Make control characters (ANSI escapes included) visible instead of interpreting them."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass(frozen=True)
class Span:
    """A piece of text and how it is set: ``role`` is ``muted``, ``strong``, ``code`` or plain;
    ``result`` names an action result the renderers colour it by."""

    text: str
    role: str = ""
    result: str = ""


def plain(spans: Iterable[Span]) -> str:
    """Spans as one plain string."""
    return "".join(s.text for s in spans)


def clock(value: object) -> str:
    """An epoch time as ``13:30:03`` (UTC); nothing for no time; a value that is not a time as it is."""
    if not value:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return str(value)
    try:
        return time.strftime("%H:%M:%S", time.gmtime(float(value)))
    except (ValueError, OverflowError, OSError):
        return str(value)


def seconds(value: float) -> str:
    """A duration as the recap shows it: ``4.2s``."""
    return f"{value:.1f}s"


def exit_label(check: CheckRecord) -> str:
    """A check's exit code, or ``timeout``."""
    return "timeout" if check.get("timed_out") else str(check.get("exit_code"))


def state_label(check: CheckRecord | None) -> str:
    """A check's state with its exit code: ``unhealthy (2)``, ``unexpected (timeout)``; ``-`` for none."""
    if not check:
        return "-"
    return f"{check.get('state', '?')} ({exit_label(check)})"


def outcome_title(outcome: str) -> str:
    """What an outcome means, for a legend or a tooltip (``""`` for one Guardian does not know)."""
    return DESCRIPTIONS.get(outcome, "")


def outcome_counts(outcomes: Iterable[str]) -> list[tuple[str, int]]:
    """How many hosts ended with each outcome, the most common first."""
    return sorted(Counter(outcomes).items(), key=lambda kv: -kv[1])


def counts_label(counts: Iterable[tuple[str, int]]) -> str:
    """Counts of outcomes (:func:`outcome_counts`) in words: ``2 healed, 1 unreachable``."""
    return ", ".join(f"{n} {outcome}" for outcome, n in counts)


@dataclass(frozen=True)
class ResultMark:
    """How an action's result is marked. A ``spelled`` result is written out in the recap too
    (``restart trading-bot ✗ BLOCKED``): it changes what the operator has to do."""

    symbol: str
    spelled: bool = False


#: The mark of every action result (``agent.outcomes.ACTION_RESULTS``).
RESULT_MARKS: Mapping[str, ResultMark] = {
    "ok": ResultMark("✓"),
    "failed": ResultMark("✗"),
    "skipped": ResultMark("-"),
    "planned": ResultMark("?"),
    "blocked": ResultMark("✗", spelled=True),
    "refused": ResultMark("✗", spelled=True),
    "deferred": ResultMark("◷", spelled=True),
    "started": ResultMark("…", spelled=True),
    "interrupted": ResultMark("✗", spelled=True),
}


def verify_line(verify: Mapping[str, Any]) -> str:
    """The verification after recovery in a line: ``2/2 passing check(s) in a row over 5 s: stable``."""
    passes = verify.get("passes") or []
    passed = sum(1 for p in passes if isinstance(p, Mapping) and p.get("state") == "healthy")
    stable = verify.get("stable")
    state = "stable" if stable else "NOT stable" if stable is False else "not finished"
    window = verify.get("window") or 0
    return f"{passed}/{verify.get('passes_wanted', len(passes))} passing check(s) in a row over {window:g} s: {state}"


def result_text(result: str) -> str:
    """A result as the timeline shows it: ``✓ ok``, ``✗ blocked``."""
    mark = RESULT_MARKS.get(result)
    return f"{mark.symbol} {result}" if mark else result


def action_summary(kind: object, target: object, result: str) -> str:
    """An action as the recap lists it: ``restart uw-daemon ✓``, ``restart trading-bot ✗ BLOCKED``."""
    mark = RESULT_MARKS.get(result)
    if mark is None:
        return f"{kind} {target}"
    return f"{kind} {target} {mark.symbol}" + (f" {result.upper()}" if mark.spelled else "")


def command_line(command: object) -> str:
    """A command record (``{"argv": [...]}``, ``{"signal": "SIGTERM", "pid": N}`` or XML-RPC calls
    ``{"rpc": [{"method", "args"}...], "socket": PATH}``) as an operator reads it: the shell line,
    or the calls and the socket they went to (no program ran); nothing if there is none."""
    if not isinstance(command, Mapping):
        return ""
    argv = command.get("argv")
    if isinstance(argv, list) and argv:
        return shlex.join(str(a) for a in argv)
    if command.get("signal") and command.get("pid") is not None:
        return f"kill -{str(command['signal']).removeprefix('SIG')} {command['pid']}"
    calls = command.get("rpc")
    if isinstance(calls, list) and calls:
        shown = "; ".join(
            f"{c.get('method')}({', '.join(repr(a) for a in c.get('args') or [])})"
            for c in calls
            if isinstance(c, Mapping)
        )
        return f"{shown} (XML-RPC on {command.get('socket')})"
    return ""


def action_phrase(action: ActionRecord) -> str:
    """What an action did, in a few words: ``restarted uw-daemon``, ``removed stale lock x.lock``."""
    kind, target, result = str(action.get("kind")), str(action.get("target")), action.get("result")
    if kind == "breaker_open" or result == "blocked":
        breaker = action.get("breaker")
        if isinstance(breaker, Mapping) and isinstance(breaker.get("recent"), list):
            window = breaker.get("window")
            span = f" in {window:g} s" if isinstance(window, (int, float)) else ""
            return f"restart of {target} blocked: breaker open ({len(breaker['recent'])} restarts{span})"
        return f"restart of {target} blocked: breaker open"
    if result == "refused":  # the detail's first clause says why: "uw-daemon.service is masked ..."
        why = str(action.get("detail") or "").split(";", 1)[0].split(" (", 1)[0]
        return f"restart of {target} refused: {why}" if why else f"restart of {target} refused"
    if result == "deferred":  # the detail says why: "safe_to_restart said no: exit 1: 3 orders in flight"
        why = str(action.get("detail") or "")[:200]
        return f"restart of {target} deferred: {why}" if why else f"restart of {target} deferred"
    if result != "ok":
        return f"{kind} {target}: {result}"
    return {
        "restart": f"restarted {target}",
        "remove_lock": f"removed stale lock {target}",
        "alert": f"wrote alert {target}",
    }.get(kind, f"{kind} {target}")


def _blocked(action: ActionRecord) -> bool:
    """A restart Guardian held back: its breaker was open, or its manager refused it."""
    return action.get("kind") == "breaker_open" or action.get("result") in ("blocked", "refused")


def recap_reason(host: HostReport | HostRecord) -> str:
    """The line next to a host's outcome in the recap.

    A healed host says what was healed and what the re-check said; a restart the breaker
    blocked is always named with the breaker's count, whatever the outcome; otherwise it is the
    runner's reason (why the host is still not healthy, unreachable, busy, ...).
    """
    record = host.to_dict() if isinstance(host, HostReport) else host
    reason = record["reason"]
    parts = [reason] if reason else []
    blocked = [action_phrase(a) for a in record["actions"] if _blocked(a)]
    if record["outcome"] == "healed":
        parts += [action_phrase(a) for a in record["actions"] if a.get("result") == "ok"]
        parts += blocked
        parts.append(f"re-check {(record['after'] or {}).get('state', 'healthy')}")
    else:
        parts += [b for b in blocked if b not in reason]
    return "; ".join(parts)


def actions_text(actions: Iterable[ActionRecord | CronActionRecord]) -> str:
    """Actions in one line, for a history cell: ``restart uw-daemon: ok, alert alpaca_sip: ok``."""
    return ", ".join(f"{a.get('kind')} {a.get('target')}: {a.get('result')}" for a in actions)
