"""Process managers: how to read a service's state and restart it, one class per manager.

Each manager builds argument lists (never shell strings) and parses the manager's own output;
the parsers are pure and tested from recorded output. ``restart`` returns once the manager has
been asked; confirmation (a new PID that stays up) is done by the runner through ``status``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .locks import pid_alive

COMMAND_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServiceSpec:
    """A logical service (``uw-daemon``) and how the host's manager knows it."""

    service: str  # logical name used by signatures
    name: str  # the manager's name for it (supervisor program, unit, process-compose process)
    program: str  # script the daemon runs (used to verify a pid really is that daemon)
    pidfile: str  # absolute path of the daemon's pid file (signal manager)


@dataclass(frozen=True)
class ServiceState:
    """A service's state as its manager reports it."""

    running: bool
    pid: Optional[int]
    state: str
    raw: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class ManagerError(Exception):
    """The process manager is missing, unreachable or refused the request."""


def run_command(argv: List[str], *, timeout: float = COMMAND_TIMEOUT) -> Tuple[int, str]:
    """Run ``argv`` (no shell) and return its exit code and combined output (bounded)."""
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise ManagerError(f"{argv[0]}: command not found on this host") from None
    except subprocess.TimeoutExpired:
        raise ManagerError(f"{' '.join(argv)} did not answer within {timeout:.0f}s") from None
    return proc.returncode, proc.stdout[-65536:].decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# Pure parsers (fed with recorded output in the tests)


def parse_supervisor_status(output: str, name: str) -> ServiceState:
    """Parse ``supervisorctl status NAME``: ``uw-daemon  RUNNING   pid 123, uptime 0:00:05``."""
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == name:
            state = parts[1]
            pid: Optional[int] = None
            if state == "RUNNING" and len(parts) >= 4 and parts[2] == "pid":
                digits = parts[3].rstrip(",")
                pid = int(digits) if digits.isdigit() else None
            return ServiceState(state == "RUNNING", pid, state, line.strip())
        if "no such process" in line.lower() and name in line:
            raise ManagerError(f"supervisor has no program named {name!r}")
    raise ManagerError(f"supervisorctl gave no status for {name!r}: {output.strip()[:200]!r}")


def supervisor_restart_started(output: str, name: str) -> bool:
    """Whether ``supervisorctl restart NAME`` output says the program was started."""
    return any(line.strip() == f"{name}: started" for line in output.splitlines())


def parse_systemctl_show(output: str) -> ServiceState:
    """Parse ``systemctl show UNIT --property=MainPID,ActiveState,SubState,LoadState``."""
    props: Dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    if props.get("LoadState") == "not-found":
        raise ManagerError("systemd has no such unit (LoadState=not-found)")
    if "ActiveState" not in props:
        raise ManagerError(f"systemctl show gave no ActiveState: {output.strip()[:200]!r}")
    main_pid = props.get("MainPID", "0")
    pid = int(main_pid) if main_pid.isdigit() and int(main_pid) > 0 else None
    state = f"{props['ActiveState']}/{props.get('SubState', '?')}"
    return ServiceState(props["ActiveState"] == "active" and pid is not None, pid, state, output)


