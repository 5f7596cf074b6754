"""Measuring one benchmark run: wall time, exit code, CPU and the peak memory of a process tree."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Timing:
    """What running one command cost."""

    seconds: float
    exit_code: int
    rss_single_mb: float  # the largest single process's peak RSS
    rss_tree_mb: float  # the whole process tree's peak RSS, sampled
    cpu_s: float


@dataclass
class Run:
    """One timed run of one peer."""

    peer: str
    size: str
    seconds: float
    exit_code: int
    healed: int
    hosts: int
    collected: int
    conns_per_host: float | None
    rss_single_mb: float
    rss_tree_mb: float
    cpu_s: float
    prep_s: float
    note: str = ""
    host_cpu_healthy: float | None = None  # mean CPU-s inside a host that had no fault
    host_cpu_faulted: float | None = None  # mean CPU-s inside a host that had a fault
    runner_cpu_healthy: float | None = None  # Guardian: mean runner_cpu (runner + check) of a healthy host

    @property
    def ok(self) -> bool:
        return self.healed == self.hosts and self.collected == self.hosts


class TreeSampler:
    """Samples the summed RSS of a process and its descendants (via /proc children lists)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _tree(pid: int) -> list[int]:
        out, todo = [], [pid]
        while todo:
            p = todo.pop()
            out.append(p)
            try:
                for task in os.listdir(f"/proc/{p}/task"):
                    todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
            except OSError:
                continue
        return out

    def _loop(self) -> None:
        while not self._stop.is_set():
            total = 0
            for p in self._tree(self.pid):
                try:
                    for line in Path(f"/proc/{p}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                            break
                except OSError:
                    pass
            self.peak_kb = max(self.peak_kb, total)
            self._stop.wait(self.interval)


def timed(argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None, log: Path) -> Timing:
    """Run ``argv`` with its output in ``log``; return what it cost."""
    with open(log, "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        with TreeSampler(proc.pid) as sampler:
            _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return Timing(seconds, proc.returncode, usage.ru_maxrss / 1024, sampler.peak_kb / 1024, cpu)
