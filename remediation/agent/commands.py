"""Commands as data, and the one small executor that runs them.

A process manager never runs anything itself: it says what it would run (a :class:`Command`)
and reads the answer, and :func:`execute` runs it. So a plan, a dry run and a report show the
exact command a real run executes, and tests assert it without running anything.

A command is one of three things, each shown as what it is: a program's argument list, a signal
to a pid, or XML-RPC calls to a daemon's unix socket (supervisord's: no program is started).
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any, Dict, List, Optional, Tuple

from .records import field, record

COMMAND_TIMEOUT = 30.0
OUTPUT_LIMIT = 65536  # bytes of a command's output kept (its end)


class ManagerError(Exception):
    """The process manager is missing, unreachable or refused the request."""


class NotDelivered(ManagerError):
    """The command could not be delivered at all (a socket that takes no calls): nothing was
    done, so the manager may try another way (supervisorctl instead of its socket)."""


@record(frozen=True)
class RpcCall:
    """One XML-RPC call: ``method(*args)``. A fault named in ``tolerate`` means "already so"
    (``NOT_RUNNING`` for a stop before a start) and does not end the command."""

    method: str
    args: Tuple[Any, ...] = ()
    tolerate: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {"method": self.method, "args": list(self.args)}
        if self.tolerate:
            data["tolerate"] = list(self.tolerate)
        return data


@record(frozen=True)
class Command:
    """One step on the host: run ``argv`` (no shell), send the signal ``signal`` to ``pid``, or
    make the XML-RPC ``calls`` on the unix socket ``socket``."""

    argv: Tuple[str, ...] = ()
    signal: str = ""  # a signal name ("SIGTERM"), for the signal manager's restart
    pid: Optional[int] = None
    calls: Tuple[RpcCall, ...] = ()
    socket: str = ""
    # HTTP basic-auth credentials for the socket: sent, never shown or recorded
    auth: Optional[Tuple[str, str]] = field(default=None, repr=False, compare=False)

    @classmethod
    def run(cls, *argv: str) -> Command:
        return cls(argv=tuple(argv))

    @classmethod
    def kill(cls, signal_name: str, pid: int) -> Command:
        return cls(signal=signal_name, pid=pid)

    @classmethod
    def rpc(cls, socket: str, *calls: RpcCall, auth: Optional[Tuple[str, str]] = None) -> Command:
        return cls(calls=tuple(calls), socket=socket, auth=auth)

    def to_dict(self) -> Dict[str, Any]:
        """As the plan, the events and the report show it: ``{"argv": [...]}``,
        ``{"signal": "SIGTERM", "pid": 123}`` or ``{"rpc": [{"method", "args"}...], "socket":
        path}`` (with ``"auth": "basic"`` when credentials are sent; never the credentials)."""
        if self.signal:
            return {"signal": self.signal, "pid": self.pid}
        if self.calls:
            data: Dict[str, Any] = {"rpc": [c.to_dict() for c in self.calls], "socket": self.socket}
            if self.auth is not None:
                data["auth"] = "basic"
            return data
        return {"argv": list(self.argv)}


@record(frozen=True)
class CommandResult:
    """What a command answered: its exit code and its (combined, bounded) output; for RPC calls,
    the last call's return value (``value``) or the fault that ended them (exit code: its code)."""

    exit_code: int
    output: str
    value: Any = None


def execute(command: Command, *, timeout: float = COMMAND_TIMEOUT) -> CommandResult:
    """Run ``command``. Raises ManagerError when its program is missing or it does not answer in
    time, OSError when a signal cannot be sent, ``supervisor_rpc.RpcUnreachable`` when its socket
    takes no calls (nothing was done)."""
    if command.signal:
        return _send_signal(command)
    if command.calls:
        from .supervisor_rpc import run_calls  # xmlrpc.client only for a run that needs it

        return run_calls(command, timeout=timeout)
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
