"""Commands as data, and the one small executor that runs them.

A process manager never runs anything itself: it says what it would run (a :class:`Command`)
and reads the answer, and :func:`execute` runs it. So a plan, a dry run and a report show the
exact command a real run executes, and tests assert it without running anything.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

COMMAND_TIMEOUT = 30.0
OUTPUT_LIMIT = 65536  # bytes of a command's output kept (its end)


class ManagerError(Exception):
    """The process manager is missing, unreachable or refused the request."""


@dataclass(frozen=True)
class Command:
    """One step on the host: run ``argv`` (no shell), or send the signal ``signal`` to ``pid``."""

    argv: Tuple[str, ...] = ()
    signal: str = ""  # a signal name ("SIGTERM"), for the signal manager's restart
    pid: Optional[int] = None

    @classmethod
    def run(cls, *argv: str) -> Command:
        return cls(argv=tuple(argv))

    @classmethod
    def kill(cls, signal_name: str, pid: int) -> Command:
        return cls(signal=signal_name, pid=pid)

    def to_dict(self) -> Dict[str, Any]:
        """As the plan, the events and the report show it: ``{"argv": [...]}`` or
        ``{"signal": "SIGTERM", "pid": 123}``."""
        if self.signal:
            return {"signal": self.signal, "pid": self.pid}
        return {"argv": list(self.argv)}


@dataclass(frozen=True)
class CommandResult:
    """What a command answered: its exit code and its (combined, bounded) output."""

    exit_code: int
    output: str


def execute(command: Command, *, timeout: float = COMMAND_TIMEOUT) -> CommandResult:
    """Run ``command``. Raises ManagerError when its program is missing or it does not answer in
    time, OSError when a signal cannot be sent."""
    if command.signal:
        return _send_signal(command)
    return run_argv(list(command.argv), timeout=timeout)


def run_argv(argv: List[str], *, timeout: float = COMMAND_TIMEOUT) -> CommandResult:
    """Run ``argv`` (no shell) and return its exit code and combined output (its last 64 KiB)."""
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise ManagerError(f"{argv[0]}: command not found on this host") from None
    except subprocess.TimeoutExpired:
        raise ManagerError(f"{' '.join(argv)} did not answer within {timeout:.0f}s") from None
    return CommandResult(proc.returncode, proc.stdout[-OUTPUT_LIMIT:].decode("utf-8", errors="replace"))


def _send_signal(command: Command) -> CommandResult:
    if command.pid is None or command.pid <= 0:
        raise ManagerError(f"no process to send {command.signal} to")
    number = getattr(signal, command.signal, None)
    if not isinstance(number, signal.Signals):
        raise ManagerError(f"unknown signal {command.signal!r}")
    os.kill(command.pid, number)
    return CommandResult(0, f"sent {command.signal} to pid {command.pid}")
