"""The lab's processes: running tools, a host's PID 1, entering its namespaces, stopping by PID.

A process is named by its PID *and* its start time (``/proc/PID/stat``), so the lab never
signals a process that merely reused a recorded PID.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from . import hostinit
from .model import HOST_ENV, HOST_PYTHON, LabError

HOSTINIT = Path(hostinit.__file__).resolve()


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool in the root namespace; a failure (with ``check``) is a LabError with its stderr."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=input, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def proc_starttime(pid: int) -> int | None:
    """Start time (clock ticks since boot) of ``pid`` from /proc/PID/stat, or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def same_process(pid: int | None, start: int | None) -> bool:
    """Whether ``pid`` still runs and is the process that started at ``start``."""
    return pid is not None and start is not None and proc_starttime(pid) == start


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (its main thread's)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [int(p) for p in text.split()]


def comm(pid: int) -> str:
    """The command name of ``pid``, or '' if it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def read_pid(path: Path) -> int | None:
    """The PID in a pidfile: a number, or a JSON object with ``pid``; None if absent or garbled."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    try:
        return int(json.loads(text)["pid"]) if text.startswith("{") else int(text.split()[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def ns_processes(init_pid: int) -> dict[int, tuple[int, list[str]]]:
    """Processes in the PID namespace of ``init_pid``: {ns_pid: (root_pid, argv)}."""
    try:
        ns = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return {}
    found: dict[int, tuple[int, list[str]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != ns:
                continue
            status = Path(f"/proc/{entry}/status").read_text()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if "\nState:\tZ" in status:
            continue
        m = re.search(r"^NSpid:\s+(.*)$", status, re.M)
        if not m:
            continue
        ns_pid = int(m.group(1).split()[-1])
        found[ns_pid] = (int(entry), [a.decode(errors="replace") for a in argv if a])
    return found


def nsenter(init_pid: int, argv: Sequence[str], *, timeout: float, check: bool) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in the net, pid, mount and UTS namespaces of ``init_pid`` (cwd /root).

    On timeout the whole process group (inside the host too) is killed and
    :class:`subprocess.TimeoutExpired` carries the output so far.
    """
    cmd = ["nsenter", "-t", str(init_pid), "-n", "-p", "-m", "-u", "--wd=/root", "--", *argv]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=HOST_ENV,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(cmd, timeout, output=out, stderr=err) from None
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd, out, err)
    return result


def spawn_init(netns: str, hostdir: Path) -> subprocess.Popen[bytes]:
    """Start ``hostinit.py HOSTDIR`` as PID 1 of fresh PID, mount and UTS namespaces inside the
    network namespace ``netns``; its output goes to ``HOSTDIR/init.log``."""
    log = open(hostdir / "init.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                netns,
                "unshare",
                "--pid",
                "--fork",
                "--kill-child=SIGTERM",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "--mount-proc",
                HOST_PYTHON,
                "-I",
                str(HOSTINIT),
                str(hostdir),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=HOST_ENV,
            cwd="/",
            start_new_session=True,
        )
    finally:
        log.close()


def await_starttime(pid: int, deadline: float) -> int | None:
    """The start time of a process just spawned, once /proc shows it (None past ``deadline``)."""
    start = None
    while start is None and time.monotonic() < deadline:
        start = proc_starttime(pid)
    return start


def await_init(proc: subprocess.Popen[bytes], deadline: float) -> int | None:
    """PID 1 of the host ``spawn_init`` started: the child ``unshare`` forks (None if it exits
    first or ``deadline`` passes)."""
    while time.monotonic() < deadline:
        kids = children(proc.pid)
        if kids and comm(proc.pid) == "unshare":
            return kids[0]
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    return None


def stop(pids: Sequence[tuple[int, int]], *, grace: float = 5) -> None:
    """SIGTERM each (pid, start) that is still that process; SIGKILL what is left after ``grace``."""
    alive = [(pid, start) for pid, start in pids if same_process(pid, start)]
    for pid, _ in alive:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(same_process(p, s) for p, s in alive):
        time.sleep(0.05)
    for pid, start in alive:
        if same_process(pid, start):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
