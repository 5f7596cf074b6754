"""Process managers: how to read a service's state and restart it, one class per manager.

A manager is data, as pyinfra's ``handle_service_control`` is: it says which command it would
run (a :class:`~.commands.Command`, an argument list, never a shell string; a signal for the
``signal`` manager) and how to read the answer. It runs nothing itself: the small executor in
``commands`` does, through :func:`read_status`, :func:`probe` and the runner's restart step, so
the plan, a dry run and the report can show the exact command. The parsers are pure and tested
from recorded output (``tests/fixtures/``). Confirming a restart (a new PID that stays up) is
the runner's job, through :func:`read_status`.
"""

from __future__ import annotations

import json
import signal
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import systemd
from .commands import Command, CommandResult, NotDelivered, RpcCall, execute
from .commands import ManagerError as ManagerError  # raised by parsers and managers alike
from .locks import pid_alive
from .records import asdict, field, record

if TYPE_CHECKING:  # pragma: no cover
    from .supervisor_rpc import Endpoint


@record(frozen=True)
class ServiceSpec:
    """A logical service (``uw-daemon``) and how the host's manager knows it."""

    service: str  # logical name used by signatures
    name: str  # the manager's name for it (supervisor program, unit, process-compose process)
    program: str  # script the daemon runs (used to verify a pid really is that daemon)
    pidfile: str  # absolute path of the daemon's pid file (signal manager)


@record(frozen=True)
class ServiceState:
    """A service's state as its manager reports it."""

    running: bool
    pid: Optional[int]
    state: str
    raw: str = ""
    #: What the manager said, as properties (systemd: ``systemctl show``'s), for the report.
    props: Dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """As a report keeps it (``raw`` already holds what ``props`` was read from)."""
        data = asdict(self)
        data.pop("props")
        return data


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


#: supervisord's process states that count as running (``statename`` of getProcessInfo).
SUPERVISOR_RUNNING = "RUNNING"


def parse_supervisor_process_info(info: Any, name: str) -> ServiceState:
    """Read ``supervisor.getProcessInfo(NAME)``'s answer: a struct with ``statename`` and ``pid``
    (0 when there is no process), as supervisorctl's status line shows them."""
    if not isinstance(info, dict) or not isinstance(info.get("statename"), str):
        raise ManagerError(f"supervisord gave no process info for {name!r}: {str(info)[:200]!r}")
    state = info["statename"]
    raw_pid = info.get("pid")
    pid = raw_pid if isinstance(raw_pid, int) and not isinstance(raw_pid, bool) and raw_pid > 0 else None
    running = state == SUPERVISOR_RUNNING and pid is not None
    raw = f"{info.get('name', name)} {state} {info.get('description', '')}".strip()
    return ServiceState(running, pid if running else None, state, raw)


def supervisor_restart_started(output: str, name: str) -> bool:
    """Whether ``supervisorctl restart NAME`` output says the program was started."""
    return any(line.strip() == f"{name}: started" for line in output.splitlines())


def parse_systemctl_show(output: str) -> ServiceState:
    """Parse ``systemctl show UNIT --property=...`` (``Key=value`` lines, see
    :data:`.systemd.SHOW_PROPERTIES`); a unit systemd does not have is a ManagerError."""
    props = systemd.parse_properties(output)
    if props.get("LoadState") == "not-found":
        raise ManagerError("systemd has no such unit (LoadState=not-found)")
    if "ActiveState" not in props:
        raise ManagerError(f"systemctl show gave no ActiveState: {output.strip()[:200]!r}")
    facts = systemd.UnitFacts.from_properties(props)
    return ServiceState(facts.running, facts.main_pid, facts.state, output, props)


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
# Managers: commands and how to read their answers


