"""The systemd side of the lab: stopping a host whose PID 1 is real systemd, and removing the
cgroups its systemd made.

A systemd host (``hostinit.boot_systemd``) lives in its own cgroup, ``guardian-lab/PREFIX-hNN``
of the machine's cgroup2 hierarchy, inside a cgroup namespace. ``SIGTERM`` makes systemd
re-execute itself rather than stop, so the lab powers such a host off as a container manager
does (``SIGRTMIN+4``: systemd stops every unit, then exits), and afterwards removes the
(then empty) cgroup tree, which the kernel does not do by itself.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterable

from . import hostinit
from .model import HOST_PYTHON
from .procs import run, same_process

#: systemd's "power off" signal: stop every unit in order, then exit (in a container).
POWEROFF = signal.SIGRTMIN + 4
POWEROFF_GRACE = 8.0

_CGROUP_NAME = re.compile(r"^[a-z][a-z0-9]{0,7}-h\d{2,3}$")

# Run in a mount namespace of its own: mount cgroup2, remove the lab's cgroup trees bottom-up
# (retrying while their last processes exit), unmount. argv: PARENT PREFIX NAME...
_REMOVE_CGROUPS = r"""
import errno, os, re, sys, tempfile, time, ctypes, ctypes.util
parent, prefix, names = sys.argv[1], sys.argv[2], set(sys.argv[3:])
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
root = tempfile.mkdtemp(prefix="guardian-cgroup-")
if libc.mount(b"cgroup2", root.encode(), b"cgroup2", 0, None) != 0:
    sys.exit("mount cgroup2: " + os.strerror(ctypes.get_errno()))
try:
    base = os.path.join(root, parent)
    pattern = re.compile("^" + re.escape(prefix) + r"-h\d{2,3}$")
    if os.path.isdir(base):
        names |= {n for n in os.listdir(base) if pattern.match(n)}
    deadline = time.monotonic() + 5
    for name in sorted(names):
        top = os.path.join(base, name)
        while os.path.isdir(top):
            busy = False
            for here, dirs, _ in os.walk(top, topdown=False):
                try:
                    os.rmdir(here)
                except OSError as exc:
                    if exc.errno not in (errno.ENOENT,):
                        busy = True
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if os.path.isdir(top):
            print("left " + top[len(root):])
    try:
        os.rmdir(base)  # only when no other lab has a host there
    except OSError:
        pass
finally:
    libc.umount2(root.encode(), 2)
    os.rmdir(root)
"""


def power_off(hosts: Iterable[tuple[int, int]], *, grace: float = POWEROFF_GRACE) -> None:
    """Ask each systemd PID 1 (pid, start time) to power off, and wait up to ``grace`` seconds
    for them to exit; what is left is for the ordinary stop (SIGKILL after its own grace)."""
    alive = [(pid, start) for pid, start in hosts if same_process(pid, start)]
    for pid, _ in alive:
        try:
            os.kill(pid, POWEROFF)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(same_process(p, s) for p, s in alive):
        time.sleep(0.05)


def remove_cgroups(prefix: str, names: Iterable[str]) -> list[str]:
    """Remove the cgroup trees of the lab's systemd hosts (recorded ``names``, and any other
    ``PREFIX-hNN`` left by an earlier lab); returns the trees that could not be removed."""
    wanted = sorted({n for n in names if _CGROUP_NAME.match(n)})
    proc = run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            HOST_PYTHON,
            "-I",
            "-c",
            _REMOVE_CGROUPS,
            hostinit.CGROUP_PARENT,
            prefix,
            *wanted,
        ],
        check=False,
    )
    return [line.removeprefix("left ") for line in proc.stdout.splitlines() if line.startswith("left ")]
