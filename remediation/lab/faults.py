"""Faults a lab host can be given, and ``reset``, which puts the host back as it started.

Most faults are the example app's own (``examples/stock-bot/lab_fault.py``, run inside the
host); ``sshd-down`` is done from outside. :data:`FAULTS` is the one list of kinds: ``invoke
lab.fault`` reads it at ``invoke --list``, so this module imports nothing heavier than the stdlib
and :mod:`.model` (the Lab itself is only a type here).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .model import APP_DIR, DAEMON_PIDFILES, DAEMONS, HOST_PYTHON, LabError

#: Where the lab installs the process-compose stand-in (lab/hostinit.py).
PROCESS_COMPOSE = "/usr/local/bin/process-compose"

if TYPE_CHECKING:
    from .fleet import Lab

#: The kinds ``lab_fault.py`` knows (its ``KINDS``), run inside the host.
APP_FAULTS = (
    "uw",
    "sip",
    "stale-lock",
    "live-lock",
    "kill",
    "crash-loop",
    "hang",
    "flood",
    "slow-stop",
    "unsafe",
    "safe",
    "crash-after-start",
    "hung-daemon",
    "pre-restart-fail",
    "post-restart-fail",
    "reset",
)
#: A daemon whose status has not been rewritten for this long (it does so every ~2 s) is hung.
HUNG_AFTER = 8.0
#: Every fault kind, in the order the README and ``invoke lab.fault --help`` list them.
FAULTS = (*APP_FAULTS[:-1], "sshd-down", "cron-down", "reset")


def inject(lab: Lab, host: str, kind: str) -> str:
    """Inject fault ``kind`` into ``host`` and return what the fault script said."""
    if kind not in FAULTS:
        raise ValueError(f"unknown fault {kind!r}; choose from {FAULTS}")
    h = lab.host(host)
    if kind == "sshd-down":
        pid = sshd_pid(lab, host)
        if pid is None:
            return f"{host}: sshd already down"
        lab.exec(host, ["kill", str(pid)])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and lab.banner(h, timeout=0.5) is not None:
            time.sleep(0.05)
        return f"{host}: killed sshd (pid {pid})"
    if kind == "cron-down" and h.manager == "systemd":  # cron is a unit there: cron.service
        lab.exec(host, ["systemctl", "stop", "cron.service"])
        return f"{host}: stopped cron.service; scheduled runs no longer happen"
    if kind == "cron-down":
        pid = cron_pid(lab, host)
        if pid is None:
            return f"{host}: cron already down"
        lab.exec(host, ["kill", str(pid)])
        deadline = time.monotonic() + 5
        while cron_pid(lab, host) is not None:
            if time.monotonic() > deadline:
                raise LabError(f"{host}: cron (pid {pid}) did not stop")
            time.sleep(0.05)
        return f"{host}: stopped cron (pid {pid}); scheduled runs no longer happen"
    proc = lab.exec(host, [HOST_PYTHON, f"{APP_DIR}/lab_fault.py", kind], timeout=60, check=True)
    out = proc.stdout + proc.stderr
    if kind == "reset":
        out += _heal_daemons(lab, host)
        sshd_down = sshd_pid(lab, host) is None
        if h.manager == "systemd":  # sshd and cron are units there: ssh.service, cron.service
            if sshd_down:
                lab.exec(host, ["systemctl", "start", "ssh.service"], check=False)
                deadline = time.monotonic() + 10
                while lab.banner(h, timeout=0.5) is None:
                    if time.monotonic() > deadline:
                        raise LabError(f"{host}: sshd did not come back")
                    time.sleep(0.05)
                out += f"{host}: restarted sshd\n"
            cron = lab.exec(host, ["systemctl", "is-active", "--quiet", "cron.service"], check=False)
            if cron.returncode != 0:
                lab.exec(host, ["systemctl", "start", "cron.service"], check=False)
                out += f"{host}: restarted cron\n"
            return out
        cron_down = cron_pid(lab, host) is None
        if sshd_down or cron_down:
            os.kill(lab.init_pid(host), signal.SIGUSR1)  # the host's init restarts what is down
            deadline = time.monotonic() + 10
            while (sshd_down and lab.banner(h, timeout=0.5) is None) or (cron_down and cron_pid(lab, host) is None):
                if time.monotonic() > deadline:
                    raise LabError(f"{host}: {'sshd' if sshd_down else 'cron'} did not come back")
                time.sleep(0.05)
            out += "".join(
                f"{host}: restarted {name}\n" for name, down in (("sshd", sshd_down), ("cron", cron_down)) if down
            )
    return out


def cron_pid(lab: Lab, host: str) -> int | None:
    """PID (inside the host) of the cron daemon its init started, or None when it is not running."""
    from .hostinit import INIT_STATE  # here, not at the top: `invoke --list` imports this module

    try:
        state = json.loads(lab.path(host, INIT_STATE).read_text())
    except (OSError, ValueError):
        return None
    pid = state.get("cron") if isinstance(state, dict) else None
    procs = lab.processes(host)
    if isinstance(pid, int) and pid in procs and procs[pid][1][:1] == ["/usr/sbin/cron"]:
        return pid
    return None


def sshd_pid(lab: Lab, host: str) -> int | None:
    """PID (inside the host) of its running sshd listener, or None."""
    from .procs import read_pid

    pid = read_pid(lab.path(host, "/run/sshd.pid"))
    if pid is None:
        return None
    procs = lab.processes(host)
    if pid in procs and "sshd" in " ".join(procs[pid][1][:1]):
        return pid
    return None


def _unhealthy_daemons(lab: Lab, host: str) -> dict[str, int | None]:
    """Daemons that are dead or report a fault: {program: live pid or None}."""
    procs = lab.processes(host)
    bad: dict[str, int | None] = {}
    from .procs import read_pid

    for program, (status_file, script, healthy) in DAEMONS.items():
        try:
            state = json.loads(lab.path(host, f"{APP_DIR}/{status_file}").read_text())
        except (OSError, ValueError):
            state = {}
        pid = state.get("pid")
        alive = isinstance(pid, int) and pid in procs and any(script in a for a in procs[pid][1])
        # A daemon publishes its status just before its pid file: healthy only once both say so,
        # as the app's health check requires (else a reset can return inside that window).
        if alive and read_pid(_pidfile(lab, host, program)) != pid:
            alive = False
        beat = state.get("heartbeat")
        if not alive:
            bad[program] = None
        elif state.get("status") != healthy or (isinstance(beat, (int, float)) and time.time() - beat > HUNG_AFTER):
            bad[program] = pid  # faulty, or alive but silent (hung-daemon)
    return bad


def _pidfile(lab: Lab, host: str, program: str) -> Path:
    """Where ``program``'s pid file is on ``host``: state/, or the directory the app's
    ``state/.pid_dir`` names (applib.daemon_pid_path: the benchmark's pid files elsewhere)."""
    rel = DAEMON_PIDFILES[program]
    try:
        moved = lab.path(host, f"{APP_DIR}/state/.pid_dir").read_text().strip()
    except OSError:
        moved = ""
    return lab.path(host, f"{APP_DIR}/{moved}/{os.path.basename(rel)}" if moved else f"{APP_DIR}/{rel}")


def _heal_daemons(lab: Lab, host: str, timeout: float = 20) -> str:
    """Restart faulty or dead daemons through the host's own process manager."""
    bad = _unhealthy_daemons(lab, host)
    if not bad:
        return ""
    from ..agent.commands import CommandResult
    from ..agent.managers import ManagerError, ServiceSpec, ServiceState, make_manager

    kind = lab.host(host).manager
    # The same restart commands Guardian's managers yield, run inside the host: supervisorctl's,
    # not supervisord's socket, which would be looked for on this machine, not in the host.
    options = {"process_compose": PROCESS_COMPOSE} if kind == "process-compose" else {"supervisor_rpc": False}
    manager = make_manager(kind, options)
    for program, pid in bad.items():
        spec = ServiceSpec(program, program, "", "")
        current = ServiceState(pid is not None, pid, "faulty")
        status = manager.status_command(spec) if manager.authoritative else None
        if status is not None:  # systemd: its own state says what the restart needs first
            answer = lab.exec(host, list(status.argv), check=False)
            try:
                current = manager.parse_status(spec, CommandResult(answer.returncode, answer.stdout + answer.stderr))
            except ManagerError:
                pass
        try:
            steps = [*manager.restart_prelude(spec, current), manager.restart_command(spec, current)]
        except ManagerError:
            continue  # signal style, daemon dead: its respawner brings it back by itself
        for command in steps:
            if command.signal:
                lab.exec(host, ["kill", f"-{command.signal.removeprefix('SIG')}", str(command.pid)], check=False)
            else:
                lab.exec(host, list(command.argv), check=False)
    deadline = time.monotonic() + timeout
    while _unhealthy_daemons(lab, host):
        if time.monotonic() > deadline:
            raise LabError(f"{host}: daemons still unhealthy after reset: {sorted(_unhealthy_daemons(lab, host))}")
        time.sleep(0.1)
    return f"{host}: restarted {', '.join(sorted(bad))} via {kind}\n"