class Manager:
    """Interface: the commands that read a service's state, restart it and probe the manager."""

    kind = "abstract"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def status_command(self, spec: ServiceSpec) -> Optional[Command]:
        """The command that reads ``spec``'s state; None: there is none, its pid file says."""
        raise NotImplementedError

    def parse_status(self, spec: ServiceSpec, result: CommandResult) -> ServiceState:
        raise NotImplementedError

    def restart_command(self, spec: ServiceSpec, current: ServiceState) -> Command:
        """The command that restarts ``spec``, now in state ``current``. Raises ManagerError when
        it cannot be restarted (the signal manager has no verified pid to signal)."""
        raise NotImplementedError

    def restart_answer(self, spec: ServiceSpec, result: CommandResult) -> str:
        """The manager's answer to a restart; raises ManagerError when it refused."""
        raise NotImplementedError

    def probe_command(self) -> Optional[Command]:
        """The command that checks the manager is present and answering (deploy's pre-flight)."""
        raise NotImplementedError

    def probe_answer(self, result: Optional[CommandResult]) -> str:
        raise NotImplementedError

    def route(self) -> Dict[str, str]:
        """Which way the manager is reached when it has more than one (the action record's
        ``via`` and, for the second way, ``via_reason``); empty when it has one."""
        return {}

    def fall_back(self, reason: str) -> bool:
        """A command could not be delivered (``reason``): use the other way from now on. Returns
        whether there is another way."""
        return False

    #: Whether a service's state comes from the manager alone (its pid file is not trusted for it).
    authoritative = False

    def refusal(self, spec: ServiceSpec, current: ServiceState) -> Optional[str]:
        """Why ``spec`` must not be restarted now (the manager's own state forbids it), or None."""
        return None

    def restart_prelude(self, spec: ServiceSpec, current: ServiceState) -> List[Command]:
        """Commands a restart must run first, in order (none for most managers)."""
        return []

    def restart_facts(self, spec: ServiceSpec, before: ServiceState, after: ServiceState) -> Dict[str, Any]:
        """What the action's record keeps of a restart beyond its pids; empty for most managers."""
        return {}


