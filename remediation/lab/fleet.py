"""The lab fleet: many isolated droplets on one machine, each a real OpenSSH server.

Every host lives in its own network namespace (veth on a bridge in 198.18.<subnet>.0/24, part
of the RFC 2544 benchmarking range) and its own PID, mount and UTS namespaces, with
``hostinit.py`` as PID 1 running sshd, cron and a process manager for the stock-bot
example app.  Requires root.

A host can also be *private*: its only link is a veth pair into another lab host's namespace
(198.19.<subnet>.0/24), so it is reachable only through that host (a jump host), exactly like a
droplet on a provider's private network.  The root namespace gets an ``unreachable`` route for
the private range, so nothing from the controller can reach those hosts directly, and nothing
meant for them leaves the machine.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from remediation.errors import GuardianError
from remediation.lab import hostinit

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORKDIR = REPO / ".lab"
DEFAULT_INVENTORY = REPO / "inventory" / "lab.yml"
DEFAULT_APP_SOURCE = REPO / "examples" / "stock-bot"

MANAGERS = ("supervisor", "process-compose", "signal")
DEFAULT_MANAGER_CYCLE = ("supervisor", "process-compose", "signal", "supervisor", "supervisor", "supervisor")
APP_FAULTS = ("uw", "sip", "stale-lock", "live-lock", "kill", "hang", "flood", "slow-stop", "reset")
FAULTS = (*APP_FAULTS, "sshd-down")

HOST_PYTHON = "/usr/bin/python3"
APP_DIR = "/root/stock-bot"
STATE_FILES = ("state/uw_daemon.json", "state/trading_bot.json")
DAEMON_PIDFILES = {"uw-daemon": "state/uw_flow_daemon.pid", "trading-bot": "state/main.pid"}
#: program -> (status file, script, healthy status)
DAEMONS = {
    "uw-daemon": ("state/uw_daemon.json", "uw_flow_daemon.py", "connected"),
    "trading-bot": ("state/trading_bot.json", "main.py", "streaming"),
}
MANAGER_MARKERS = {
    "supervisor": "supervisord",
    "process-compose": "process-compose",
    "signal": "deploy_supervisor.py",
}
HOST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "SHELL": "/bin/bash",
    "LANG": "C.UTF-8",
}
HOSTINIT = Path(hostinit.__file__).resolve()
_MOUNTED = (*hostinit.BIND_DIRS, *hostinit.BIND_FILES)

UP_TIMEOUT = 90.0


class LabError(GuardianError):
    """The lab could not be brought up or operated."""


@dataclass(frozen=True)
class LabHost:
    """One droplet of the lab fleet."""

    name: str
    address: str
    netns: str
    manager: str
    via: str | None = None  # the lab host this private host is reachable through


@dataclass(frozen=True)
class HostStatus:
    """Health of one lab host as seen from the root namespace."""

    name: str
    address: str
    manager: str
    netns: bool
    init_alive: bool
    sshd: bool
    manager_running: bool
    daemons: dict[str, int | None] = field(default_factory=dict)
    via: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the host and both daemons are up."""
        return (
            self.netns
            and self.init_alive
            and self.sshd
            and self.manager_running
            and all(pid is not None for pid in self.daemons.values())
        )


