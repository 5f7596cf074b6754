"""Process-manager output parsers, fed with recorded output (tests/fixtures/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediation.agent.managers import (
    ManagerError,
    parse_process_compose_get,
    parse_supervisor_status,
    parse_systemctl_show,
    supervisor_restart_started,
)

FIXTURES = Path(__file__).parent / "fixtures"


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
    for path in sorted((FIXTURES / "process-compose").glob("get_*.json")):
        state = parse_process_compose_get(path.read_text(), "uw-daemon")
        assert state.state
        if "running" in path.name:
            assert state.running and state.pid
        else:
            assert not state.running