class SupervisorManager(Manager):
    """supervisord, asked over its XML-RPC interface on its unix socket when the host's config
    names one (no program is started for a status or a restart); otherwise, or when the socket
    takes no calls, through ``supervisorctl`` as before. :meth:`route` says which, and why."""

    kind = "supervisor"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self._endpoint: Optional[Endpoint] = None
        self._no_rpc = "" if self.options.get("supervisor_rpc", True) else "manager option supervisor_rpc is false"

    def _base(self) -> List[str]:
        argv = [str(self.options.get("supervisorctl", "supervisorctl"))]
        conf = self.options.get("supervisor_conf")
        if conf:
            argv += ["-c", str(conf)]
        return argv

    def endpoint(self) -> Optional[Endpoint]:
        """supervisord's socket, read once from the config supervisorctl would read (a file read
        and a stat: read-only); None when the calls go through supervisorctl."""
        if self._no_rpc:
            return None
        if self._endpoint is None:
            from .supervisor_rpc import find_endpoint

            conf = self.options.get("supervisor_conf")
            program = str(self.options.get("supervisorctl", "supervisorctl"))
            self._endpoint = find_endpoint(str(conf) if conf else None, program)
            self._no_rpc = self._endpoint.reason
        return self._endpoint if not self._no_rpc else None

    def route(self) -> Dict[str, str]:
        if self.endpoint() is not None:
            return {"via": "xmlrpc"}
        return {"via": "supervisorctl", "via_reason": self._no_rpc}

    def fall_back(self, reason: str) -> bool:
        self._no_rpc = reason
        return True

    def status_command(self, spec: ServiceSpec) -> Command:
        endpoint = self.endpoint()
        if endpoint is not None:
            return Command.rpc(endpoint.socket, RpcCall("supervisor.getProcessInfo", (spec.name,)), auth=endpoint.auth)
        return Command.run(*self._base(), "status", spec.name)

    def parse_status(self, spec: ServiceSpec, result: CommandResult) -> ServiceState:
        if result.value is not None:  # an XML-RPC answer: the process info, or a fault
            if result.exit_code != 0:
                raise ManagerError(_fault_text(spec, result))
            return parse_supervisor_process_info(result.value, spec.name)
        # supervisorctl exits 3 for a program that is not running; the text still says why.
        return parse_supervisor_status(result.output, spec.name)

    def restart_command(self, spec: ServiceSpec, current: ServiceState) -> Command:
        endpoint = self.endpoint()
        if endpoint is not None:
            # What supervisorctl restart does (a stop, a "not running" is fine, then a start),
            # each call waiting as supervisorctl's does: the start returns once the program is
            # RUNNING (its startsecs passed), or with the fault that says why it is not.
            return Command.rpc(
                endpoint.socket,
                RpcCall("supervisor.stopProcess", (spec.name, True), tolerate=("NOT_RUNNING",)),
                RpcCall("supervisor.startProcess", (spec.name, True)),
                auth=endpoint.auth,
            )
        return Command.run(*self._base(), "restart", spec.name)

    def restart_answer(self, spec: ServiceSpec, result: CommandResult) -> str:
        if result.value is not None:
            if result.exit_code != 0:
                raise ManagerError(_fault_text(spec, result))
            stopped = "was not running" if "NOT_RUNNING" in result.output else "stopped"
            return f"{spec.name}: {stopped}, started (XML-RPC)"
        # Restarting a stopped program prints "ERROR (not running)" for the stop half and
        # still starts it; success is the "NAME: started" line.
        code, out = result.exit_code, result.output
        if code != 0 or not supervisor_restart_started(out, spec.name):
            raise ManagerError(f"supervisorctl restart {spec.name} failed (exit {code}): {out.strip()}")
        return out.strip()

    def probe_command(self) -> Command:
        endpoint = self.endpoint()
        if endpoint is not None:
            return Command.rpc(endpoint.socket, RpcCall("supervisor.getPID"), auth=endpoint.auth)
        return Command.run(*self._base(), "pid")

    def probe_answer(self, result: Optional[CommandResult]) -> str:
        if result is not None and result.value is not None:
            if result.exit_code != 0 or not isinstance(result.value, int):
                raise ManagerError(f"supervisord is not answering: {result.output[:200]}")
            return f"supervisord pid {result.value}"
        out = result.output.strip() if result is not None else ""
        if result is None or result.exit_code != 0 or not out.isdigit():
            raise ManagerError(f"supervisord is not answering: {out[:200]}")
        return f"supervisord pid {out}"


def _fault_text(spec: ServiceSpec, result: CommandResult) -> str:
    """An XML-RPC fault as an operator reads it: what was asked, what supervisord said."""
    fault = result.value.get("fault", "?") if isinstance(result.value, dict) else "?"
    asked = result.output.splitlines()[-1] if result.output else ""
    if fault == "BAD_NAME":
        return f"supervisor has no program named {spec.name!r} ({asked})"
    return f"supervisord refused: {asked}"