def _run(argv: Sequence[str], *, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
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


def _same_process(pid: int | None, start: int | None) -> bool:
    return pid is not None and start is not None and proc_starttime(pid) == start


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [int(p) for p in text.split()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def ssh_banner(address: str, port: int = 22, timeout: float = 2.0) -> str | None:
    """Return the SSH identification line the server sends, or None."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            data = b""
            while b"\n" not in data and len(data) < 512:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\n", 1)[0].decode("ascii", "replace").strip()
    return line if line.startswith("SSH-") else None


def _netns_names() -> set[str]:
    out = _run(["ip", "netns", "list"], check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _link_names() -> set[str]:
    out = _run(["ip", "-o", "link", "show"], check=False).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.add(parts[1].strip().split("@", 1)[0])
    return names


class Lab:
    """A fleet of namespace droplets described by ``workdir/lab.json``."""

    def __init__(
        self,
        workdir: Path = DEFAULT_WORKDIR,
        *,
        prefix: str = "glab",
        subnet: int = 1,
        inventory_path: Path | None = None,
        app_source: Path = DEFAULT_APP_SOURCE,
    ) -> None:
        """Describe a lab; nothing is created until :meth:`up`."""
        if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", prefix):
            raise ValueError(f"prefix must be 1-8 lowercase letters/digits, got {prefix!r}")
        if not 0 <= subnet <= 255:
            raise ValueError(f"subnet must be 0..255, got {subnet}")
        self.workdir = Path(workdir).resolve()
        self.prefix = prefix
        self.subnet = subnet
        self.inventory_path = Path(inventory_path or DEFAULT_INVENTORY).resolve()
        self.app_source = Path(app_source).resolve()
        self.key_path = self.workdir / "id_ed25519"
        self.known_hosts_path = self.workdir / "known_hosts"
        self.state_path = self.workdir / "lab.json"
        self.bridge = f"{prefix}-br"
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ state
    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"hosts": []}
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.state_path)

    def _update_host(self, name: str, **values: Any) -> None:
        with self._lock:
            data = self._load()
            for rec in data["hosts"]:
                if rec["name"] == name:
                    rec.update(values)
            self._save(data)

    def _record(self, host: str) -> dict[str, Any]:
        for rec in self._load()["hosts"]:
            if rec["name"] == host:
                return dict(rec)
        raise KeyError(f"no lab host {host!r}")

    @property
    def hosts(self) -> list[LabHost]:
        """The hosts recorded in ``workdir/lab.json``."""
        return [
            LabHost(name=r["name"], address=r["address"], netns=r["netns"], manager=r["manager"], via=r.get("via"))
            for r in self._load()["hosts"]
        ]

    def host(self, name: str) -> LabHost:
        """Look up one recorded host by name."""
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no lab host {name!r}")

    def hostdir(self, host: str) -> Path:
        """The root-namespace directory holding ``host``'s private files."""
        return self.workdir / "hosts" / host

    def path(self, host: str, inside: str) -> Path:
        """Map a path inside ``host`` to the same file seen from the root namespace."""
        if not inside.startswith("/"):
            inside = "/root/" + inside
        norm = os.path.normpath(inside)
        for mounted in _MOUNTED:
            if norm == mounted or norm.startswith(mounted + "/"):
                return self.hostdir(host) / norm.lstrip("/")
        return Path(norm)

    # --------------------------------------------------------------- processes
    def _init_pid(self, host: str) -> int:
        """Root-namespace PID of ``host``'s PID 1 (verified against its start time)."""
        rec = self._record(host)
        if not _same_process(rec.get("pid"), rec.get("start")):
            raise LabError(f"{host}: its namespace process is not running")
        if _same_process(rec.get("init_pid"), rec.get("init_start")):
            return int(rec["init_pid"])
        kids = _children(rec["pid"])
        if not kids:
            raise LabError(f"{host}: PID 1 of the host is not running")
        return kids[0]

    def _ns_processes(self, init_pid: int) -> dict[int, tuple[int, list[str]]]:
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

    def exec(
        self, host: str, argv: Sequence[str], *, timeout: float = 30, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``host`` (its net, pid, mount and UTS namespaces; cwd /root).

        On timeout the whole process group (inside the host too) is killed and
        :class:`subprocess.TimeoutExpired` carries the output so far.
        """
        init_pid = self._init_pid(host)
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

    # ---------------------------------------------------------------------- up
    @property
    def private_net(self) -> str:
        """The range private hosts live in; unreachable from the root namespace."""
        return f"198.19.{self.subnet}.0/24"

    def _assign(self, n: int, managers: Sequence[str] | None, behind: Mapping[str, str]) -> list[LabHost]:
        if n < 1 or n > 244:
            raise ValueError(f"a lab holds 1..244 hosts, not {n}")
        if managers is None:
            managers = [DEFAULT_MANAGER_CYCLE[i % len(DEFAULT_MANAGER_CYCLE)] for i in range(n)]
        elif len(managers) != n:
            raise ValueError(f"managers= has {len(managers)} entries for {n} hosts")
        width = 2 if n < 100 else 3
        hosts = []
        for i, manager in enumerate(managers, start=1):
            if manager not in MANAGERS:
                raise ValueError(f"unknown manager {manager!r}; choose from {MANAGERS}")
            name = f"h{i:0{width}d}"
            netns = f"{self.prefix}-{name}"
            if len(netns) > 15:
                raise ValueError(f"interface name {netns!r} is longer than 15 characters")
            via = behind.get(name)
            net = 19 if via else 18
            hosts.append(LabHost(name, f"198.{net}.{self.subnet}.{10 + i}", netns, manager, via))
        names = {h.name for h in hosts}
        for target, via in behind.items():
            if target not in names or via not in names:
                raise ValueError(f"behind={{{target!r}: {via!r}}}: both must be hosts of this lab ({sorted(names)})")
            if via in behind:
                raise ValueError(f"{via} is itself private; a private host's gateway must be a public host")
        return hosts

    def _ensure_bridge(self) -> None:
        if self.bridge not in _link_names():
            _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        addr = f"198.18.{self.subnet}.1/24"
        if addr not in _run(["ip", "-o", "addr", "show", "dev", self.bridge]).stdout:
            _run(["ip", "addr", "add", addr, "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])

    def _write_host_files(self, host: LabHost, pubkey: str) -> Path:
        hd = self.hostdir(host.name)
        if hd.exists():
            shutil.rmtree(hd)
        for inside in hostinit.BIND_DIRS:
            (hd / inside.lstrip("/")).mkdir(parents=True, exist_ok=True)
        (hd / "ssh").mkdir()
        (hd / "host.json").write_text(json.dumps({"name": host.name, "manager": host.manager}) + "\n")
        # The app and root's ssh key.
        shutil.copytree(
            self.app_source,
            hd / "root" / "stock-bot",
            symlinks=True,
            ignore=shutil.ignore_patterns("state", "__pycache__", "*.pyc", ".pytest_cache", "*.log"),
        )
        (hd / "root" / "stock-bot" / "state").mkdir(exist_ok=True)
        dot_ssh = hd / "root" / ".ssh"
        dot_ssh.mkdir(mode=0o700)
        (dot_ssh / "authorized_keys").write_text(pubkey)
        (dot_ssh / "authorized_keys").chmod(0o600)
        (hd / "ssh" / "authorized_keys").write_text(pubkey)
        # sshd.
        _run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"root@{host.name}",
                "-f",
                str(hd / "ssh" / "ssh_host_ed25519_key"),
            ]
        )
        (hd / "ssh" / "sshd_config").write_text(
            "# Generated by Guardian's lab fleet.\n"
            "Port 22\n"
            f"HostKey {hd}/ssh/ssh_host_ed25519_key\n"
            "PidFile /run/sshd.pid\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            f"AuthorizedKeysFile {hd}/ssh/authorized_keys .ssh/authorized_keys\n"
            "MaxStartups 100:30:200\n"
            "UseDNS no\n"
            "PrintMotd no\n"
            "AcceptEnv LANG LC_*\n"
            "Subsystem sftp internal-sftp\n"
        )
        # cron: an empty system crontab (the host's /etc/pam.d/cron works unchanged).
        (hd / "etc" / "crontab").write_text(
            "# /etc/crontab of a Guardian lab host: no system jobs.\n"
            "SHELL=/bin/sh\n"
            "PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
        )
        (hd / "etc" / "crontab").chmod(0o644)
        # Process managers.
        if host.manager == "supervisor":
            (hd / "etc" / "supervisor" / "supervisord.conf").write_text(_SUPERVISORD_CONF)
        pc = self.app_source / "bin" / "process-compose"
        if pc.exists():
            shutil.copy2(pc, hd / "usr" / "local" / "bin" / "process-compose")
            (hd / "usr" / "local" / "bin" / "process-compose").chmod(0o755)
        return hd

    def _setup_netns(self, host: LabHost) -> None:
        _run(["ip", "netns", "add", host.netns])
        _run(["ip", "link", "add", host.netns, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
        if host.via:
            self._link_private(host)
            return
        _run(["ip", "link", "set", host.netns, "master", self.bridge, "up"])
        batch = (
            "link set lo up\n"
            f"addr add {host.address}/24 dev eth0\n"
            "link set eth0 up\n"
            f"route add default via 198.18.{self.subnet}.1\n"
        )
        _run(["ip", "-n", host.netns, "-batch", "-"], input=batch)

    def _link_private(self, host: LabHost) -> None:
        """Move the host end of ``host``'s veth into its gateway's namespace: a point-to-point
        link 198.19.<subnet>.1 <-> the host's address, and no other route anywhere."""
        gateway = self.host(host.via) if host.via else None
        assert gateway is not None
        gw_address = f"198.19.{self.subnet}.1"
        _run(["ip", "link", "set", host.netns, "netns", gateway.netns])
        _run(
            ["ip", "-n", gateway.netns, "-batch", "-"],
            input=(
                f"link set {host.netns} up\n"
                f"addr add {gw_address}/32 dev {host.netns}\n"
                f"route add {host.address}/32 dev {host.netns}\n"
            ),
        )
        _run(
            ["ip", "-n", host.netns, "-batch", "-"],
            input=(
                "link set lo up\n"
                f"addr add {host.address}/32 dev eth0\n"
                "link set eth0 up\n"
                f"route add {gw_address}/32 dev eth0\n"
                f"route add default via {gw_address} dev eth0\n"
            ),
        )

    def _start_host(self, host: LabHost, pubkey: str) -> None:
        hd = self._write_host_files(host, pubkey)
        self._setup_netns(host)
        log = open(hd / "init.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    host.netns,
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
                    str(hd),
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
        start = None
        deadline = time.monotonic() + 30  # generous: 100 hosts starting at once on 2 busy cores
        while start is None and time.monotonic() < deadline:
            start = proc_starttime(proc.pid)
        self._update_host(host.name, pid=proc.pid, start=start)
        # Find PID 1 of the host: the child unshare forks.
        while time.monotonic() < deadline:
            kids = _children(proc.pid)
            if kids and _comm(proc.pid) == "unshare":
                self._update_host(host.name, init_pid=kids[0], init_start=proc_starttime(kids[0]))
                return
            if proc.poll() is not None:
                break
            time.sleep(0.01)
        raise LabError(f"{host.name}: namespace did not start; see {hd / 'init.log'}")

    def banner(self, host: LabHost, timeout: float = 1.0) -> str | None:
        """The host's SSH banner, probed from where it is reachable: the root namespace for a
        public host, its gateway's namespace for a private one."""
        if not host.via:
            return ssh_banner(host.address, timeout=timeout)
        netns = self.host(host.via).netns
        # ssh_banner() itself, run as a stand-alone program inside the gateway's namespace.
        probe = (
            f"import socket, sys\n{inspect.getsource(ssh_banner)}\n"
            "print(ssh_banner(sys.argv[1], timeout=float(sys.argv[2])) or '')\n"
        )
        proc = subprocess.run(
            ["ip", "netns", "exec", netns, HOST_PYTHON, "-I", "-c", probe, host.address, str(timeout)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout + 10,
        )
        line = proc.stdout.strip()
        return line or None

    def _host_ready(self, host: LabHost) -> bool:
        if self.banner(host) is None:
            return False
        return all(self.path(host.name, f"{APP_DIR}/{f}").exists() for f in STATE_FILES)

    def up(
        self, n: int = 4, *, managers: Sequence[str] | None = None, behind: Mapping[str, str] | None = None
    ) -> list[LabHost]:
        """Create ``n`` hosts, wait until each answers SSH and runs its daemons.

        ``behind`` maps a host name to the host it is reachable through, e.g. ``{"h02": "h01"}``
        makes h02 a private host with no route from the controller (see the module docstring).
        """
        hosts = self._assign(n, managers, behind or {})
        if not self.app_source.is_dir():
            raise LabError(f"app source {self.app_source} does not exist")
        self.down()  # leftovers of an earlier lab with this prefix (no-op when there are none)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Record everything first so down() can clean up a half-created lab.
        self._save(
            {
                "prefix": self.prefix,
                "subnet": self.subnet,
                "bridge": self.bridge,
                "private_net": self.private_net if behind else None,
                "hosts": [asdict(h) for h in hosts],
            }
        )
        for p in (self.key_path, self.key_path.with_suffix(".pub")):
            p.unlink(missing_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "guardian-lab", "-f", str(self.key_path)])
        pubkey = self.key_path.with_suffix(".pub").read_text()
        self._ensure_bridge()
        if behind:
            # Before any private link exists: nothing for 198.19.<subnet>/24 may leave the machine.
            _run(["ip", "route", "replace", "unreachable", self.private_net])
        workers = min(16, len(hosts))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            # Public hosts first: a private host's link goes into its gateway's namespace.
            for wave in ([h for h in hosts if not h.via], [h for h in hosts if h.via]):
                for fut in [pool.submit(self._start_host, h, pubkey) for h in wave]:
                    fut.result()
        self._write_known_hosts(hosts)
        self._write_inventory(hosts)
        self._wait_ready(hosts)
        return hosts

    def _wait_ready(self, hosts: list[LabHost], timeout: float = UP_TIMEOUT) -> None:
        pending = list(hosts)
        deadline = time.monotonic() + timeout
        while pending:
            for h in list(pending):
                if self._host_ready(h):
                    pending.remove(h)
                    continue
                rec = self._record(h.name)
                if not _same_process(rec.get("init_pid"), rec.get("init_start")):
                    log = self.hostdir(h.name) / "init.log"
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise LabError(f"{h.name}: PID 1 exited during start-up:\n{tail}")
            if not pending:
                break
            if time.monotonic() > deadline:
                raise LabError(f"hosts not ready after {timeout:.0f}s: {[h.name for h in pending]}")
            time.sleep(0.2)

    def _write_known_hosts(self, hosts: list[LabHost]) -> None:
        lines = []
        for h in hosts:
            key = (self.hostdir(h.name) / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"{h.address} {key[0]} {key[1]}\n")
        self.known_hosts_path.write_text("".join(lines))

    def _write_inventory(self, hosts: list[LabHost]) -> None:
        head = {
            "vars": {
                "user": "root",
                "key": str(self.key_path),
                "known_hosts": str(self.known_hosts_path),
                "app_dir": APP_DIR,
                "python": HOST_PYTHON,
            }
        }
        entries: dict[str, dict[str, str]] = {}
        for h in hosts:
            entries[h.name] = {"address": h.address, "manager": h.manager}
            if h.via:
                entries[h.name]["jump"] = h.via
        groups = {"groups": {"lab": {"hosts": entries}}}
        text = (
            f"# Generated by Guardian's lab fleet (remediation.lab) for {self.workdir}.\n"
            "# Do not edit: `Lab.up` rewrites this file.\n"
            + yaml.safe_dump(head, sort_keys=False, default_flow_style=False)
            + yaml.safe_dump(groups, sort_keys=False, default_flow_style=None)
        )
        self.inventory_path.parent.mkdir(parents=True, exist_ok=True)
        self.inventory_path.write_text(text)

    # -------------------------------------------------------------------- down
    def _stop_host(self, rec: dict[str, Any]) -> None:
        pids: list[tuple[int, int]] = []
        for pid_key, start_key in (("init_pid", "init_start"), ("pid", "start")):
            pid, start = rec.get(pid_key), rec.get(start_key)
            if pid is not None and start is not None and _same_process(pid, start):
                pids.append((int(pid), int(start)))
        for pid, _ in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_same_process(p, s) for p, s in pids):
            time.sleep(0.05)
        for pid, start in pids:
            if _same_process(pid, start):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def down(self) -> None:
        """Stop every recorded host and remove namespaces and links; idempotent."""
        data = self._load()
        recs = data.get("hosts", [])
        if recs:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(recs))) as pool:
                list(pool.map(self._stop_host, recs))
        existing = _netns_names()
        pattern = re.compile(rf"^{re.escape(self.prefix)}-h\d{{2,3}}$")
        names = {r["netns"] for r in recs} | {ns for ns in existing if pattern.match(ns)}
        for ns in sorted(names & existing):
            _run(["ip", "netns", "del", ns], check=False)
        for link in sorted(_link_names()):
            if link == self.bridge or pattern.match(link) or link in names:
                _run(["ip", "link", "del", link], check=False)
        if data.get("private_net"):
            _run(["ip", "route", "del", "unreachable", str(data["private_net"])], check=False)
        # Wait for the recorded processes to be gone for good.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
            _same_process(r.get("pid"), r.get("start")) or _same_process(r.get("init_pid"), r.get("init_start"))
            for r in recs
        ):
            time.sleep(0.05)
        self.state_path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ status
    def status(self) -> list[HostStatus]:
        """Per-host health: netns, PID 1, sshd banner, manager and daemon pids."""
        existing = _netns_names()
        result = []
        for h in self.hosts:
            try:
                init_pid: int | None = self._init_pid(h.name)
            except LabError:
                init_pid = None
            procs = self._ns_processes(init_pid) if init_pid else {}
            marker = MANAGER_MARKERS[h.manager]
            manager_running = any(any(marker in a for a in argv[:3]) for _, argv in procs.values())
            daemons: dict[str, int | None] = {}
            for name, rel in DAEMON_PIDFILES.items():
                pid = self._read_pid(self.path(h.name, f"{APP_DIR}/{rel}"))
                daemons[name] = pid if pid is not None and pid in procs else None
            result.append(
                HostStatus(
                    name=h.name,
                    address=h.address,
                    manager=h.manager,
                    netns=h.netns in existing,
                    init_alive=init_pid is not None,
                    sshd=self.banner(h) is not None,
                    manager_running=manager_running,
                    daemons=daemons,
                    via=h.via,
                )
            )
        return result

    @staticmethod
    def _read_pid(path: Path) -> int | None:
        try:
            text = path.read_text().strip()
        except OSError:
            return None
        try:
            return int(json.loads(text)["pid"]) if text.startswith("{") else int(text.split()[0])
        except (ValueError, KeyError, IndexError, TypeError):
            return None

    # ------------------------------------------------------------------ faults
    def sshd_pid(self, host: str) -> int | None:
        """PID (inside the host) of its running sshd listener, or None."""
        pid = self._read_pid(self.path(host, "/run/sshd.pid"))
        if pid is None:
            return None
        procs = self._ns_processes(self._init_pid(host))
        if pid in procs and "sshd" in " ".join(procs[pid][1][:1]):
            return pid
        return None

    def fault(self, host: str, kind: str) -> str:
        """Inject fault ``kind`` into ``host`` and return what the fault script said."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; choose from {FAULTS}")
        h = self.host(host)
        if kind == "sshd-down":
            pid = self.sshd_pid(host)
            if pid is None:
                return f"{host}: sshd already down"
            self.exec(host, ["kill", str(pid)])
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.banner(h, timeout=0.5) is not None:
                time.sleep(0.05)
            return f"{host}: killed sshd (pid {pid})"
        proc = self.exec(host, [HOST_PYTHON, f"{APP_DIR}/lab_fault.py", kind], timeout=60, check=True)
        out = proc.stdout + proc.stderr
        if kind == "reset":
            out += self._heal_daemons(host)
            if self.sshd_pid(host) is None:
                os.kill(self._init_pid(host), signal.SIGUSR1)
                deadline = time.monotonic() + 10
                while self.banner(h, timeout=0.5) is None:
                    if time.monotonic() > deadline:
                        raise LabError(f"{host}: sshd did not come back")
                    time.sleep(0.05)
                out += f"{host}: restarted sshd\n"
        return out

    def _unhealthy_daemons(self, host: str) -> dict[str, int | None]:
        """Daemons that are dead or report a fault: {program: live pid or None}."""
        procs = self._ns_processes(self._init_pid(host))
        bad: dict[str, int | None] = {}
        for program, (status_file, script, healthy) in DAEMONS.items():
            try:
                state = json.loads(self.path(host, f"{APP_DIR}/{status_file}").read_text())
            except (OSError, ValueError):
                state = {}
            pid = state.get("pid")
            alive = isinstance(pid, int) and pid in procs and any(script in a for a in procs[pid][1])
            if not alive:
                bad[program] = None
            elif state.get("status") != healthy:
                bad[program] = pid
        return bad

    def _heal_daemons(self, host: str, timeout: float = 20) -> str:
        """Restart faulty or dead daemons through the host's own process manager."""
        bad = self._unhealthy_daemons(host)
        if not bad:
            return ""
        manager = self.host(host).manager
        for program, pid in bad.items():
            if manager == "supervisor":
                self.exec(host, ["supervisorctl", "restart", program], check=False)
            elif manager == "process-compose":
                self.exec(host, ["/usr/local/bin/process-compose", "process", "restart", program], check=False)
            elif pid is not None:  # signal: the deploy supervisor respawns what exits
                self.exec(host, ["kill", "-TERM", str(pid)], check=False)
        deadline = time.monotonic() + timeout
        while self._unhealthy_daemons(host):
            if time.monotonic() > deadline:
                raise LabError(f"{host}: daemons still unhealthy after reset: {sorted(self._unhealthy_daemons(host))}")
            time.sleep(0.1)
        return f"{host}: restarted {', '.join(sorted(bad))} via {manager}\n"


_SUPERVISORD_CONF = """\
; Generated by Guardian's lab fleet.
[unix_http_server]
file=/run/supervisor.sock
chmod=0700

[supervisord]
user=root
logfile=/var/log/supervisor/supervisord.log
pidfile=/run/supervisord.pid
childlogdir=/var/log/supervisor

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix:///run/supervisor.sock

[program:uw-daemon]
command=/usr/bin/python3 /root/stock-bot/uw_flow_daemon.py
directory=/root/stock-bot
autostart=true
autorestart=false
stdout_logfile=/var/log/supervisor/uw-daemon.log
redirect_stderr=true

[program:trading-bot]
command=/usr/bin/python3 /root/stock-bot/main.py
directory=/root/stock-bot
autostart=true
autorestart=false
stdout_logfile=/var/log/supervisor/trading-bot.log
redirect_stderr=true
"""
