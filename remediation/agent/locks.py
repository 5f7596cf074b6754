"""Lock files in the app's lock directory: read-only facts, a pure staleness rule, safe removal.

The seed wrapper deleted every ``*.lock`` under ``state/``. Guardian removes only locks that are
provably stale, never follows a symlink, never leaves the lock directory and records what it
removed (with the content) so an operator can see exactly what happened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Any, Dict, List, Optional, Set, Tuple

from .records import asdict, record

LOCK_SUFFIX = ".lock"
MAX_LOCK_BYTES = 4096


@record(frozen=True)
class LockInfo:
    """What a lock file looks like right now (gathered without changing anything)."""

    name: str
    path: str
    kind: str  # "file", "symlink" or "other"
    size: int
    mtime: float
    inode: int
    device: int
    content: str
    pid: Optional[int]
    pid_alive: bool
    pid_started_at: Optional[float]  # epoch seconds the process with that pid started
    held: bool  # some process holds a flock/fcntl lock on this inode

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@record(frozen=True)
class LockVerdict:
    """Whether a lock is stale, with the reason written for an operator."""

    lock: LockInfo
    stale: bool
    reason: str


def parse_pid(content: str) -> Optional[int]:
    """The PID recorded in a lock file: the first token of the first line, if it is one."""
    first = content.strip().splitlines()[0].strip() if content.strip() else ""
    token = first.split()[0] if first.split() else ""
    if token.startswith("pid="):
        token = token[4:]
    if token.isdigit() and 0 < int(token) < 2**22:
        return int(token)
    return None


def judge(lock: LockInfo, *, now: float, max_age: float) -> LockVerdict:
    """Decide whether ``lock`` is stale. Pure: depends only on the facts passed in.

    A lock is stale when its recorded PID is dead, or alive but started after the lock was
    written (the PID was reused), or when it records no PID, is older than ``max_age`` and no
    process holds it. Symlinks and other non-regular files are never stale: they are left alone.
    """
    if lock.kind == "symlink":
        return LockVerdict(lock, False, "is a symlink; never followed or removed")
    if lock.kind != "file":
        return LockVerdict(lock, False, "is not a regular file; left alone")
    if lock.held:
        return LockVerdict(lock, False, "a live process holds a lock on it")
    if lock.pid is not None:
        if not lock.pid_alive:
            return LockVerdict(lock, True, f"recorded pid {lock.pid} is not running")
        if lock.pid_started_at is not None and lock.pid_started_at > lock.mtime + 2.0:
            return LockVerdict(
                lock,
                True,
                f"recorded pid {lock.pid} was reused: that process started after the lock was written",
            )
        return LockVerdict(lock, False, f"held by live pid {lock.pid}")
    age = now - lock.mtime
    if age > max_age:
        return LockVerdict(lock, True, f"records no pid, is {age:.0f}s old (> {max_age:.0f}s) and nobody holds it")
    return LockVerdict(lock, False, f"records no pid and is only {age:.0f}s old; left alone")


def _boot_time() -> float:
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def process_started_at(pid: int) -> Optional[float]:
    """Epoch time at which ``pid`` started, from /proc (None when unknown)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            raw = fh.read()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    try:
        ticks = int(fields[19])
    except (IndexError, ValueError):
        return None
    hertz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return _boot_time() + ticks / float(hertz)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not a live process.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            raw = fh.read()
        return raw[raw.rfind(")") + 2 :].split()[0] != "Z"
    except OSError:
        return True


def held_inodes() -> Set[Tuple[int, int]]:
    """(device, inode) pairs locked by any process, from /proc/locks."""
    result: Set[Tuple[int, int]] = set()
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.readlines()
    except OSError:
        return result
    for line in lines:
        parts = line.split()
        if "->" in parts:  # a waiter, not a holder
            continue
        for part in parts:
            if part.count(":") == 2:
                major, minor, inode = part.split(":")
                with contextlib.suppress(ValueError):
                    result.add((os.makedev(int(major, 16), int(minor, 16)), int(inode)))
                break
    return result


class LockDirError(Exception):
    """The lock directory cannot be inspected safely (missing, a symlink, unreadable)."""


def _open_dir(lock_dir: str) -> int:
    try:
        return os.open(lock_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LockDirError(f"lock dir {lock_dir} is a symlink or not a directory") from None
        raise LockDirError(f"cannot open lock dir {lock_dir}: {exc.strerror}") from None


def probe_locks(lock_dir: str) -> List[LockInfo]:
    """Read-only: every ``*.lock`` entry directly inside ``lock_dir`` (no recursion)."""
    if not os.path.lexists(lock_dir):
        return []
    dir_fd = _open_dir(lock_dir)
    # /proc/locks only when there is a lock file to judge: a process's first read of it waited
    # 10-20 ms in a lab host, and most runs find no lock at all.
    held: Optional[Set[Tuple[int, int]]] = None
    locks: List[LockInfo] = []
    try:
        for name in sorted(os.listdir(dir_fd)):
            if not name.endswith(LOCK_SUFFIX):
                continue
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            path = os.path.join(lock_dir, name)
            if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
                kind = "symlink" if stat.S_ISLNK(st.st_mode) else "other"
                locks.append(
                    LockInfo(
                        name,
                        path,
                        kind,
                        st.st_size,
                        st.st_mtime,
                        st.st_ino,
                        st.st_dev,
                        "",
                        None,
                        False,
                        None,
                        False,
                    )
                )
                continue
            if held is None:
                held = held_inodes()
            content = _read_bounded(dir_fd, name)
            pid = parse_pid(content)
            alive = pid_alive(pid) if pid is not None else False
            locks.append(
                LockInfo(
                    name=name,
                    path=path,
                    kind="file",
                    size=st.st_size,
                    mtime=st.st_mtime,
                    inode=st.st_ino,
                    device=st.st_dev,
                    content=content,
                    pid=pid,
                    pid_alive=alive,
                    pid_started_at=process_started_at(pid) if pid is not None and alive else None,
                    held=(st.st_dev, st.st_ino) in held,
                )
            )
    finally:
        os.close(dir_fd)
    return locks


def _read_bounded(dir_fd: int, name: str) -> str:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return ""
    try:
        data = os.read(fd, MAX_LOCK_BYTES)
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace")


def remove_lock(lock_dir: str, lock: LockInfo) -> str:
    """Remove one stale lock, only if it is still the very file that was judged.

    Returns:
        "removed", or a reason it was left in place (changed since probing, gone already).
    """
    dir_fd = _open_dir(lock_dir)
    try:
        try:
            st = os.stat(lock.name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return "already gone"
        if not stat.S_ISREG(st.st_mode):
            return "no longer a regular file; left alone"
        if (st.st_dev, st.st_ino) != (lock.device, lock.inode) or st.st_mtime != lock.mtime:
            return "changed since it was judged stale; left alone"
        if (st.st_dev, st.st_ino) in held_inodes():
            return "a process took a lock on it meanwhile; left alone"
        os.unlink(lock.name, dir_fd=dir_fd)
        return "removed"
    finally:
        os.close(dir_fd)
