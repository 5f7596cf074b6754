"""Quiet windows: times, in a named time zone, when a service must not be restarted without
``--force`` (e.g. ``trading-bot`` not between 09:30 and 16:00 America/New_York on weekdays).

Pure functions of a window and an aware instant (the clock is always passed in, so tests can
stand on either side of a DST change). Times are compared on the zone's wall clock, which is
what makes 09:30 New York mean 14:30 UTC in winter and 13:30 UTC in summer. A window whose end
is before its start runs over midnight and belongs to the day it starts on. Standard library
only (``zoneinfo``, Python >= 3.9).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, Tuple

from .cronblock import ScheduleError
from .cronexpr import zone
from .records import record

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
_TIME = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")
_KEYS = ("name", "services", "days", "start", "end", "tz")


class WindowError(ValueError):
    """A quiet window is malformed; ``key`` names the part (``start``, ``days``...)."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


def _clock(value: Any, key: str) -> dt.time:
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise WindowError(f"expected a time of day HH:MM (24 h), got {value!r}", key)
    return dt.time(int(match.group(1)), int(match.group(2)))


def _days(value: Any) -> FrozenSet[int]:
    """``mon-fri``, ``sat,sun``, ``["mon", "wed"]``, ``daily`` or ``*`` -> weekday numbers."""
    if value is None or value in ("*", "daily"):
        return frozenset(range(7))
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise WindowError(f"expected days like mon-fri, sat,sun or daily, got {value!r}", "days")
    days: Set[int] = set()
    for item in items:
        first, _, last = str(item).strip().lower().partition("-")
        ends = [first[:3], last[:3] if last else first[:3]]
        if any(end not in DAY_NAMES for end in ends):
            raise WindowError(f"unknown day {item!r}; expected {', '.join(DAY_NAMES)} or a range like mon-fri", "days")
        a, b = (DAY_NAMES.index(end) for end in ends)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


@record(frozen=True)
class QuietWindow:
    """One window: on ``days`` (of its start), from ``start`` to ``end`` wall-clock time in ``tz``."""

    services: Tuple[str, ...]  # empty: every service of the host
    days: FrozenSet[int]
    start: dt.time
    end: dt.time
    tz: str
    name: str = ""

    def applies_to(self, service: str) -> bool:
        return not self.services or service in self.services

    def describe(self) -> str:
        days = "daily" if len(self.days) == 7 else ",".join(DAY_NAMES[d] for d in sorted(self.days))
        label = f"{self.name}: " if self.name else ""
        return f"{label}{self.start:%H:%M}-{self.end:%H:%M} {self.tz} ({days})"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "services": list(self.services),
            "days": [DAY_NAMES[d] for d in sorted(self.days)],
            "start": f"{self.start:%H:%M}",
            "end": f"{self.end:%H:%M}",
            "tz": self.tz,
        }

    def ends_at(self, now: dt.datetime) -> Optional[dt.datetime]:
        """When the window that ``now`` (aware) falls in ends, in UTC; None if it is outside.
        Raises :class:`ScheduleError` when the zone is unknown on this machine."""
        tz = zone(self.tz)
        local = now.astimezone(tz)
        wall = local.time().replace(tzinfo=None)
        today, yesterday = local.date(), local.date() - dt.timedelta(days=1)
        if self.start < self.end:
            if today.weekday() in self.days and self.start <= wall < self.end:
                return _instant(today, self.end, tz)
            return None
        # over midnight: from start on a listed day to end on the next day
        if today.weekday() in self.days and wall >= self.start:
            return _instant(today + dt.timedelta(days=1), self.end, tz)
        if yesterday.weekday() in self.days and wall < self.end:
            return _instant(today, self.end, tz)
        return None


def _instant(day: dt.date, wall: dt.time, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, wall, tzinfo=tz).astimezone(dt.timezone.utc)


def parse_window(raw: Any) -> QuietWindow:
    """A window from inventory data: ``{services, days, start, end, tz, name}``."""
    if not isinstance(raw, Mapping):
        raise WindowError(f"expected a mapping with start, end, tz (and days, services), got {raw!r}")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise WindowError(f"unknown key; expected {', '.join(_KEYS)}", unknown[0])
    for key in ("start", "end", "tz"):
        if key not in raw:
            raise WindowError(f"a quiet window needs {key}", key)
    start, end = _clock(raw["start"], "start"), _clock(raw["end"], "end")
    if start == end:
        raise WindowError("start and end are the same time: a window needs a length", "end")
    tz = raw["tz"]
    if not isinstance(tz, str) or not tz:
        raise WindowError(f"expected a time zone name such as America/New_York, got {tz!r}", "tz")
    services = raw.get("services") or []
    if isinstance(services, str):
        services = [services]
    if not isinstance(services, list) or not all(isinstance(s, str) and s for s in services):
        raise WindowError(f"expected a list of service names, got {services!r}", "services")
    name = raw.get("name") or ""
    if not isinstance(name, str):
        raise WindowError(f"expected a name (text), got {name!r}", "name")
    return QuietWindow(tuple(services), _days(raw.get("days")), start, end, tz, name)


def parse_windows(raw: Sequence[Any]) -> List[QuietWindow]:
    windows = []
    for index, item in enumerate(raw):
        try:
            windows.append(parse_window(item))
        except WindowError as exc:
            raise WindowError(str(exc), f"{index}.{exc.key}" if exc.key else str(index)) from None
    return windows


@record(frozen=True)
class WindowVerdict:
    """Whether a quiet window forbids restarting a service now, and until when."""

    service: str
    window: Optional[QuietWindow]  # the window it is in (None: outside every window)
    until: Optional[dt.datetime] = None  # when that window ends (UTC)
    problem: str = ""  # the window could not be judged here (unknown zone): fail closed

    @property
    def quiet(self) -> bool:
        return self.window is not None

    def describe(self) -> str:
        if self.window is None:
            return f"{self.service}: outside its quiet windows"
        if self.problem:
            return f"{self.service}: quiet window {self.window.describe()} cannot be judged here: {self.problem}"
        until = f" until {self.until:%Y-%m-%dT%H:%MZ}" if self.until else ""
        return f"{self.service}: in quiet window {self.window.describe()}{until}"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "service": self.service,
            "quiet": self.quiet,
            "window": self.window.to_dict() if self.window else None,
            "until": f"{self.until:%Y-%m-%dT%H:%M:%SZ}" if self.until else None,
            "problem": self.problem,
        }


def judge(service: str, windows: Sequence[QuietWindow], now: dt.datetime) -> WindowVerdict:
    """The window ``service`` is in at ``now`` (the one ending last when several overlap). A
    window whose zone this machine does not know counts as in force: never restart blind."""
    found: Optional[WindowVerdict] = None
    for window in windows:
        if not window.applies_to(service):
            continue
        try:
            until = window.ends_at(now)
        except ScheduleError as exc:
            return WindowVerdict(service, window, None, str(exc))
        if until is not None and (found is None or (found.until is not None and until > found.until)):
            found = WindowVerdict(service, window, until)
    return found or WindowVerdict(service, None)
