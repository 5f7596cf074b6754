"""Guards kept on the host, shared by cron and laptop runs: the restart budget (circuit
breaker) and maintenance holds. State lives in the app's state dir, so it survives reboots and
every runner on the host sees the same history.

The decisions (:func:`breaker_open`, :func:`active_hold`) are pure; reading and writing the
state files is kept apart.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, Iterable, List, Optional

from .atomic import write_atomic
from .records import record

BREAKER_FILE = "guardian-breaker.json"
HOLD_FILE = "guardian-hold.json"


@record(frozen=True)
class BreakerState:
    """One service's recent restarts and whether its budget is spent."""

    service: str
    open: bool
    recent: List[float]  # epoch seconds of restarts inside the window, oldest first
    max_restarts: int
    window: float

    def describe(self) -> str:
        stamps = ", ".join(time.strftime("%H:%M:%S", time.gmtime(t)) for t in self.recent)
        return (
            f"{len(self.recent)} restart(s) of {self.service} in the last {self.window / 60:g} min "
            f"(budget {self.max_restarts}): {stamps or 'none'} UTC"
        )

    def to_dict(self) -> Dict[str, Any]:
        return {
            "service": self.service,
            "open": self.open,
            "recent": self.recent,
            "max_restarts": self.max_restarts,
            "window": self.window,
            "description": self.describe(),
        }


def breaker_open(service: str, history: List[float], *, now: float, max_restarts: int, window: float) -> BreakerState:
    """Pure: is the restart budget of ``service`` spent? (``max_restarts`` within ``window``)."""
    recent = sorted(t for t in history if now - window < t <= now + 60)
    return BreakerState(service, max_restarts > 0 and len(recent) >= max_restarts, recent, max_restarts, window)


def breaker_states(
    state_dir: str, services: Iterable[str], *, now: float, max_restarts: int, window: float
) -> Dict[str, BreakerState]:
    """Each service's restart budget, from the host's restart history."""
    history = load_restart_history(state_dir)
    return {
        name: breaker_open(name, history.get(name, []), now=now, max_restarts=max_restarts, window=window)
        for name in services
    }


def _read_json(path: str) -> Dict[str, Any]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json(path: str, data: Dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, sort_keys=True))


def load_restart_history(state_dir: str) -> Dict[str, List[float]]:
    data = _read_json(os.path.join(state_dir, BREAKER_FILE))
    history = data.get("restarts", {})
    if not isinstance(history, dict):
        return {}
    return {
        str(k): [float(t) for t in v if isinstance(t, (int, float))] for k, v in history.items() if isinstance(v, list)
    }


def record_restart(state_dir: str, service: str, *, now: float, window: float) -> None:
    """Append a restart to the host's history (pruned to the window). Call under the host lock."""
    history = load_restart_history(state_dir)
    kept = [t for t in history.get(service, []) if now - t < max(window, 1.0)]
    history[service] = [*kept, now]
    _write_json(os.path.join(state_dir, BREAKER_FILE), {"restarts": history})


def reset_breakers(state_dir: str) -> bool:
    """Forget every restart (``invoke recover --reset-breaker``). Returns whether there was any."""
    path = os.path.join(state_dir, BREAKER_FILE)
    if os.path.exists(path):
        os.unlink(path)
        return True
    return False


@record(frozen=True)
class Hold:
    """A maintenance hold: every runner skips the host until ``until``."""

    until: float
    reason: str
    by: str
    since: float

    def to_dict(self) -> Dict[str, Any]:
        return {
            "until": self.until,
            "until_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.until)),
            "reason": self.reason,
            "by": self.by,
            "since": self.since,
        }


def active_hold(data: Dict[str, Any], *, now: float) -> Optional[Hold]:
    """Pure: the hold described by ``data`` if it has not expired yet."""
    try:
        hold = Hold(
            float(data["until"]), str(data.get("reason", "")), str(data.get("by", "")), float(data.get("since", 0))
        )
    except (KeyError, TypeError, ValueError):
        return None
    return hold if hold.until > now else None


def read_hold(state_dir: str, *, now: float) -> Optional[Hold]:
    return active_hold(_read_json(os.path.join(state_dir, HOLD_FILE)), now=now)


def write_hold(state_dir: str, hold: Hold) -> None:
    _write_json(
        os.path.join(state_dir, HOLD_FILE),
        {"until": hold.until, "reason": hold.reason, "by": hold.by, "since": hold.since},
    )


def release_hold(state_dir: str) -> bool:
    path = os.path.join(state_dir, HOLD_FILE)
    if os.path.exists(path):
        os.unlink(path)
        return True
    return False
