"""Notice when the controller has gone away (Ctrl-C on the laptop, a dropped SSH link).

When the runner's stdout is a pipe to sshd and the session ends, the pipe's read end closes and
polling the write end reports an error. The runner then stops at the next safe point: it kills
the check it started, writes why to guardian.log and releases the host lock, instead of going
on acting on a host nobody is watching. Under cron, stdout is a file and this never fires.
"""

from __future__ import annotations

import select
import sys
import time
from typing import Optional


class ControllerGone(Exception):
    """The controller that started this run disconnected."""


class ControllerWatch:
    def __init__(self, fd: Optional[int] = None) -> None:
        try:
            self.fd = sys.stdout.fileno() if fd is None else fd
        except (AttributeError, OSError, ValueError):
            self.fd = -1
        self.poller = select.poll() if self.fd >= 0 else None
        if self.poller is not None:
            self.poller.register(self.fd, 0)  # POLLERR/POLLHUP are always reported

    def gone(self) -> bool:
        if self.poller is None:
            return False
        return any(ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, ev in self.poller.poll(0))

    def check(self) -> None:
        if self.gone():
            raise ControllerGone("the controller disconnected")

    def sleep(self, seconds: float) -> None:
        """Sleep, waking every 0.2 s to notice a vanished controller."""
        deadline = time.monotonic() + seconds
        while True:
            self.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(0.2, remaining))
