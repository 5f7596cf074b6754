"""The lab fleet: many isolated droplets on one machine, each a real OpenSSH server.

Every host lives in its own network namespace (:mod:`.network`) and its own PID, mount and UTS
namespaces, with ``hostinit.py`` as PID 1 running sshd, cron and a process manager for the
stock-bot example app (its files: :mod:`.hostfiles`). Requires root. :class:`Lab` is the
lifecycle: ``up`` records every host in ``WORKDIR/lab.json`` before creating anything, so
``down`` ends exactly the processes it started (by PID and start time, :mod:`.procs`) and removes
the namespaces and links, even of a half-created lab. Faults: :mod:`.faults`.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import faults, hostfiles, network, procs, sysd
from .model import (
    APP_DIR,
    DAEMON_PIDFILES,
    DEFAULT_APP_SOURCE,
    DEFAULT_INVENTORY,
    DEFAULT_MANAGER_CYCLE,
    DEFAULT_WORKDIR,
    MANAGER_MARKERS,
    MANAGERS,
    STATE_FILES,
    UP_TIMEOUT,
    HostStatus,
    LabError,
    LabHost,
)


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
        return hostfiles.inside_path(self.hostdir(host), inside)

    # --------------------------------------------------------------- processes
    def init_pid(self, host: str) -> int:
        """Root-namespace PID of ``host``'s PID 1 (verified against its start time)."""
        rec = self._record(host)
        if not procs.same_process(rec.get("pid"), rec.get("start")):
            raise LabError(f"{host}: its namespace process is not running")
        if procs.same_process(rec.get("init_pid"), rec.get("init_start")):
            return int(rec["init_pid"])
        kids = procs.children(rec["pid"])
        if not kids:
            raise LabError(f"{host}: PID 1 of the host is not running")
        return kids[0]

    def processes(self, host: str) -> dict[int, tuple[int, list[str]]]:
        """Processes running inside ``host``: {pid inside: (root-namespace pid, argv)}."""
        return procs.ns_processes(self.init_pid(host))

    def exec(
        self, host: str, argv: Sequence[str], *, timeout: float = 30, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``host`` (its net, pid, mount and UTS namespaces; cwd /root).

        On timeout the whole process group (inside the host too) is killed and
        :class:`subprocess.TimeoutExpired` carries the output so far.
        """
        return procs.nsenter(self.init_pid(host), argv, timeout=timeout, check=check)

    def banner(self, host: LabHost, timeout: float = 1.0) -> str | None:
        """The host's SSH banner, probed from where it is reachable: the root namespace for a
        public host, its gateway's namespace for a private one."""
        if not host.via:
            return network.ssh_banner(host.address, timeout=timeout)
        return network.ssh_banner_in(self.host(host.via).netns, host.address, timeout)

    # ---------------------------------------------------------------------- up
    @property
    def private_net(self) -> str:
        """The range private hosts live in; unreachable from the root namespace."""
        return network.private_net(self.subnet)

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
            address = network.private_address(self.subnet, i) if via else network.public_address(self.subnet, i)
            hosts.append(LabHost(name, address, netns, manager, via))
        names = {h.name for h in hosts}
        for target, via in behind.items():
            if target not in names or via not in names:
                raise ValueError(f"behind={{{target!r}: {via!r}}}: both must be hosts of this lab ({sorted(names)})")
            if via in behind:
                raise ValueError(f"{via} is itself private; a private host's gateway must be a public host")
        return hosts

    def up(
        self, n: int = 4, *, managers: Sequence[str] | None = None, behind: Mapping[str, str] | None = None
    ) -> list[LabHost]:
        """Create ``n`` hosts, wait until each answers SSH and runs its daemons.

        ``behind`` maps a host name to the host it is reachable through, e.g. ``{"h02": "h01"}``
        makes h02 a private host with no route from the controller (see :mod:`.network`).
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
        pubkey = hostfiles.write_client_key(self.key_path)
        network.ensure_bridge(self.bridge, self.subnet)
        if behind:
            network.block_private_range(self.subnet)
        workers = min(16, len(hosts))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            # Public hosts first: a private host's link goes into its gateway's namespace.
            for wave in ([h for h in hosts if not h.via], [h for h in hosts if h.via]):
                for fut in [pool.submit(self._start_host, h, pubkey) for h in wave]:
                    fut.result()
        hostfiles.write_known_hosts(self.known_hosts_path, hosts, self.hostdir)
        hostfiles.write_inventory(
            self.inventory_path, hosts, key=self.key_path, known_hosts=self.known_hosts_path, workdir=self.workdir
        )
        self._wait_ready(hosts)
        return hosts

    def _start_host(self, host: LabHost, pubkey: str) -> None:
        hd = self.hostdir(host.name)
        hostfiles.write_host_files(hd, host, pubkey, self.app_source)
        gateway = self.host(host.via) if host.via else None
        network.setup_netns(host, bridge=self.bridge, subnet=self.subnet, gateway=gateway)
        proc = procs.spawn_init(host.netns, hd)
        deadline = time.monotonic() + 30  # generous: 100 hosts starting at once on 2 busy cores
        self._update_host(host.name, pid=proc.pid, start=procs.await_starttime(proc.pid, deadline))
        init_pid = procs.await_init(proc, deadline)
        if init_pid is None:
            raise LabError(f"{host.name}: namespace did not start; see {hd / 'init.log'}")
        self._update_host(host.name, init_pid=init_pid, init_start=procs.proc_starttime(init_pid))

    def _host_ready(self, host: LabHost) -> bool:
        if self.banner(host) is None:
            return False
        return all(self.path(host.name, f"{APP_DIR}/{f}").exists() for f in STATE_FILES)

    def _wait_ready(self, hosts: list[LabHost], timeout: float = UP_TIMEOUT) -> None:
        pending = list(hosts)
        deadline = time.monotonic() + timeout
        while pending:
            for h in list(pending):
                if self._host_ready(h):
                    pending.remove(h)
                    continue
                rec = self._record(h.name)
                if not procs.same_process(rec.get("init_pid"), rec.get("init_start")):
                    log = self.hostdir(h.name) / "init.log"
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise LabError(f"{h.name}: PID 1 exited during start-up:\n{tail}")
            if not pending:
                break
            if time.monotonic() > deadline:
                raise LabError(f"hosts not ready after {timeout:.0f}s: {[h.name for h in pending]}")
            time.sleep(0.2)

    # -------------------------------------------------------------------- down
    @staticmethod
    def _recorded_pids(rec: Mapping[str, Any]) -> list[tuple[int, int]]:
        """A host record's PID 1 and namespace process, each as (pid, start time)."""
        found: list[tuple[int, int]] = []
        for pid_key, start_key in (("init_pid", "init_start"), ("pid", "start")):
            pid, start = rec.get(pid_key), rec.get(start_key)
            if pid is not None and start is not None:
                found.append((int(pid), int(start)))
        return found

    def down(self) -> None:
        """Stop every recorded host and remove namespaces and links; idempotent."""
        data = self._load()
        recs = data.get("hosts", [])
        # A systemd PID 1 re-executes itself on SIGTERM: power those hosts off first.
        sysd.power_off(
            [p for r in recs if r.get("manager") == "systemd" for p in self._recorded_pids(r)[:1]],
        )
        if recs:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(recs))) as pool:
                list(pool.map(lambda rec: procs.stop(self._recorded_pids(rec)), recs))
        network.remove(self.prefix, self.bridge, [r["netns"] for r in recs], data.get("private_net"))
        # Wait for the recorded processes to be gone for good.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
            procs.same_process(r.get("pid"), r.get("start"))
            or procs.same_process(r.get("init_pid"), r.get("init_start"))
            for r in recs
        ):
            time.sleep(0.05)
        left = sysd.remove_cgroups(self.prefix, [r["netns"] for r in recs if r.get("manager") == "systemd"])
        if left:
            raise LabError(f"lab down: cgroups still in use: {', '.join(left)}")
        self.state_path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ status
    def status(self) -> list[HostStatus]:
        """Per-host health: netns, PID 1, sshd banner, manager and daemon pids."""
        existing = network.netns_names()
        result = []
        for h in self.hosts:
            try:
                init_pid: int | None = self.init_pid(h.name)
            except LabError:
                init_pid = None
            running = procs.ns_processes(init_pid) if init_pid else {}
            marker = MANAGER_MARKERS[h.manager]
            manager_running = any(any(marker in a for a in argv[:3]) for _, argv in running.values())
            daemons: dict[str, int | None] = {}
            for name, rel in DAEMON_PIDFILES.items():
                pid = procs.read_pid(self.path(h.name, f"{APP_DIR}/{rel}"))
                daemons[name] = pid if pid is not None and pid in running else None
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

    # ------------------------------------------------------------------ faults
    def sshd_pid(self, host: str) -> int | None:
        """PID (inside the host) of its running sshd listener, or None."""
        return faults.sshd_pid(self, host)

    def fault(self, host: str, kind: str) -> str:
        """Inject fault ``kind`` into ``host`` (one of :data:`.faults.FAULTS`) and return what the
        fault script said; ``reset`` puts the host back as it started."""
        return faults.inject(self, host, kind)
