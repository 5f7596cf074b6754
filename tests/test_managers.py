"""Process managers: their parsers, fed with recorded output (tests/fixtures/, each recorded
output with its expected result beside it), and the commands they say they would run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest

from remediation.agent.commands import Command, CommandResult, execute
from remediation.agent.managers import (
    ManagerError,
    ProcessComposeManager,
    ServiceSpec,
    ServiceState,
    SignalManager,
    SupervisorManager,
    SystemdManager,
    parse_process_compose_get,
    parse_supervisor_process_info,
    parse_supervisor_status,
    parse_systemctl_show,
    pidfile_status,
    probe,
    read_cmdline,
    supervisor_restart_started,
)
from remediation.agent.supervisor_rpc import FAULT_NAMES, parse_endpoint
from remediation.agent.systemd import judge, parse_show

FIXTURES = Path(__file__).parent / "fixtures"
MANAGER_FIXTURES = ("supervisor", "systemd", "process-compose")
EXPECTED_SUFFIX = ".expected.json"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_supervisor_running() -> None:
    state = parse_supervisor_status(fixture("supervisor/status_running.txt"), "uw-daemon")
    assert (state.running, state.pid, state.state) == (True, 7372, "RUNNING")


@pytest.mark.parametrize(
    ("name", "program", "state"),
    [
        ("supervisor/status_stopped.txt", "uw-daemon", "STOPPED"),
        ("supervisor/status_exited.txt", "trading-bot", "EXITED"),
    ],
)
def test_supervisor_not_running(name: str, program: str, state: str) -> None:
    parsed = parse_supervisor_status(fixture(name), program)
    assert (parsed.running, parsed.pid, parsed.state) == (False, None, state)


@pytest.mark.parametrize("name", ["supervisor/status_no_such_process.txt", "supervisor/status_socket_missing.txt"])
def test_supervisor_errors(name: str) -> None:
    with pytest.raises(ManagerError):
        parse_supervisor_status(fixture(name), "nosuch")


def test_supervisor_restart_outputs() -> None:
    assert supervisor_restart_started(fixture("supervisor/restart_running.txt"), "uw-daemon")
    assert supervisor_restart_started(fixture("supervisor/restart_from_stopped.txt"), "uw-daemon")
    assert not supervisor_restart_started(fixture("supervisor/restart_no_such_process.txt"), "nosuch")


def test_systemctl_show() -> None:
    running = parse_systemctl_show(fixture("systemd/show_running.txt"))
    assert (running.running, running.pid, running.state) == (True, 4182, "active/running")
    failed = parse_systemctl_show(fixture("systemd/show_failed.txt"))
    assert (failed.running, failed.pid) == (False, None)
    restarting = parse_systemctl_show(fixture("systemd/show_auto_restart.txt"))
    assert not restarting.running
    with pytest.raises(ManagerError):
        parse_systemctl_show(fixture("systemd/show_not_found.txt"))


def test_process_compose_get_shapes() -> None:
    expected = {
        "get_running.json": (True, 11745, "Running"),
        "get_completed_after_kill.json": (False, 11745, "Completed"),  # its pid is stale: not running
    }
    recorded = sorted(
        p for p in (FIXTURES / "process-compose").glob("get_*.json") if not p.name.endswith(EXPECTED_SUFFIX)
    )
    assert sorted(p.name for p in recorded) == sorted(expected)
    for path in recorded:
        state = parse_process_compose_get(path.read_text(), "uw-daemon")
        assert (state.running, state.pid, state.state) == expected[path.name], path.name


# -- every recorded output, checked against the expected result stored beside it -------------------


def rpc_answer(text: str, name: str) -> Any:
    """A recorded supervisord XML-RPC answer (the HTTP body), decoded as xmlrpc.client decodes it:
    getProcessInfo's struct read by the manager's parser, or the fault's name."""
    try:
        (value,), _method = xmlrpc.client.loads(text)
    except xmlrpc.client.Fault as fault:
        return {"fault": FAULT_NAMES[fault.faultCode]}
    return parse_supervisor_process_info(value, name)


def endpoint(text: str, config: str) -> dict[str, Any]:
    found = parse_endpoint(text, config, environ={})
    return {"socket": found.socket, "auth": found.auth is not None, "reason": found.reason}