class SystemdManager(Manager):
    """systemd: ``systemctl show`` for the state, ``systemctl restart`` to restart.

    The state is systemd's alone (``MainPID``, ``ActiveState/SubState``), so a restart is
    confirmed by systemd. Before a restart the unit is judged (:func:`.systemd.judge`): a unit
    that is missing, masked, broken or stopped by an operator is not restarted; one at its start
    limit gets ``systemctl reset-failed`` first.
    """

    kind = "systemd"
    authoritative = True

    def status_command(self, spec: ServiceSpec) -> Command:
        properties = ",".join(systemd.SHOW_PROPERTIES)
        return Command.run("systemctl", "show", spec.name, f"--property={properties}")

    def parse_status(self, spec: ServiceSpec, result: CommandResult) -> ServiceState:
        props = systemd.parse_properties(result.output)
        if result.exit_code != 0 or "LoadState" not in props:
            out = result.output.strip()[:300]
            raise ManagerError(f"systemctl show {spec.name} failed (exit {result.exit_code}): {out}")
        facts = systemd.UnitFacts.from_properties(props, systemd.unit_name(spec.name))
        return ServiceState(facts.running, facts.main_pid, facts.state, result.output, props)

    def _facts(self, spec: ServiceSpec, state: ServiceState) -> Optional[systemd.UnitFacts]:
        if not state.props:
            return None
        return systemd.UnitFacts.from_properties(state.props, systemd.unit_name(spec.name))

    def refusal(self, spec: ServiceSpec, current: ServiceState) -> Optional[str]:
        facts = self._facts(spec, current)
        if facts is None:
            return None
        verdict = systemd.judge(facts)
        return verdict.reason if verdict.refused else None

    def restart_prelude(self, spec: ServiceSpec, current: ServiceState) -> List[Command]:
        facts = self._facts(spec, current)
        if facts is not None and systemd.judge(facts).verdict == systemd.RESET_FAILED:
            return [Command.run("systemctl", "reset-failed", spec.name)]
        return []

    def restart_command(self, spec: ServiceSpec, current: ServiceState) -> Command:
        return Command.run("systemctl", "restart", spec.name)

    def restart_answer(self, spec: ServiceSpec, result: CommandResult) -> str:
        if result.exit_code != 0:
            out = result.output.strip()
            hint = ""
            if "too often" in out or "start-limit" in out or "control process" in out:
                # A start refused by the start limit is reported by systemctl as the unit's last
                # failure ("the control process exited with error code"), not as the limit.
                hint = f" (or systemd's start limit refused it: `systemctl reset-failed {spec.name}` clears it)"
            raise ManagerError(f"systemctl restart {spec.name} failed (exit {result.exit_code}){hint}: {out}")
        return result.output.strip() or "restarted"

    def restart_facts(self, spec: ServiceSpec, before: ServiceState, after: ServiceState) -> Dict[str, Any]:
        old, new = self._facts(spec, before), self._facts(spec, after)
        if old is None or new is None:
            return {}
        verdict = systemd.judge(old)
        reset = verdict.verdict == systemd.RESET_FAILED
        note = systemd.restart_note(old, new)
        return {
            "systemd": {
                "before": old.summary(),
                "after": new.summary(),
                "reset_failed": reset,
                "note": f"{verdict.reason}; {note}" if reset else note,
            }
        }

    def probe_command(self) -> Command:
        return Command.run("systemctl", "is-system-running")

    def probe_answer(self, result: Optional[CommandResult]) -> str:
        out = result.output.strip() if result is not None else ""
        # is-system-running exits 1 for "degraded" (a unit failed) and "starting": still answering.
        # "offline" means systemd is not this host's init: nothing to manage.
        state = out.splitlines()[-1].strip() if out else ""
        answering = ("running", "degraded", "starting", "initializing", "maintenance")
        if result is None or result.exit_code not in (0, 1) or state not in answering:
            raise ManagerError(f"systemd is not answering: {out[:200] or 'no answer'}")
        return f"systemd {state}"


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

    def status_command(self, spec: ServiceSpec) -> Command:
        return Command.run(*self._base(), "process", "get", spec.name, "-o", "json")

    def parse_status(self, spec: ServiceSpec, result: CommandResult) -> ServiceState:
        if result.exit_code != 0:
            raise ManagerError(f"process-compose process get {spec.name} failed: {result.output.strip()[:300]}")
        return parse_process_compose_get(result.output, spec.name)

    def restart_command(self, spec: ServiceSpec, current: ServiceState) -> Command:
        return Command.run(*self._base(), "process", "restart", spec.name)

    def restart_answer(self, spec: ServiceSpec, result: CommandResult) -> str:
        if result.exit_code != 0:
            raise ManagerError(
                f"process-compose process restart {spec.name} failed (exit {result.exit_code}): {result.output.strip()}"
            )
        return result.output.strip() or "restarted"

    def probe_command(self) -> Command:
        return Command.run(*self._base(), "process", "list", "-o", "json")

    def probe_answer(self, result: Optional[CommandResult]) -> str:
        if result is None or result.exit_code != 0:
            out = result.output.strip() if result is not None else ""
            raise ManagerError(f"process-compose is not answering: {out[:200]}")
        return "process-compose answering"


