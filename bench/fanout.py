"""Fan-out benchmark: Guardian premarket against ansible-core, pyinfra, plain OpenSSH and the floor.

Brings up its own lab (prefix "gb", subnet 198.18.5.0/24; "gc"/6 with --smoke), breaks a fixed
share of hosts before every run (UW fault on 1 host in 4, SIP fault on the next), runs each peer
on the same hosts with the same settle time, checks that every host healed, and prints medians,
ratios to Guardian, SSH connections per host and the controller's peak memory.

    .venv/bin/python bench/fanout.py                  # full benchmark (needs bench/.venv-peers)
    .venv/bin/python bench/fanout.py --smoke          # 4 hosts, guardian + floor + openssh, 1 run
    .venv/bin/python bench/fanout.py --sizes 40 --runs 5 --peers guardian,floor,openssh

Sizes: ``N`` (direct) or ``N@MS`` (through bench/latency_proxy.py adding MS/2 each way).
Needs root (the lab). Talks only to the lab's 198.18.5.x hosts and to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from remediation.lab import Lab  # noqa: E402
from remediation.lab.fleet import APP_DIR, HOST_PYTHON  # noqa: E402

PEERS_VENV = BENCH / ".venv-peers"
ALL_PEERS = ("guardian", "ansible", "pyinfra", "openssh", "floor")
SMOKE_PEERS = ("guardian", "floor", "openssh")
BIG_PEERS = ("guardian", "floor")  # sizes >= BIG run only these
BIG = 100
SETTLE = 1.0
CHECK = f"{APP_DIR}/pre_market_health_check.py"
PROXY_PORT_BASE = 43100
SSH_PEERS = ("guardian", "ansible", "pyinfra", "openssh")


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


@dataclass
class Target:
    """Where a peer connects to one host."""

    name: str
    address: str
    port: int
    manager: str


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

    @property
    def ok(self) -> bool:
        return self.healed == self.hosts and self.collected == self.hosts


@dataclass
class Env:
    """The lab and the files every peer shares for one size."""

    lab: Lab
    size: Size
    targets: list[Target]
    known_hosts: Path
    scratch: Path
    guardian_inventory: Path
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- measuring
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


def timed(
    argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None, log: Path
) -> tuple[float, int, float, float, float]:
    """Run argv; return (seconds, exit code, largest process's peak RSS MB, peak tree RSS MB, CPU s)."""
    with open(log, "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        with TreeSampler(proc.pid) as sampler:
            _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, proc.returncode, usage.ru_maxrss / 1024, sampler.peak_kb / 1024, cpu


# ----------------------------------------------------------------------------- the fleet
def parallel(fn: Any, items: Sequence[Any], workers: int = 16) -> list[Any]:
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
    """Targets, known_hosts and a Guardian inventory for the first ``size.hosts`` lab hosts."""
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
        targets = [Target(h.name, "127.0.0.1", p, h.manager) for h, p in zip(hosts, ports)]
        known = scratch / f"known_hosts-{size.label}"
        known.write_text("".join(f"[127.0.0.1]:{t.port} {keys[h.address]}\n" for t, h in zip(targets, hosts)))
        maps = [f"{t.port}={h.address}:22" for t, h in zip(targets, hosts)]
        proxy = subprocess.Popen(
            [sys.executable, str(BENCH / "latency_proxy.py"), "--delay-ms", str(size.rtt_ms / 2), *maps],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proxy.stdout is not None
        if proxy.stdout.readline().strip() != "ready":
            raise SystemExit("latency proxy did not start")
    else:
        targets = [Target(h.name, h.address, 22, h.manager) for h in hosts]
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
    lines += [f"      {t.name}: {{address: {t.address}, port: {t.port}, manager: {t.manager}}}" for t in targets]
    inventory.write_text("\n".join(lines) + "\n")
    try:
        yield Env(lab, size, targets, known, scratch, inventory)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)


# ----------------------------------------------------------------------------- peers
def peer_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PYINFRA_", "SSH_AUTH"))}
    env["PATH"] = f"{PEERS_VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def guardian_argv(env: Env, reports: Path, *, dry_run: bool = False) -> list[str]:
    argv = [
        sys.executable,
        "-c",
        "from remediation.cli import main; main()",
        "premarket",
        "--hosts",
        "lab",
        "--inventory",
        str(env.guardian_inventory),
        "--settle",
        str(SETTLE),
        "--forks",
        str(len(env.targets)),
        "--ssh-config",
        "",
        "--reports",
        str(reports),
    ]
    return [*argv, "--dry-run"] if dry_run else argv


def guardian_collected(reports: Path, names: Sequence[str]) -> int:
    """Hosts whose guardian.log came home in the latest run's report folder."""
    runs = sorted(p for p in reports.iterdir() if not p.is_symlink() and (p / "report.json").is_file())
    if not runs:
        return 0
    return sum((runs[-1] / n / "guardian.log").is_file() for n in names)


def tars_collected(out: Path, names: Sequence[str]) -> int:
    """Hosts whose tar of logs came home and holds guardian.log."""
    count = 0
    for n in names:
        try:
            with tarfile.open(out / f"{n}.tar") as tar:
                count += "guardian.log" in tar.getnames()
        except (OSError, tarfile.TarError):
            pass
    return count


def write_ansible_files(env: Env, out: Path, work: Path) -> dict[str, str]:
    """ansible.cfg and inventory for this size; returns the environment for ansible-playbook."""
    n = len(env.targets)
    inv = work / "hosts.ini"
    inv.write_text(
        "[lab]\n"
        + "".join(f"{t.name} ansible_host={t.address} ansible_port={t.port} manager={t.manager}\n" for t in env.targets)
        + f"[lab:vars]\nsettle={SETTLE:g}\nout_dir={out}\n"
    )
    control = Path(tempfile.mkdtemp(prefix="gb-acp-"))
    env.extra["ansible_control"] = control
    cfg = work / "ansible.cfg"
    cfg.write_text(
        "[defaults]\n"
        f"inventory = {inv}\n"
        f"forks = {n}\n"
        "host_key_checking = True\n"
        "gathering = explicit\n"
        f"interpreter_python = {HOST_PYTHON}\n"
        f"private_key_file = {env.lab.key_path}\n"
        "remote_user = root\n"
        "retry_files_enabled = False\n"
        "timeout = 30\n"
        f"local_tmp = {work / 'tmp'}\n"
        "[ssh_connection]\n"
        "pipelining = True\n"
        f"control_path_dir = {control}\n"
        "ssh_args = -F /dev/null -o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=yes "
        f"-o UserKnownHostsFile={env.known_hosts} -o IdentitiesOnly=yes\n"
    )
    penv = peer_env()
    penv.update(ANSIBLE_CONFIG=str(cfg), ANSIBLE_HOME=str(work / "home"), ANSIBLE_NOCOLOR="1")
    return penv


def close_control_masters(env: Env) -> None:
    """Stop ansible's ControlPersist masters so they do not linger into the next run."""
    control = env.extra.get("ansible_control")
    if not control:
        return
    for sock in Path(control).iterdir():
        subprocess.run(
            ["ssh", "-F", "/dev/null", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
            capture_output=True,
            check=False,
            timeout=10,
        )
    shutil.rmtree(control, ignore_errors=True)
    env.extra.pop("ansible_control", None)


def write_pyinfra_inventory(env: Env, out: Path, work: Path) -> Path:
    inv = work / "inventory.py"
    hosts = [
        (
            t.name,
            {
                "ssh_hostname": t.address,
                "ssh_port": t.port,
                "ssh_user": "root",
                "ssh_key": str(env.lab.key_path),
                "ssh_known_hosts_file": str(env.known_hosts),
                "ssh_strict_host_key_checking": "yes",
                "ssh_config_file": "/dev/null",
                "manager": t.manager,
                "settle": SETTLE,
                "out_dir": str(out),
            },
        )
        for t in env.targets
    ]
    inv.write_text(f"lab = {hosts!r}\n")
    return inv


def run_peer(peer: str, env: Env, rep: int, *, dry_run: bool = False, faults: bool = True, guard: bool = True) -> Run:
    """Prepare the hosts, run one peer once, verify and measure. ``guard=False`` runs Guardian
    with the blast-radius guard made a no-op (``--blast-radius 100``) to show what it costs."""
    lab, names = env.lab, [t.name for t in env.targets]
    label = peer + ("-dry" if dry_run else "" if faults else "-healthy") + ("" if guard else "-noguard")
    t0 = time.monotonic()
    prepare(lab, names, faults=faults)
    prep_s = time.monotonic() - t0
    work = env.scratch / f"{label}-{rep}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = work / "out"
    out.mkdir()
    log = work / "output.log"
    before = accepted(lab, names)
    cenv: dict[str, str] | None = None
    if peer == "guardian":
        argv = guardian_argv(env, out, dry_run=dry_run) + ([] if guard else ["--blast-radius", "100"])
    elif peer == "floor":
        argv = [sys.executable, str(BENCH / "floor.py"), "--lab", str(lab.workdir), "--inventory"]
        argv += [str(env.guardian_inventory), "--settle", str(SETTLE), "--out", str(out)]
    elif peer == "openssh":
        hosts_file = work / "hosts.txt"
        hosts_file.write_text("".join(f"{t.name} {t.address} {t.port} {t.manager}\n" for t in env.targets))
        argv = ["bash", str(BENCH / "ssh_fanout.sh"), str(hosts_file), str(lab.key_path), str(env.known_hosts)]
        argv += [str(out), f"{SETTLE:g}"]
    elif peer == "ansible":
        cenv = write_ansible_files(env, out, work)
        argv = [str(PEERS_VENV / "bin" / "ansible-playbook"), str(BENCH / "premarket.yml")]
    elif peer == "pyinfra":
        inv = write_pyinfra_inventory(env, out, work)
        cenv = peer_env()
        argv = [str(PEERS_VENV / "bin" / "pyinfra"), "-y", "--parallel", str(len(names)), str(inv)]
        argv += [str(BENCH / "pyinfra_deploy.py")]
    else:
        raise SystemExit(f"unknown peer {peer!r}; choose from {', '.join(ALL_PEERS)}")
    try:
        seconds, code, rss1, rss_tree, cpu = timed(argv, cwd=REPO, env=cenv, log=log)
    finally:
        close_control_masters(env)
    after = accepted(lab, names)
    conns = None if peer == "floor" else statistics.mean(after[n] - before[n] for n in names)
    codes = check_all(lab, names)
    note = ""
    if dry_run:
        # Nothing may change: faulted hosts stay faulted and no Guardian log is written.
        untouched = all(
            (codes[n] != 0) == (fault_kind(i) is not None) and not lab.path(n, f"{APP_DIR}/logs/guardian.log").exists()
            for i, n in enumerate(names)
        )
        healed = len(names) if untouched else 0
        collected = len(names)
        note = "dry-run: hosts untouched" if untouched else "dry-run CHANGED a host"
    else:
        healed = sum(c == 0 for c in codes.values())
        if peer == "guardian":
            collected = guardian_collected(out, names)
        elif peer == "floor":
            collected = len(names)  # the runner sends the files on its stdout; not stored
        else:
            collected = tars_collected(out, names)
    if not dry_run and (healed < len(names) or code != 0):
        tail = log.read_text(errors="replace")[-300:].replace("\n", " | ")
        note = (note + f" exit {code}; unhealthy: {[n for n in names if codes[n] != 0]}; log: {tail}").strip()
    return Run(
        label, env.size.label, seconds, code, healed, len(names), collected, conns, rss1, rss_tree, cpu, prep_s, note
    )


# ----------------------------------------------------------------------------- report
def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per (size, peer): medians over the runs, ratio to Guardian in the same size."""
    rows: list[dict[str, Any]] = []
    keys = list(dict.fromkeys((r.size, r.peer) for r in runs))
    for size, peer in keys:
        rs = [r for r in runs if r.size == size and r.peer == peer]
        conns = [r.conns_per_host for r in rs if r.conns_per_host is not None]
        rows.append(
            {
                "size": size,
                "peer": peer,
                "runs": len(rs),
                "ok": sum(r.ok for r in rs),
                "median": statistics.median(r.seconds for r in rs),
                "min": min(r.seconds for r in rs),
                "max": max(r.seconds for r in rs),
                "healed": f"{min(r.healed for r in rs)}/{rs[0].hosts}",
                "conns": statistics.median(conns) if conns else None,
                "rss1": max(r.rss_single_mb for r in rs),
                "rss_tree": max(r.rss_tree_mb for r in rs),
                "cpu": statistics.median(r.cpu_s for r in rs),
                "notes": sorted({r.note for r in rs if r.note}),
            }
        )
    for row in rows:
        base = next((r for r in rows if r["size"] == row["size"] and r["peer"] == "guardian"), None)
        row["x_guardian"] = row["median"] / base["median"] if base else None
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the summary rows."""
    head = (
        "| size | peer | ok/runs | median s | min s | max s | x guardian | healed | ssh conns/host "
        "| controller CPU s | peak RSS MB (largest proc) | peak RSS MB (process tree) |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        xg = f"{r['x_guardian']:.2f}" if r["x_guardian"] is not None else "-"
        conns = f"{r['conns']:.1f}" if r["conns"] is not None else "-"
        lines.append(
            f"| {r['size']} | {r['peer']} | {r['ok']}/{r['runs']} | {r['median']:.2f} | {r['min']:.2f} "
            f"| {r['max']:.2f} | {xg} | {r['healed']} | {conns} | {r['cpu']:.1f} "
            f"| {r['rss1']:.0f} | {r['rss_tree']:.0f} |"
        )
    return "\n".join(lines)


def targets(rows: list[dict[str, Any]]) -> list[tuple[str, bool | None, str]]:
    """(target, met? (None = not measured), numbers) for each of issue 7's targets."""

    def get(size: str, peer: str) -> dict[str, Any] | None:
        return next((r for r in rows if r["size"] == size and r["peer"] == peer and r["ok"] == r["runs"]), None)

    def best_peer(size: str) -> dict[str, Any] | None:
        found = [f for f in (get(size, p) for p in ("ansible", "pyinfra", "openssh")) if f is not None]
        return min(found, key=lambda r: r["median"]) if found else None

    out: list[tuple[str, bool | None, str]] = []
    g40, f40, b40 = get("40", "guardian"), get("40", "floor"), best_peer("40")
    if g40 and f40:
        ratio = g40["median"] / f40["median"]
        out.append(
            (
                "40 hosts: Guardian <= 1.2x floor",
                ratio <= 1.2,
                f"{g40['median']:.2f}s / {f40['median']:.2f}s = {ratio:.2f}x",
            )
        )
    else:
        out.append(("40 hosts: Guardian <= 1.2x floor", None, "not measured (or a run failed)"))
    if g40 and b40:
        ratio = g40["median"] / b40["median"]
        text = f"{g40['median']:.2f}s / {b40['peer']} {b40['median']:.2f}s = {ratio:.2f}x"
        out.append(("40 hosts: Guardian <= 0.85x best peer", ratio <= 0.85, text))
    else:
        out.append(("40 hosts: Guardian <= 0.85x best peer", None, "not measured (or a run failed)"))
    lat = next((r["size"] for r in rows if "@" in r["size"]), None)
    g20, b20 = (get(lat, "guardian"), best_peer(lat)) if lat else (None, None)
    if g20 and b20:
        ratio = g20["median"] / b20["median"]
        text = f"{g20['median']:.2f}s / {b20['peer']} {b20['median']:.2f}s = {ratio:.2f}x"
        out.append((f"{lat}: Guardian <= 0.85x best peer", ratio <= 0.85, text))
    else:
        out.append(("latency size: Guardian <= 0.85x best peer", None, "not measured (or a run failed)"))
    a40 = get("40", "ansible")
    if g40 and a40:
        ratio = a40["median"] / g40["median"]
        out.append(
            (
                "40 hosts: ansible / Guardian >= 10",
                ratio >= 10,
                f"{a40['median']:.2f}s / {g40['median']:.2f}s = {ratio:.1f}",
            )
        )
    else:
        out.append(("40 hosts: ansible / Guardian >= 10", None, "not measured (or a run failed)"))
    g100 = get(str(BIG), "guardian")
    if g100:
        out.append((f"{BIG} hosts: Guardian peak RSS < 100 MB", g100["rss1"] < 100, f"{g100['rss1']:.0f} MB"))
    else:
        out.append((f"{BIG} hosts: Guardian peak RSS < 100 MB", None, "not measured (or a run failed)"))
    dry, healthy = get("40", "guardian-dry"), get("40", "guardian-healthy")
    if dry and healthy:
        out.append(
            (
                "40 hosts: --dry-run faster than a healthy real run",
                dry["median"] < healthy["median"],
                f"{dry['median']:.2f}s vs {healthy['median']:.2f}s",
            )
        )
    else:
        out.append(("40 hosts: --dry-run faster than a healthy real run", None, "not measured (or a run failed)"))
    return out


def growth(rows: list[dict[str, Any]]) -> str:
    """Guardian's and the floor's time per host across direct sizes (linear growth check)."""
    parts = []
    for peer in ("guardian", "floor"):
        pts = sorted((int(r["size"]), r["median"]) for r in rows if r["peer"] == peer and r["size"].isdigit())
        if len(pts) >= 2:
            (n0, t0), (n1, t1) = pts[0], pts[-1]
            slope = (t1 - t0) / (n1 - n0) * 1000
            parts.append(f"{peer}: " + ", ".join(f"{n} hosts {t:.2f}s" for n, t in pts) + f" ({slope:.0f} ms/host)")
    return "; ".join(parts)


def machine() -> str:
    cpu = "unknown cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node()}: {platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB"


def versions() -> str:
    found = [f"python {platform.python_version()}"]
    for tool, argv in (
        ("ansible-core", [str(PEERS_VENV / "bin" / "ansible"), "--version"]),
        ("pyinfra", [str(PEERS_VENV / "bin" / "pyinfra"), "--version"]),
        ("openssh", ["ssh", "-V"]),
    ):
        with contextlib.suppress(OSError):
            p = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
            text = (p.stdout or p.stderr).splitlines()[0] if (p.stdout or p.stderr) else "?"
            found.append(f"{tool}: {text.strip()}")
    return "; ".join(found)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Parse options, bring the lab up, run every size and peer, print (and save) the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=f"10,40,{BIG},20@50", help="comma list: N or N@RTT_MS")
    parser.add_argument(
        "--runs", type=int, default=2, help="repetitions at 40 hosts and latency sizes; half (>= 1) elsewhere"
    )
    parser.add_argument("--ansible-runs", type=int, default=1, help="repetitions for ansible (default 1: slow)")
    parser.add_argument("--ansible-sizes", default="40", help="sizes ansible runs at (default 40)")
    parser.add_argument("--peers", default=",".join(ALL_PEERS), help=f"comma list of {', '.join(ALL_PEERS)}")
    parser.add_argument("--smoke", action="store_true", help="4 hosts, 1 run, guardian+floor+openssh")
    parser.add_argument("--no-dry-run", action="store_true", help="skip the --dry-run vs healthy runs at 40")
    parser.add_argument("--workdir", type=Path, help="lab workdir (default /tmp/gb-bench, or a temp dir)")
    parser.add_argument("--save", type=Path, help="write the results (Markdown) to this file")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("fanout: the lab needs root", file=sys.stderr)
        return 3
    if args.smoke:
        sizes, runs, peers = [Size(4)], 1, list(SMOKE_PEERS)
        prefix, subnet = "gc", 6
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gc-bench-"))
    else:
        sizes = [Size.parse(s) for s in args.sizes.split(",") if s]
        runs, peers = args.runs, [p for p in args.peers.split(",") if p]
        prefix, subnet = "gb", 5
        workdir = args.workdir or Path("/tmp/gb-bench")
    unknown = [p for p in peers if p not in ALL_PEERS]
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {', '.join(ALL_PEERS)}")
    if any(p in ("ansible", "pyinfra") for p in peers) and not PEERS_VENV.is_dir():
        parser.error(
            f"ansible/pyinfra need {PEERS_VENV}: python3 -m venv {PEERS_VENV} && "
            f"{PEERS_VENV}/bin/pip install ansible-core pyinfra"
        )
    ansible_sizes = set(args.ansible_sizes.split(","))

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # so the lab below is torn down on `kill` too, not only on Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()
    lab = Lab(workdir, prefix=prefix, subnet=subnet, inventory_path=workdir / "lab-inventory.yml")
    n_lab = max(s.hosts for s in sizes)
    print(f"fanout: bringing up {n_lab} lab hosts ({prefix}, 198.18.{subnet}.0/24) in {workdir}", flush=True)
    all_runs: list[Run] = []
    try:
        for attempt in (1, 2):
            try:
                lab.up(n_lab)
                break
            except Exception as exc:
                if attempt == 2:
                    raise
                print(f"fanout: lab up failed ({exc}); retrying once", flush=True)
                lab.down()
        print(f"fanout: lab up in {time.monotonic() - started:.0f}s", flush=True)
        for size in sizes:
            size_peers = [p for p in peers if size.hosts < BIG or p in BIG_PEERS]
            if size.rtt_ms:
                size_peers = [p for p in size_peers if p != "floor"]
            with size_env(lab, size, workdir / "scratch" / size.label) as env:
                size_runs = runs if size.label == "40" or size.rtt_ms or args.smoke else max(1, runs // 2)
                for rep in range(size_runs):
                    shift = rep % len(size_peers)
                    order = size_peers[shift:] + size_peers[:shift]
                    if "ansible" in order and (size.label not in ansible_sizes or rep >= args.ansible_runs):
                        order.remove("ansible")
                    jobs: list[tuple[str, bool, bool, bool]] = [(p, False, True, True) for p in order]
                    if size.label == "40" and rep < 2 and "guardian" in peers and not args.no_dry_run:
                        # --dry-run vs a healthy real run: twice, in both orders (single runs are noise)
                        pair = [("guardian", True, True, True), ("guardian", False, False, True)]
                        jobs += pair if rep == 0 else pair[::-1]
                    if (size.label == "40" or size.rtt_ms) and rep == 0 and "guardian" in peers and not args.smoke:
                        jobs.append(("guardian", False, True, False))  # what the blast-radius guard costs
                    for peer, dry, faults, guard in jobs:
                        run = run_peer(peer, env, rep, dry_run=dry, faults=faults, guard=guard)
                        all_runs.append(run)
                        conns = f"{run.conns_per_host:.1f}" if run.conns_per_host is not None else "-"
                        print(
                            f"  {size.label:>8} {run.peer:<17} run {rep + 1}: {run.seconds:6.2f}s "
                            f"healed {run.healed}/{run.hosts} collected {run.collected} conns/host {conns} "
                            f"(prep {run.prep_s:.1f}s) cpu {run.cpu_s:.1f}s "
                            f"rss {run.rss_single_mb:.0f}/{run.rss_tree_mb:.0f} MB {run.note}",
                            flush=True,
                        )
    finally:
        if not args.keep_lab:
            lab.down()
            if args.smoke or args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
    rows = summarize(all_runs)
    elapsed = time.monotonic() - started
    text = [
        f"Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"Machine: {machine()}",
        f"Versions: {versions()}",
        f"Command: bench/fanout.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip(),
        f"Settle {SETTLE:g}s for every peer; forks = hosts; UW fault on 1 host in 4, SIP on the next; "
        f"{runs} run(s) per peer at 40 hosts and with latency, {max(1, runs // 2)} elsewhere "
        f"(ansible {args.ansible_runs}, at {args.ansible_sizes}; "
        f"--dry-run and healthy runs twice at 40, guard off once at 40 and with latency), "
        f"peers alternated; ratios compare medians; total {elapsed:.0f}s; "
        f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
        "",
        table(rows),
        "",
    ]
    if not args.smoke:
        text.append("Targets:")
        for name, met, numbers in targets(rows):
            mark = "MET" if met else "NOT MET" if met is not None else "n/a"
            text.append(f"- {name}: {mark} ({numbers})")
        text.append(f"- Growth: {growth(rows)}")
    notes = [f"{r['size']} {r['peer']}: {n}" for r in rows for n in r["notes"]]
    if notes:
        text += ["", "Notes:", *[f"- {n}" for n in notes]]
    report = "\n".join(text)
    print()
    print(report)
    if args.save:
        args.save.write_text(report + "\n")
    failed = [r for r in rows if r["ok"] != r["runs"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
