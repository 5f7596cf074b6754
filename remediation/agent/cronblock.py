"""The Guardian block in a crontab: validate schedules, render the block, replace it in place.

Pure functions of text. Entries outside the block are never touched; installing twice leaves
one block; removing takes out exactly the block.
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

BEGIN = "# BEGIN GUARDIAN - managed by `invoke deploy`; changes inside this block are overwritten"
END = "# END GUARDIAN"
_BEGIN_PREFIX = "# BEGIN GUARDIAN"

_FIELDS: Tuple[Tuple[str, int, int, Tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_SPECIAL = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


class ScheduleError(ValueError):
    """A cron schedule is not valid."""


def _value(text: str, low: int, high: int, names: Tuple[str, ...], field: str) -> int:
    if text.isdigit():
        number = int(text)
    elif names and text.lower() in names:
        number = names.index(text.lower()) + (1 if field == "month" else 0)
    else:
        raise ScheduleError(f"{field}: {text!r} is not a number{' or name' if names else ''}")
    if not low <= number <= high:
        raise ScheduleError(f"{field}: {number} is outside {low}-{high}")
    return number


def validate_schedule(schedule: str) -> str:
    """Return the schedule normalised to single spaces, or raise ScheduleError saying why."""
    if not isinstance(schedule, str) or any(ch in schedule for ch in "\n\r%\0"):
        raise ScheduleError("a schedule is one line without '%'")
    parts = schedule.split()
    if len(parts) == 1 and parts[0].lower() in _SPECIAL:
        return parts[0].lower()
    if len(parts) != 5:
        raise ScheduleError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    for part, (field, low, high, names) in zip(parts, _FIELDS):
        for item in part.split(","):
            body, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ScheduleError(f"{field}: step {step!r} must be a positive number")
            if body == "*":
                continue
            start, dash, stop = body.partition("-")
            first = _value(start, low, high, names, field)
            if dash:
                last = _value(stop, low, high, names, field)
                if last < first:
                    raise ScheduleError(f"{field}: range {body!r} runs backwards")
            elif step:
                raise ScheduleError(f"{field}: a step needs '*' or a range, not {body!r}")
    return " ".join(parts)


def render_block(lines: Sequence[str]) -> str:
    """The block with its markers, ending in a newline."""
    for line in lines:
        if "\n" in line or "\r" in line:
            raise ValueError("a crontab entry must be one line")
    return "\n".join([BEGIN, *lines, END]) + "\n"


def find_block(crontab: str) -> Optional[Tuple[int, int]]:
    """(first line, last line) indexes of the Guardian block, or None."""
    lines = crontab.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(_BEGIN_PREFIX)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == END), None)
    if end is None:
        raise ValueError(f"the crontab has '{_BEGIN_PREFIX}' on line {start + 1} but no '{END}'; fix it by hand")
    return start, end


def replace_block(crontab: str, block: Optional[str]) -> str:
    """``crontab`` with its Guardian block replaced by ``block`` (None removes it).

    Every line outside the block is kept as it is; a missing block is appended at the end.
    """
    lines = crontab.splitlines()
    where = find_block(crontab)
    new = block.splitlines() if block else []
    if where is None:
        if not new:
            return crontab
        kept = lines
        if kept and kept[-1].strip():
            kept = [*kept, ""]
        result = [*kept, *new]
    else:
        start, end = where
        if not new and start > 0 and not lines[start - 1].strip():
            start -= 1  # the blank line put before the block when it was appended
        result = [*lines[:start], *new, *lines[end + 1 :]]
    text = "\n".join(result)
    return text + "\n" if text else ""


def block_lines(crontab: str) -> List[str]:
    where = find_block(crontab)
    if where is None:
        return []
    return crontab.splitlines()[where[0] : where[1] + 1]


_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+@~-]+$")


def check_cron_safe(value: str, what: str) -> str:
    """Values placed on a cron line: no '%' (cron turns it into a newline), no newlines."""
    if not value or any(ch in value for ch in "%\n\r\0"):
        raise ScheduleError(f"{what} {value!r} cannot be used on a crontab line ('%' or a newline)")
    return value