class SignalManager(Manager):
    """The seed's style: a respawning supervisor brings a daemon back after it is terminated.

    The daemon's PID comes from its pid file and must be running the configured program
    (checked in /proc/PID/cmdline, see :func:`pidfile_status`) before anything is signalled:
    never a kill by name. Its restart is a signal to that PID, not a command line.
    """

    kind = "signal"

    def signal_name(self) -> str:
        name = str(self.options.get("restart_signal", "SIGTERM"))
        return name if isinstance(getattr(signal, name, None), signal.Signals) else "SIGTERM"

    def status_command(self, spec: ServiceSpec) -> None:
        return None  # the pid file is the state

    def restart_command(self, spec: ServiceSpec, current: ServiceState) -> Command:
        if not current.running or current.pid is None:
            raise ManagerError(
                f"cannot restart {spec.service} by signal: {current.raw}; its respawner restarts it only after it dies"
            )
        return Command.kill(self.signal_name(), current.pid)

    def restart_answer(self, spec: ServiceSpec, result: CommandResult) -> str:
        return result.output

    def probe_command(self) -> None:
        return None

    def probe_answer(self, result: Optional[CommandResult]) -> str:
        return "signal manager needs no daemon of its own"


MANAGERS = {m.kind: m for m in (SupervisorManager, SystemdManager, ProcessComposeManager, SignalManager)}


def make_manager(kind: str, options: Mapping[str, Any]) -> Manager:
    try:
        return MANAGERS[kind](options)
    except KeyError:
        raise ManagerError(f"unknown process manager {kind!r}; expected one of {', '.join(sorted(MANAGERS))}") from None


# ---------------------------------------------------------------------------------------------
# Facts and the executor's two read-only calls


def read_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


def _pidfile_pid(spec: ServiceSpec) -> Tuple[Optional[int], str]:
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


def pidfile_status(spec: ServiceSpec) -> ServiceState:
    """The service's state from its pid file: running when it names a live process that runs
    the configured program (a few syscalls; no manager is asked)."""
    pid, detail = _pidfile_pid(spec)
    return ServiceState(pid is not None, pid, "RUNNING" if pid else "NOT RUNNING", detail)


def run_command(
    manager: Manager,
    make: Callable[[], Optional[Command]],
    on_command: Optional[Callable[[Command], None]] = None,
) -> Optional[CommandResult]:
    """Run the command ``make()`` yields (None: there is none). When it could not be delivered
    at all (supervisord's socket takes no calls: nothing was done) and the manager has another
    way, the command is made again that way and run. ``on_command`` sees each command just
    before it runs, so a record names the command that ran."""
    for attempt in (1, 2):
        command = make()
        if command is None:
            return None
        if on_command is not None:
            on_command(command)
        try:
            return execute(command)
        except NotDelivered as exc:
            if attempt == 2 or not manager.fall_back(str(exc)):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def read_status(manager: Manager, spec: ServiceSpec) -> ServiceState:
    """Run ``manager``'s status command for ``spec`` and read its answer (the pid file's, for a
    manager without one)."""
    result = run_command(manager, lambda: manager.status_command(spec))
    return pidfile_status(spec) if result is None else manager.parse_status(spec, result)


def probe(manager: Manager) -> str:
    """Whether ``manager`` is present and answering; raises ManagerError when it is not."""
    return manager.probe_answer(run_command(manager, manager.probe_command))
