"""The per-host lock: one Guardian run (laptop or cron) acts on a host at a time.

It is a ``flock`` on ``<lock dir>/.guardian.flock``. The name does not end in ``.lock`` so the
stale-lock sweep never considers it, and the kernel drops the lock when its holder dies, so a
crashed run can never leave a host locked. The holder writes who it is into the file.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from typing import Any, Dict, Optional

LOCK_NAME = ".guardian.flock"


class HostBusy(Exception):
    """Another Guardian run holds this host's lock."""

    def __init__(self, holder: Dict[str, Any]) -> None:
        self.holder = holder
        who = holder.get("runner", "another run")
        since = holder.get("since_iso", "?")
        super().__init__(f"busy (held by {who}, pid {holder.get('pid', '?')}, since {since})")


class HostLock:
    """Context manager around the flock. ``dry_run`` only looks: it never creates the file."""

    def __init__(self, lock_dir: str, *, holder: Dict[str, Any], wait: float = 0.0, dry_run: bool = False) -> None:
        self.path = os.path.join(lock_dir, LOCK_NAME)
        self.holder = holder
        self.wait = wait
        self.dry_run = dry_run
        self.fd: Optional[int] = None

    def __enter__(self) -> HostLock:
        flags = os.O_RDONLY if self.dry_run else os.O_RDWR | os.O_CREAT
        try:
            fd = os.open(self.path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            if self.dry_run:
                return self  # no lock file yet: nobody can hold it
            raise
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = read_holder(fd)
                    os.close(fd)
                    raise HostBusy(holder) from None
                time.sleep(0.2)
        self.fd = fd
        if not self.dry_run:
            info = json.dumps(self.holder, sort_keys=True).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, info + b"\n", 0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            if not self.dry_run:
                os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def read_holder(fd: int) -> Dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode("utf-8", errors="replace") or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
