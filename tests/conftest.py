"""Shared pytest fixtures and helpers: the session-wide lab fleet, running a fleet command the
way its task does, and a stand-in SSH server on loopback with name lookups kept local."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from ssh_stub import StubSSHServer

from remediation import jobs
from remediation.lab import Lab
from remediation.reporting.report import ReportStore, RunReport

APP = "/root/stock-bot"
LAB_HOSTS = 6  # manager cycle: supervisor, process-compose, signal, supervisor x3


#: The fleet commands behind the tasks, by task name.
FLEET_COMMANDS: dict[str, Callable[..., int]] = {
    "premarket": jobs.premarket,
    "recover": jobs.recover,
    "deploy": jobs.deploy,
    "collect": jobs.collect,
    "status": jobs.status,
    "hold": jobs.hold,
    "release": jobs.release,
}


@dataclass
class CommandRun:
    """What one fleet command gave: its exit code, the report it saved and what it printed."""

    code: int
    report: RunReport
    out: str


def run_command(
    command: str,
    hosts: str,
    *,
    inventory: Sequence[Path],
    reports: Path,
    ssh_config: str | None = None,
    width: int = 200,
    **request: Any,
) -> CommandRun:
    """Run a fleet command (``premarket``, ``recover``, ``deploy``, ``collect``, ``hold``,
    ``release``) as its task would, printing into a string, and load the report it saved.

    Args:
        command: The task's name.
        hosts: The ``--hosts`` pattern.
        inventory: The inventory files, in layering order.
        reports: The report folder; the run's report is loaded from there.
        ssh_config: The ssh_config file to honour; None (the default) for none, so that tests
            never read the developer's ``~/.ssh/config``.
        width: The console's width (the recap folds to it).
        **request: Any other :class:`jobs.FleetRequest` field (``overrides``, ``dry_run``...).

    Returns:
        The exit code, the saved report and the printed output.
    """
    out = io.StringIO()
    fleet_request = jobs.FleetRequest(
        hosts=hosts, inventory=list(inventory), reports=reports, ssh_config=ssh_config, **request
    )
    code = FLEET_COMMANDS[command](fleet_request, console=Console(file=out, width=width))
    return CommandRun(code, ReportStore(reports).load(), out.getvalue())


def _lab_supported() -> str | None:
    if os.geteuid() != 0:
        return "the lab fleet needs root"
    for tool in (
        "ip",
        "unshare",
        "nsenter",
        "/usr/sbin/sshd",
        "ssh",
        "ssh-keygen",
        "/usr/sbin/cron",
        "supervisord",
        "/lib/systemd/systemd",
    ):
        if shutil.which(tool) is None:
            return f"the lab fleet needs {tool}"
    return None


def lab_names(prefix: str, subnet: int) -> tuple[str, int]:
    """A lab's prefix and subnet, moved aside by ``GUARDIAN_TEST_LAB_SHIFT=N`` (prefix + N, subnet
    + 10 N) so that two checkouts can run their lab tests on one machine without sharing hosts."""
    shift = int(os.environ.get("GUARDIAN_TEST_LAB_SHIFT", "0") or 0)
    return (f"{prefix}{shift}", subnet + 10 * shift) if shift else (prefix, subnet)


@contextlib.contextmanager
def own_lab(tmp_path_factory: pytest.TempPathFactory, prefix: str, subnet: int, hosts: int, **up: Any) -> Iterator[Lab]:
    """A lab of its own (prefix and subnet unique to its user), always torn down; skipped where
    the lab cannot run, except under CI, which must run the lab tests."""
    reason = _lab_supported()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the lab tests: {reason}")
        pytest.skip(reason)
    prefix, subnet = lab_names(prefix, subnet)
    workdir = tmp_path_factory.mktemp(f"lab-{prefix}")
    fleet = Lab(workdir, prefix=prefix, subnet=subnet, inventory_path=workdir / "inventory.yml")
    try:
        fleet.up(hosts, **up)
        yield fleet
    finally:
        fleet.down()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A 6-host lab (prefix "gt", subnet 198.18.2.0/24), brought up once and always torn down."""
    with own_lab(tmp_path_factory, "gt", 2, LAB_HOSTS) as fleet:
        yield fleet


@pytest.fixture
def reset_host(lab: Lab) -> Iterator[Callable[[str], str]]:
    """Return ``reset(host)`` (``lab.fault(host, "reset")``); every host is reset again afterwards."""

    def reset(host: str) -> str:
        return lab.fault(host, "reset")

    yield reset
    if lab.state_path.exists():
        for h in lab.hosts:
            reset(h.name)


def healthy(lab: Lab, host: str) -> bool:
    """Whether the example app's health check passes on ``host`` (run inside it, no SSH)."""
    check = lab.exec(host, ["/usr/bin/python3", f"{APP}/pre_market_health_check.py"], check=False)
    return check.returncode == 0


@contextlib.contextmanager
def checked_and_reset(lab: Lab) -> Iterator[Lab]:
    """``lab`` checked healthy before a test and put back afterwards: faults reset (sshd and
    cron running again), crontabs removed, and everything Guardian left on each host (installed
    runner, restart budget, holds, journals, metrics, alert files) gone, so no test depends on
    which ran before it."""
    for host in lab.hosts:
        assert healthy(lab, host.name), f"{host.name} not healthy before the test"
    yield lab
    for host in lab.hosts:
        lab.exec(host.name, ["crontab", "-r"], check=False)
        lab.fault(host.name, "reset")
        shutil.rmtree(lab.path(host.name, f"{APP}/.guardian"), ignore_errors=True)
        for alert in lab.path(host.name, f"{APP}/logs").glob("*_alert_*.txt"):
            alert.unlink()


@pytest.fixture
def fleet(lab: Lab) -> Iterator[Lab]:
    """The session lab, checked healthy before the test and put back afterwards."""
    with checked_and_reset(lab) as checked:
        yield checked


def run_cron_runner(lab: Lab, host: str) -> str:
    """Run the deployed runner on ``host`` exactly as its crontab line would; returns its output."""
    proc = lab.exec(
        host,
        [
            "bash",
            "-c",
            f"cd {APP} && /usr/bin/python3 -I -S .guardian/guardian-runner.py --config .guardian/config.json "
            "--runner cron --format text",
        ],
        check=False,
        timeout=60,
    )
    return proc.stdout + proc.stderr


@pytest.fixture
def ssh_server() -> Iterator[StubSSHServer]:
    """A StubSSHServer on loopback, closed afterwards."""
    server = StubSSHServer()
    yield server
    server.close()


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Name lookups stay on this machine: loopback addresses resolve, every other name is
    refused as a resolver would refuse an unknown one (and recorded)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not str(host).startswith("127."):
            asked.append(str(host))
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # no agent: only the configured key
    return asked
