"""Notice when the controller has gone away or asks the runner to stop.

Two ways a run started from the laptop ends early:

- **Gone**: Ctrl-C twice, a dropped SSH link, the host deadline. The runner's stdout is a pipe
  to sshd; when the session ends its read end closes, polling the write end reports an error and
  a write fails with EPIPE. Nobody hears the result any more.
- **Stop**: the first Ctrl-C. The controller sends ``{"stop": reason}`` on the runner's stdin
  (the *control channel*) and keeps listening for a while, so the runner can finish the action
  in hand, report it and end cleanly. SIGTERM and SIGHUP are treated the same way.

Either way the runner stops at its next safe point: never in the middle of an action (a restart
runs to its confirmation), it kills a health check it started, writes why to guardian.log and
its journal, and releases the host lock. Under cron, stdout is a file, there is no control
channel, and only a signal can stop a run.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from typing import Any, Dict, List, Optional


class ControllerGone(Exception):
    """The controller that started this run disconnected: no one will read the result."""


class StopRequested(ControllerGone):
    """The controller (or a signal) asked this run to stop; the controller still listens."""


class ControllerWatch:
    """Polls stdout for a vanished controller and, when ``control`` is on, stdin for control lines."""

    def __init__(self, fd: Optional[int] = None, *, control: bool = False) -> None:
        try:
            self.fd = sys.stdout.fileno() if fd is None else fd
        except (AttributeError, OSError, ValueError):
            self.fd = -1
        self.poller = select.poll() if self.fd >= 0 else None
        if self.poller is not None:
            self.poller.register(self.fd, 0)  # POLLERR/POLLHUP are always reported
        self.control_fd = -1
        if control:
            try:
                self.control_fd = sys.stdin.fileno()
            except (AttributeError, OSError, ValueError):
                self.control_fd = -1
        self.control_closed = self.control_fd < 0
        self._buffer = b""
        self.messages: List[Dict[str, Any]] = []
        self.stop_reason = ""
        self.lost = ""

    # -- what the controller said ---------------------------------------------------------

    def poll_control(self, timeout: float = 0.0) -> None:
        """Read whatever control lines have arrived (waiting at most ``timeout`` seconds)."""
        if self.control_closed:
            if timeout > 0:
                time.sleep(timeout)
            return
        ready, _, _ = select.select([self.control_fd], [], [], timeout)
        if not ready:
            return
        try:
            chunk = os.read(self.control_fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            self.control_closed = True
            return
        self._buffer += chunk
        if len(self._buffer) > 1 << 20:
            self._buffer = b""
            self.lost = "the controller's control line is too long"
            return
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                message = json.loads(line.decode("utf-8"))
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if "stop" in message:
                self.request_stop(str(message["stop"]) or "the controller asked this run to stop")
            else:
                self.messages.append(message)

    def request_stop(self, reason: str) -> None:
        """Stop at the next safe point (a control line, SIGTERM or SIGHUP)."""
        if not self.stop_reason:
            self.stop_reason = reason

    def mark_lost(self, reason: str) -> None:
        """Writing to the controller failed (EPIPE): it is gone."""
        if not self.lost:
            self.lost = reason

    # -- questions ------------------------------------------------------------------------

    def gone(self) -> bool:
        """Whether the run should stop now (the controller vanished or asked for a stop)."""
        self.poll_control()
        if self.lost or self.stop_reason:
            return True
        if self.poller is None:
            return False
        if any(ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, ev in self.poller.poll(0)):
            self.lost = "the controller disconnected"
            return True
        return False

    def check(self) -> None:
        if self.gone():
            if self.lost:
                raise ControllerGone(self.lost)
            raise StopRequested(self.stop_reason)

    def sleep(self, seconds: float) -> None:
        """Sleep, waking every 0.2 s to notice a vanished controller or a stop."""
        deadline = time.monotonic() + seconds
        while True:
            self.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(0.2, remaining))