PARSERS: dict[str, Any] = {
    "supervisor_status": lambda text, case: parse_supervisor_status(text, case["name"]),
    "supervisor_process_info": lambda text, case: rpc_answer(text, case["name"]),
    "supervisor_endpoint": lambda text, case: endpoint(text, case["config"]),
    "supervisor_restart_started": lambda text, case: supervisor_restart_started(text, case["name"]),
    "systemctl_show": lambda text, case: parse_systemctl_show(text),
    "systemd_unit": lambda text, case: unit_summary(text),
    "process_compose_get": lambda text, case: parse_process_compose_get(text, case["name"]),
}


def unit_summary(text: str) -> dict[str, Any]:
    """A recorded ``systemctl show``: what Guardian reads of the unit, and what it would do."""
    facts = parse_show(text)
    return {"running": facts.running, "pid": facts.main_pid, "state": facts.state, "verdict": judge(facts).verdict}


def recorded_outputs() -> list[Path]:
    return sorted(
        path
        for folder in MANAGER_FIXTURES
        for path in (FIXTURES / folder).iterdir()
        if not path.name.endswith(EXPECTED_SUFFIX)
    )


def expected_for(recorded: Path) -> Path:
    return recorded.with_name(recorded.name.rsplit(".", 1)[0] + EXPECTED_SUFFIX)


