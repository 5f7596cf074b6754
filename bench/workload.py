"""The benchmark's hosts: sizes, what every peer shares for one size, faults before and checks after.

Every run starts from the same state: each host reset, the previous run's logs and alerts
removed, then a UW fault on one host in four and a SIP fault on the next. After a run the health
check runs inside every host (no SSH) and the sshd logs say how many SSH logins each peer made.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from remediation.lab import Lab
from remediation.lab.model import APP_DIR, HOST_PYTHON

BENCH = Path(__file__).resolve().parent
SETTLE = 1.0  # seconds every peer waits between healing and verifying
CHECK = f"{APP_DIR}/pre_market_health_check.py"
PROXY_PORT_BASE = 43100

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Size:
    """One benchmark size: host count and simulated round-trip time (ms, 0 = direct)."""

    hosts: int
    rtt_ms: int = 0

    @property
    def label(self) -> str:
        return f"{self.hosts}@{self.rtt_ms}ms" if self.rtt_ms else str(self.hosts)

    @classmethod
    def parse(cls, text: str) -> Size:
        n, _, rtt = text.partition("@")
        return cls(int(n), int(rtt.removesuffix("ms") or 0))


@dataclass(frozen=True)
class Endpoint:
    """Where a peer connects to one host (the host itself, or its port on the latency proxy)."""

    name: str
    address: str
    port: int
    manager: str


@dataclass(frozen=True)
class Env:
    """The lab and the files every peer shares for one size."""

    lab: Lab
    size: Size
    endpoints: list[Endpoint]
    known_hosts: Path
    scratch: Path
    guardian_inventory: Path

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.endpoints]


def parallel(fn: Callable[[T], R], items: Sequence[T], workers: int = 16) -> list[R]:
    """map() over a thread pool."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(fn, items))


def fault_kind(index: int) -> str | None:
    """UW on one host in four, SIP on the next, the rest healthy."""
    return {0: "uw", 1: "sip"}.get(index % 4)


def prepare(lab: Lab, names: Sequence[str], *, faults: bool = True) -> None:
    """Reset every host, clear the previous run's logs and alerts, then inject the faults."""

    def one(item: tuple[int, str]) -> None:
        index, name = item
        lab.fault(name, "reset")
        logs = lab.path(name, f"{APP_DIR}/logs")
        for f in logs.glob("*"):
            if f.name.startswith("guardian") or "_alert_" in f.name:
                f.unlink(missing_ok=True)
        # Guardian's restart budget (circuit breaker) lives on the host; start every run afresh.
        lab.path(name, f"{APP_DIR}/.guardian/state/guardian-breaker.json").unlink(missing_ok=True)
        kind = fault_kind(index)
        if faults and kind:
            lab.fault(name, kind)

    parallel(one, list(enumerate(names)))


def check_all(lab: Lab, names: Sequence[str]) -> dict[str, int]:
    """The health check's exit code on every host (run inside the host, no SSH)."""

    def one(name: str) -> int:
        try:
            return lab.exec(name, [HOST_PYTHON, CHECK], timeout=60, check=False).returncode
        except subprocess.TimeoutExpired:
            return -1

    return dict(zip(names, parallel(one, names)))


def accepted(lab: Lab, names: Sequence[str]) -> dict[str, int]:
    """Per host, the number of 'Accepted publickey' lines in its sshd log so far."""
    counts = {}
    for name in names:
        try:
            text = lab.path(name, "/var/log/sshd.log").read_text(errors="replace")
        except OSError:
            text = ""
        counts[name] = text.count("Accepted publickey")
    return counts


def connections_per_host(before: Mapping[str, int], after: Mapping[str, int]) -> float:
    """Mean SSH logins per host between two :func:`accepted` counts."""
    return statistics.mean(after[n] - before[n] for n in before)


def free_port(start: int) -> int:
    """The first port >= start that 127.0.0.1 can bind."""
    for port in range(start, start + 2000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@contextlib.contextmanager
def size_env(lab: Lab, size: Size, scratch: Path) -> Iterator[Env]:
    """Endpoints, known_hosts and a Guardian inventory for the first ``size.hosts`` lab hosts;
    with a round-trip time, the latency proxy in front of them (stopped on exit)."""
    hosts = lab.hosts[: size.hosts]
    if len(hosts) < size.hosts:
        raise SystemExit(f"the lab has {len(hosts)} hosts, size {size.label} needs {size.hosts}")
    keys = {}
    for line in lab.known_hosts_path.read_text().splitlines():
        addr, ktype, key = line.split()[:3]
        keys[addr] = f"{ktype} {key}"
    scratch.mkdir(parents=True, exist_ok=True)
    proxy: subprocess.Popen[str] | None = None
    if size.rtt_ms:
        ports, port = [], PROXY_PORT_BASE
        for _ in hosts:
            port = free_port(port)
            ports.append(port)
            port += 1
        endpoints = [Endpoint(h.name, "127.0.0.1", p, h.manager) for h, p in zip(hosts, ports)]
        known = scratch / f"known_hosts-{size.label}"
        known.write_text("".join(f"[127.0.0.1]:{t.port} {keys[h.address]}\n" for t, h in zip(endpoints, hosts)))
        maps = [f"{t.port}={h.address}:22" for t, h in zip(endpoints, hosts)]
        proxy = subprocess.Popen(
            [sys.executable, str(BENCH / "latency_proxy.py"), "--delay-ms", str(size.rtt_ms / 2), *maps],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proxy.stdout is not None
        if proxy.stdout.readline().strip() != "ready":
            raise SystemExit("latency proxy did not start")
    else:
        endpoints = [Endpoint(h.name, h.address, 22, h.manager) for h in hosts]
        known = lab.known_hosts_path
    inventory = scratch / f"inventory-{size.label}.yml"
    lines = [
        "vars:",
        "  user: root",
        f"  key: {lab.key_path}",
        f"  known_hosts: {known}",
        f"  app_dir: {APP_DIR}",
        f"  python: {HOST_PYTHON}",
        "  restart_budget_max: 100000  # the benchmark restarts the same daemons on purpose, run after run",
        "groups:",
        "  lab:",
        "    hosts:",
    ]
    lines += [f"      {t.name}: {{address: {t.address}, port: {t.port}, manager: {t.manager}}}" for t in endpoints]
    inventory.write_text("\n".join(lines) + "\n")
    try:
        yield Env(lab, size, endpoints, known, scratch, inventory)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
