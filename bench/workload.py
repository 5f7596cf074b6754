"""The benchmark's hosts: sizes, what every peer shares for one size, faults before and checks after.

Every run starts from the same state: each host reset, the previous run's logs and alerts
removed, then a UW fault on one host in four and a SIP fault on the next. After a run the health
check runs inside every host (no SSH) and the sshd logs say how many SSH logins each peer made.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
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
#: With ``pidfiles=False`` the app's daemons write their pid files here (relative to the app dir,
#: named in ``state/.pid_dir``, see examples/stock-bot/applib.py), where Guardian does not look.
PID_DIR_ELSEWHERE = "run"
_TICK = os.sysconf("SC_CLK_TCK")

T = TypeVar("T")
R = TypeVar("R")


def lab_names(prefix: str, subnet: int) -> tuple[str, int]:
    """The bench lab's prefix and subnet, moved aside by ``GUARDIAN_TEST_LAB_SHIFT=N`` (prefix + N,
    subnet + 10 N) as the test labs are (tests/conftest.py), so that two checkouts can run the
    bench and the lab tests on one machine without sharing hosts."""
    shift = int(os.environ.get("GUARDIAN_TEST_LAB_SHIFT", "0") or 0)
    return (f"{prefix}{shift}", subnet + 10 * shift) if shift else (prefix, subnet)


@dataclass(frozen=True)
class Size:
    """One benchmark size: host count, simulated round-trip time (ms, 0 = direct) and whether the
    app's daemons write their pid files where Guardian looks (state/) or elsewhere."""

    hosts: int
    rtt_ms: int = 0
    pidfiles: bool = True

    @property
    def base(self) -> str:
        """The size without its pid-file mode: ``40``, ``20@50ms``."""
        return f"{self.hosts}@{self.rtt_ms}ms" if self.rtt_ms else str(self.hosts)

    @property
    def label(self) -> str:
        """The size as the table shows it: ``40`` (pid files where Guardian looks) or ``40-nopid``."""
        return self.base if self.pidfiles else f"{self.base}-nopid"

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

    @property
    def pid_dir(self) -> str:
        """Where the daemons write their pid files, relative to the app dir (the peers know it)."""
        return "state" if self.size.pidfiles else PID_DIR_ELSEWHERE


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


def set_pidfiles(lab: Lab, names: Sequence[str], *, where_guardian_looks: bool) -> None:
    """Make the app's daemons write their pid files in state/ (where Guardian looks by default) or
    in ``PID_DIR_ELSEWHERE`` (where it does not): the marker file, then the daemons restarted by a
    reset so that they write them in the new place."""

    def one(name: str) -> None:
        marker = lab.path(name, f"{APP_DIR}/state/.pid_dir")
        current = marker.read_text().strip() if marker.exists() else ""
        wanted = "" if where_guardian_looks else PID_DIR_ELSEWHERE
        if current == wanted:
            return
        if wanted:
            marker.write_text(wanted + "\n")
        else:
            marker.unlink()
        # The daemons wrote their pid files in the old place: stop them (SIGTERM, by the pid they
        # publish) and let the reset start them again through the host's manager (the signal
        # style's respawner restarts them by itself) and wait until they wrote the new ones.
        for status_file in ("uw_daemon.json", "trading_bot.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                pid = int(json.loads(lab.path(name, f"{APP_DIR}/state/{status_file}").read_text())["pid"])
                lab.exec(name, ["kill", str(pid)], check=False)
        for f in ("uw_flow_daemon.pid", "main.pid"):
            lab.path(name, f"{APP_DIR}/{current or 'state'}/{f}").unlink(missing_ok=True)
        time.sleep(0.3)
        lab.fault(name, "reset")

    parallel(one, names)


def host_cpu(lab: Lab, names: Sequence[str]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by every process in each host's PID namespace,
    including what they have reaped (sshd's sessions, the manager's restarted daemons): one pass
    over /proc. The difference of two calls is what a run cost inside each host, for any peer
    that runs there through sshd; a job started from outside (nsenter) is reaped outside and has
    to be added from its own rusage."""
    wanted = {}
    for name in names:
        with contextlib.suppress(Exception):
            wanted[os.readlink(f"/proc/{lab.init_pid(name)}/ns/pid")] = name
    totals = dict.fromkeys(names, 0.0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            name = wanted.get(os.readlink(f"/proc/{entry}/ns/pid"))
            if name is None:
                continue
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # after the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based
        totals[name] += sum(int(f) for f in fields[11:15]) / _TICK
    return totals


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
    set_pidfiles(lab, [h.name for h in hosts], where_guardian_looks=size.pidfiles)
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
        "  verify_passes: 1  # the peers' job re-checks once: the same work (Guardian's default is 2 over 5 s)",
        "groups:",
        "  lab:",
        "    hosts:",
    ]
    for t in endpoints:
        services = ""
        if not size.pidfiles and t.manager == "signal":
            # README defaults everywhere else; the signal style cannot restart without the pid.
            services = (
                f", services: {{uw-daemon: {{pidfile: {PID_DIR_ELSEWHERE}/uw_flow_daemon.pid}}, "
                f"trading-bot: {{pidfile: {PID_DIR_ELSEWHERE}/main.pid}}}}"
            )
        lines.append(f"      {t.name}: {{address: {t.address}, port: {t.port}, manager: {t.manager}{services}}}")
    inventory.write_text("\n".join(lines) + "\n")
    try:
        yield Env(lab, size, endpoints, known, scratch, inventory)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