def parse_process_compose_get(output: str, name: str) -> ServiceState:
    """Parse ``process-compose process get NAME -o json`` (an object, or a list of them)."""
    try:
        data: Any = json.loads(output)
    except ValueError:
        raise ManagerError(f"process-compose gave no JSON for {name!r}: {output[:200]!r}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    items = data if isinstance(data, list) else [data]
    for item in items:
        if isinstance(item, dict) and item.get("name") == name:
            status = str(item.get("status", "unknown"))
            raw_pid = item.get("pid")
            pid = raw_pid if isinstance(raw_pid, int) and raw_pid > 0 else None
            running = status.lower() == "running" and pid is not None
            return ServiceState(running, pid, status, json.dumps(item, sort_keys=True))
    raise ManagerError(f"process-compose reports no process named {name!r}")


# ---------------------------------------------------------------------------------------------
# Managers


class Manager:
    """Interface: read a service's state, and ask for a restart."""

    kind = "abstract"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def status(self, spec: ServiceSpec) -> ServiceState:
        raise NotImplementedError

    def restart(self, spec: ServiceSpec) -> str:
        """Ask the manager to restart ``spec``; returns the manager's answer."""
        raise NotImplementedError

    def describe_restart(self, spec: ServiceSpec) -> str:
        """The command a restart runs, for plans and dry-run output."""
        raise NotImplementedError

    def probe(self) -> str:
        """Check that the manager is present and answering (deploy's pre-flight)."""
        raise NotImplementedError


class SupervisorManager(Manager):
    kind = "supervisor"

    def _base(self) -> List[str]:
        argv = [str(self.options.get("supervisorctl", "supervisorctl"))]
        conf = self.options.get("supervisor_conf")
        if conf:
            argv += ["-c", str(conf)]
        return argv

    def status(self, spec: ServiceSpec) -> ServiceState:
        # supervisorctl exits 3 for a program that is not running; the text still says why.
        _, out = run_command([*self._base(), "status", spec.name])
        return parse_supervisor_status(out, spec.name)

    def restart(self, spec: ServiceSpec) -> str:
        code, out = run_command([*self._base(), "restart", spec.name])
        # Restarting a stopped program prints "ERROR (not running)" for the stop half and
        # still starts it; success is the "NAME: started" line.
        if code != 0 or not supervisor_restart_started(out, spec.name):
            raise ManagerError(f"supervisorctl restart {spec.name} failed (exit {code}): {out.strip()}")
        return out.strip()

    def describe_restart(self, spec: ServiceSpec) -> str:
        return " ".join([*self._base(), "restart", spec.name])

    def probe(self) -> str:
        code, out = run_command([*self._base(), "pid"])
        if code != 0 or not out.strip().isdigit():
            raise ManagerError(f"supervisord is not answering: {out.strip()[:200]}")
        return f"supervisord pid {out.strip()}"


class SystemdManager(Manager):
    kind = "systemd"

    def status(self, spec: ServiceSpec) -> ServiceState:
        _, out = run_command(["systemctl", "show", spec.name, "--property=MainPID,ActiveState,SubState,LoadState"])
        return parse_systemctl_show(out)

    def restart(self, spec: ServiceSpec) -> str:
        code, out = run_command(["systemctl", "restart", spec.name])
        if code != 0:
            raise ManagerError(f"systemctl restart {spec.name} failed (exit {code}): {out.strip()}")
        return out.strip() or "restarted"

    def describe_restart(self, spec: ServiceSpec) -> str:
        return f"systemctl restart {spec.name}"

    def probe(self) -> str:
        code, out = run_command(["systemctl", "is-system-running"])
        if code not in (0, 1):  # 1: degraded, still answering
            raise ManagerError(f"systemd is not answering: {out.strip()[:200]}")
        return f"systemd {out.strip()}"


class ProcessComposeManager(Manager):
    kind = "process-compose"

    def _base(self) -> List[str]:
        argv = [str(self.options.get("process_compose", "process-compose"))]
        socket_path = self.options.get("process_compose_socket")
        port = self.options.get("process_compose_port")
        if socket_path:
            argv += ["-U", "-u", str(socket_path)]
        elif port:
            argv += ["-p", str(int(port))]
        return argv

    def status(self, spec: ServiceSpec) -> ServiceState:
        code, out = run_command([*self._base(), "process", "get", spec.name, "-o", "json"])
        if code != 0:
            raise ManagerError(f"process-compose process get {spec.name} failed: {out.strip()[:300]}")
        return parse_process_compose_get(out, spec.name)

    def restart(self, spec: ServiceSpec) -> str:
        code, out = run_command([*self._base(), "process", "restart", spec.name])
        if code != 0:
            raise ManagerError(f"process-compose process restart {spec.name} failed (exit {code}): {out.strip()}")
        return out.strip() or "restarted"

    def describe_restart(self, spec: ServiceSpec) -> str:
        return " ".join([*self._base(), "process", "restart", spec.name])

    def probe(self) -> str:
        code, out = run_command([*self._base(), "process", "list", "-o", "json"])
        if code != 0:
            raise ManagerError(f"process-compose is not answering: {out.strip()[:200]}")
        return "process-compose answering"


def read_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


class SignalManager(Manager):
    """The seed's style: a respawning supervisor brings a daemon back after it is terminated.

    The daemon's PID comes from its pid file and must be running the configured program
    (checked in /proc/PID/cmdline) before anything is signalled: never a kill by name.
    """

    kind = "signal"

    def _pid(self, spec: ServiceSpec) -> Tuple[Optional[int], str]:
        try:
            with open(spec.pidfile, encoding="ascii", errors="replace") as fh:
                text = fh.read(64).strip()
        except OSError:
            return None, f"no pid file {spec.pidfile}"
        if not text.isdigit():
            return None, f"pid file {spec.pidfile} holds no pid"
        pid = int(text)
        if not pid_alive(pid):
            return None, f"pid {pid} from {spec.pidfile} is not running"
        cmdline = read_cmdline(pid)
        if spec.program not in cmdline:
            return None, f"pid {pid} runs {cmdline[:120]!r}, not {spec.program}"
        return pid, cmdline

    def status(self, spec: ServiceSpec) -> ServiceState:
        pid, detail = self._pid(spec)
        return ServiceState(pid is not None, pid, "RUNNING" if pid else "NOT RUNNING", detail)

    def restart(self, spec: ServiceSpec) -> str:
        pid, detail = self._pid(spec)
        if pid is None:
            raise ManagerError(
                f"cannot restart {spec.service} by signal: {detail}; its respawner restarts it only after it dies"
            )
        sig = getattr(signal, str(self.options.get("restart_signal", "SIGTERM")), signal.SIGTERM)
        os.kill(pid, sig)
        return f"sent {signal.Signals(sig).name} to pid {pid}"

    def describe_restart(self, spec: ServiceSpec) -> str:
        return f"kill -TERM <pid from {spec.pidfile}, verified to run {spec.program}>"

    def probe(self) -> str:
        return "signal manager needs no daemon of its own"


MANAGERS = {m.kind: m for m in (SupervisorManager, SystemdManager, ProcessComposeManager, SignalManager)}


def make_manager(kind: str, options: Mapping[str, Any]) -> Manager:
    try:
        return MANAGERS[kind](options)
    except KeyError:
        raise ManagerError(f"unknown process manager {kind!r}; expected one of {', '.join(sorted(MANAGERS))}") from None