@pytest.mark.parametrize("recorded", recorded_outputs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recorded_output_parses_to_its_expected_result(recorded: Path) -> None:
    case = json.loads(expected_for(recorded).read_text())
    parse = PARSERS[case["parser"]]
    text = recorded.read_text()
    if "error" in case:
        with pytest.raises(ManagerError) as caught:
            parse(text, case)
        assert str(caught.value) == case["error"]
        return
    got = parse(text, case)
    if isinstance(got, ServiceState):
        assert {k: getattr(got, k) for k in case["expected"]} == case["expected"]
    else:
        assert got == case["expected"]


def test_every_recorded_output_has_an_expected_result_and_the_reverse() -> None:
    recorded = recorded_outputs()
    assert len(recorded) >= 14
    assert all(expected_for(p).is_file() for p in recorded), [p.name for p in recorded if not expected_for(p).exists()]
    expected = {p for folder in MANAGER_FIXTURES for p in (FIXTURES / folder).glob(f"*{EXPECTED_SUFFIX}")}
    assert expected == {expected_for(p) for p in recorded}


# -- the commands each manager would run -----------------------------------------------------------

SPEC = ServiceSpec(service="uw-daemon", name="uw_flow", program="uw_flow_daemon.py", pidfile="/nonexistent/uw.pid")
RUNNING = ServiceState(True, 4321, "RUNNING")


def test_supervisor_commands() -> None:
    plain = SupervisorManager({"supervisor_rpc": False})
    assert plain.status_command(SPEC) == Command.run("supervisorctl", "status", "uw_flow")
    assert plain.restart_command(SPEC, RUNNING).to_dict() == {"argv": ["supervisorctl", "restart", "uw_flow"]}
    assert plain.route() == {"via": "supervisorctl", "via_reason": "manager option supervisor_rpc is false"}
    # a config that cannot be read names no socket: supervisorctl, and the route says why
    configured = SupervisorManager({"supervisorctl": "/opt/sv/bin/supervisorctl", "supervisor_conf": "/etc/sv.conf"})
    assert configured.route() == {
        "via": "supervisorctl",
        "via_reason": "cannot read /etc/sv.conf: No such file or directory",
    }
    assert configured.restart_command(SPEC, RUNNING).argv == (
        "/opt/sv/bin/supervisorctl",
        "-c",
        "/etc/sv.conf",
        "restart",
        "uw_flow",
    )
    assert configured.probe_command() == Command.run("/opt/sv/bin/supervisorctl", "-c", "/etc/sv.conf", "pid")


def test_supervisor_reads_its_answers() -> None:
    manager = SupervisorManager({})
    assert manager.restart_answer(SPEC, CommandResult(0, "uw_flow: stopped\nuw_flow: started\n")).endswith("started")
    with pytest.raises(ManagerError, match=r"supervisorctl restart uw_flow failed \(exit 1\)"):
        manager.restart_answer(SPEC, CommandResult(1, "uw_flow: ERROR (no such process)\n"))
    assert manager.probe_answer(CommandResult(0, "812\n")) == "supervisord pid 812"
    with pytest.raises(ManagerError, match="supervisord is not answering"):
        manager.probe_answer(CommandResult(7, "unix:///run/supervisor.sock refused connection"))


def test_systemd_commands() -> None:
    manager = SystemdManager({})
    assert manager.status_command(SPEC).argv == (
        "systemctl",
        "show",
        "uw_flow",
        "--property=Id,LoadState,ActiveState,SubState,Result,MainPID,InvocationID,NRestarts,UnitFileState,"
        "LoadError,ExecMainCode,ExecMainStatus,StateChangeTimestamp,StartLimitBurst,StartLimitIntervalUSec,Restart",
    )
    assert manager.restart_command(SPEC, RUNNING).argv == ("systemctl", "restart", "uw_flow")
    assert manager.probe_command().argv == ("systemctl", "is-system-running")
    assert manager.restart_answer(SPEC, CommandResult(0, "")) == "restarted"
    assert manager.probe_answer(CommandResult(1, "degraded\n")) == "systemd degraded"


@pytest.mark.parametrize(
    ("options", "base"),
    [
        ({}, ["process-compose"]),
        ({"process_compose_port": 8081}, ["process-compose", "-p", "8081"]),
        (
            {
                "process_compose": "/usr/local/bin/pc",
                "process_compose_socket": "/run/pc.sock",
                "process_compose_port": 1,
            },
            ["/usr/local/bin/pc", "-U", "-u", "/run/pc.sock"],  # the socket wins over the port
        ),
    ],
)
def test_process_compose_commands(options: dict[str, Any], base: list[str]) -> None:
    manager = ProcessComposeManager(options)
    assert list(manager.status_command(SPEC).argv) == [*base, "process", "get", "uw_flow", "-o", "json"]
    assert manager.restart_command(SPEC, RUNNING).to_dict() == {"argv": [*base, "process", "restart", "uw_flow"]}
    assert list(manager.probe_command().argv) == [*base, "process", "list", "-o", "json"]
    with pytest.raises(ManagerError, match="process get uw_flow failed"):
        manager.parse_status(SPEC, CommandResult(1, "connection refused"))


def test_signal_manager_restart_is_a_signal_to_the_verified_pid(tmp_path: Path) -> None:
    daemon = subprocess.Popen(["sleep", "60"])
    deadline = time.monotonic() + 10
    while "sleep" not in read_cmdline(daemon.pid):  # until the child has exec'd
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        pidfile = tmp_path / "sleep.pid"
        pidfile.write_text(f"{daemon.pid}\n")
        spec = ServiceSpec("sleeper", "sleeper", "sleep", str(pidfile))
        manager = SignalManager({})
        assert manager.status_command(spec) is None  # no command: the pid file is the state
        state = pidfile_status(spec)
        assert (state.running, state.pid) == (True, daemon.pid)
        command = manager.restart_command(spec, state)
        assert command.to_dict() == {"signal": "SIGTERM", "pid": daemon.pid}
        assert SignalManager({"restart_signal": "SIGHUP"}).restart_command(spec, state).signal == "SIGHUP"
        assert execute(command).output == f"sent SIGTERM to pid {daemon.pid}"
        assert daemon.wait(timeout=10) == -signal.SIGTERM
    finally:
        daemon.kill()
        daemon.wait()
    gone = pidfile_status(spec)
    assert not gone.running and "is not running" in gone.raw
    with pytest.raises(ManagerError, match=r"cannot restart sleeper by signal: pid \d+ from .* is not running"):
        SignalManager({}).restart_command(spec, gone)
    assert probe(SignalManager({})) == "signal manager needs no daemon of its own"


def test_a_pid_running_another_program_is_never_signalled(tmp_path: Path) -> None:
    pidfile = tmp_path / "main.pid"
    pidfile.write_text(f"{os.getpid()}\n")  # alive, but it is pytest, not the trading bot
    spec = ServiceSpec("trading-bot", "trading-bot", "main.py", str(pidfile))
    state = pidfile_status(spec)
    assert not state.running and state.pid is None and "not main.py" in state.raw
    with pytest.raises(ManagerError, match="cannot restart trading-bot by signal"):
        SignalManager({}).restart_command(spec, state)


def test_the_executor_runs_argument_lists_without_a_shell() -> None:
    result = execute(Command.run("sh", "-c", "echo hi; exit 3"))
    assert (result.exit_code, result.output) == (3, "hi\n")
    assert execute(Command.run("echo", "$HOME; rm -rf /")).output == "$HOME; rm -rf /\n"
    with pytest.raises(ManagerError, match="no-such-manager-ctl: command not found on this host"):
        execute(Command.run("no-such-manager-ctl", "status"))
    with pytest.raises(ManagerError, match="did not answer within 1s"):
        execute(Command.run("sleep", "5"), timeout=1)
