"""One command on an SSH channel of an open Fabric connection, from the host's own thread.

Invoke's runner (what ``Connection.run`` uses) starts three threads per command (stdout, stderr,
stdin) and wakes two of them every ``input_sleep`` to see whether the command ended or stdin has
something to pass on: at 40 hosts and more, 5 threads per host on the controller and thousands of
wake-ups per second. Here the host's worker thread does it all on the paramiko channel of the
connection Fabric opened (host keys, jump hosts and ssh_config as Fabric set them up): it waits in
one ``select`` on the channel (paramiko's ``Channel.fileno``, set when output or EOF arrives) and on
the control stream's wake-up pipe (set when a control line is queued), so nothing polls.
"""

from __future__ import annotations

import codecs
import select
import socket
import time
from dataclasses import dataclass
from typing import Protocol

import paramiko

from ..errors import ConnectError

#: How much is read from the channel at a time.
CHUNK = 32768


class Control(Protocol):
    """The command's stdin, as the host's run feeds it (``hostrun.ControlStream``)."""

    def wake_fd(self) -> int: ...

    def take(self) -> tuple[list[str], bool]: ...


class Writer(Protocol):
    def write(self, text: str) -> int: ...


class DeadlineExceeded(Exception):
    """The command ran past its deadline; the channel was closed."""


@dataclass(frozen=True)
class ChannelResult:
    """How the command ended: its exit status, or -1 when the channel closed without one (the
    connection was lost or cut)."""

    exited: int


def run_on_channel(
    transport: paramiko.Transport, command: str, control: Control, out: Writer, err: Writer, timeout: float
) -> ChannelResult:
    """Run ``command`` on a new session channel of ``transport``: its stdout and stderr decoded
    (UTF-8) into ``out`` and ``err`` as they arrive, ``control``'s lines written to its stdin (its
    stdin closed once ``control`` is), until the command has ended and its output is read, or
    ``timeout`` seconds have passed (:class:`DeadlineExceeded`)."""
    deadline = time.monotonic() + timeout
    try:
        channel = transport.open_session(timeout=max(1.0, min(timeout, 30.0)))
        channel.exec_command(command)
    except (paramiko.SSHException, EOFError, OSError, socket.timeout) as exc:
        raise ConnectError(f"could not start the runner on an SSH channel: {exc}") from None
    decode_out = codecs.getincrementaldecoder("utf-8")("replace").decode
    decode_err = codecs.getincrementaldecoder("utf-8")("replace").decode
    stdin_open = True
    try:
        ready = channel.fileno()
        wake = control.wake_fd()
        while True:
            if stdin_open:
                lines, closed = control.take()
                for line in lines:
                    channel.sendall(line.encode("utf-8"))
                if closed:
                    channel.shutdown_write()
                    stdin_open = False
            while channel.recv_ready():
                out.write(decode_out(channel.recv(CHUNK)))
            while channel.recv_stderr_ready():
                err.write(decode_err(channel.recv_stderr(CHUNK)))
            if channel.eof_received or channel.closed:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(f"the command ran past its {timeout:g}s deadline")
            select.select([ready] + ([wake] if stdin_open else []), [], [], left)
        # Output is over; the exit status follows it (or the channel closes without one).
        while not channel.exit_status_ready() and not channel.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(f"the command ran past its {timeout:g}s deadline")
            channel.status_event.wait(min(left, 1.0))
        while channel.recv_ready():  # what arrived together with the EOF
            out.write(decode_out(channel.recv(CHUNK)))
        while channel.recv_stderr_ready():
            err.write(decode_err(channel.recv_stderr(CHUNK)))
        out.write(decode_out(b"", final=True))
        err.write(decode_err(b"", final=True))
        return ChannelResult(channel.recv_exit_status() if channel.exit_status_ready() else -1)
    except (OSError, EOFError, paramiko.SSHException):
        if not (channel.closed or not transport.is_active()):
            raise
        return ChannelResult(-1)  # the connection went away under us (lost, or cut on purpose)
    finally:
        channel.close()
