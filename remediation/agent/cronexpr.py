"""When a five-field cron schedule fires, in a named time zone: the fire times before or after a
moment, for missed-run detection ("self-heal silent since T").

Cron's own semantics (Vixie/ISC cron as on Debian and Ubuntu):

- fields are minute, hour, day of month, month, day of week (0 and 7 are Sunday; names allowed);
  lists, ranges and steps (``*/15``, ``1-5``, ``mon-fri``, ``0-30/10``);
- when both day of month and day of week are restricted (neither starts with ``*``), a day
  matches if **either** matches;
- ``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``/``@annually``;
  ``@reboot`` has no fire times.

Wall-clock times are in ``tz``. A time that does not exist there (skipped by a DST change) is not
a fire time; a time that happens twice (the repeated hour) counts once, at its first occurrence.
Pure functions; standard library only (Python 3.9's ``zoneinfo``).
"""

from __future__ import annotations

import datetime as dt
from typing import FrozenSet, Iterator, List, Optional, Set, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # Python 3.9+

from .cronblock import ScheduleError, validate_schedule
from .records import record

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SPECIAL = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: How far back or ahead a search goes before it gives up (a schedule such as ``0 0 30 2 *``,
#: February 30th, never fires).
_SEARCH_DAYS = 366 * 5


def _number(text: str, low: int, high: int, names: Tuple[str, ...], offset: int) -> int:
    value = int(text) if text.isdigit() else names.index(text.lower()) + offset
    if not low <= value <= high:
        raise ScheduleError(f"{text!r} is outside {low}-{high}")
    return value


def _field(text: str, low: int, high: int, names: Tuple[str, ...] = (), offset: int = 0) -> FrozenSet[int]:
    values: Set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            first, last = low, high
        else:
            start, dash, stop = body.partition("-")
            first = _number(start, low, high, names, offset)
            last = _number(stop, low, high, names, offset) if dash else (high if step_text else first)
        values.update(range(first, last + 1, step))
    return frozenset(values)


def zone(name: str) -> dt.tzinfo:
    """The time zone ``name`` (e.g. ``America/New_York``); ``UTC`` when empty."""
    if not name or name.upper() == "UTC":
        return dt.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}: {exc}") from None


@record(frozen=True)
class CronSchedule:
    """A parsed schedule: the allowed values of each field."""

    expression: str
    minutes: FrozenSet[int]
    hours: FrozenSet[int]
    days: FrozenSet[int]
    months: FrozenSet[int]
    weekdays: FrozenSet[int]  # 0 = Sunday
    day_restricted: bool
    weekday_restricted: bool
    never: bool = False  # @reboot

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        normal = validate_schedule(expression)
        if normal == "@reboot":
            return cls(normal, frozenset(), frozenset(), frozenset(), frozenset(), frozenset(), False, False, True)
        fields = _SPECIAL.get(normal, normal).split()
        weekdays = {d % 7 for d in _field(fields[4], 0, 7, _DAYS)}
        return cls(
            normal,
            _field(fields[0], 0, 59),
            _field(fields[1], 0, 23),
            _field(fields[2], 1, 31),
            _field(fields[3], 1, 12, _MONTHS, 1),
            frozenset(weekdays),
            not fields[2].startswith("*"),
            not fields[4].startswith("*"),
        )

    def day_matches(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return by_day or by_weekday
        return by_day and by_weekday

    def _times_of(self, day: dt.date, tz: dt.tzinfo, *, reverse: bool) -> Iterator[dt.datetime]:
        for hour in sorted(self.hours, reverse=reverse):
            for minute in sorted(self.minutes, reverse=reverse):
                wall = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                utc = wall.astimezone(dt.timezone.utc)
                if utc.astimezone(tz).replace(tzinfo=None) != wall.replace(tzinfo=None):
                    continue  # skipped by a DST change: this wall time never happens
                yield utc

    def fires_before(self, moment: dt.datetime, tz: dt.tzinfo, count: int) -> List[dt.datetime]:
        """The last ``count`` fire times strictly before ``moment`` (aware), newest first, in UTC."""
        found: List[dt.datetime] = []
        if self.never or count <= 0:
            return found
        day = moment.astimezone(tz).date()
        for _ in range(_SEARCH_DAYS):
            if self.day_matches(day):
                for fire in self._times_of(day, tz, reverse=True):
                    if fire < moment and fire not in found:
                        found.append(fire)
                        if len(found) >= count:
                            return found
            day -= dt.timedelta(days=1)
        return found

    def next_fire(self, moment: dt.datetime, tz: dt.tzinfo) -> Optional[dt.datetime]:
        """The first fire time at or after ``moment`` (aware), in UTC; None if it never fires."""
        if self.never:
            return None
        day = moment.astimezone(tz).date()
        for _ in range(_SEARCH_DAYS):
            if self.day_matches(day):
                for fire in self._times_of(day, tz, reverse=False):
                    if fire >= moment:
                        return fire
            day += dt.timedelta(days=1)
        return None
