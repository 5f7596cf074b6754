"""Shared pytest fixtures: the session-wide lab fleet."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from remediation.lab import Lab

APP = "/root/stock-bot"
LAB_HOSTS = 6  # manager cycle: supervisor, process-compose, signal, supervisor x3


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
    ):
        if shutil.which(tool) is None:
            return f"the lab fleet needs {tool}"
    return None


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A 6-host lab (prefix "gt", subnet 198.18.2.0/24), brought up once and always torn down."""
    reason = _lab_supported()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the lab tests: {reason}")
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("lab")
    fleet = Lab(workdir, prefix="gt", subnet=2, inventory_path=workdir / "inventory.yml")
    try:
        fleet.up(LAB_HOSTS)
        yield fleet
    finally:
        fleet.down()


@pytest.fixture
def reset_host(lab: Lab) -> Iterator[Callable[[str], str]]:
    """Return ``reset(host)`` (``lab.fault(host, "reset")``); every host is reset again afterwards."""

    def reset(host: str) -> str:
        return lab.fault(host, "reset")

    yield reset
    if lab.state_path.exists():
        for h in lab.hosts:
            reset(h.name)


@pytest.fixture
def fleet(lab: Lab) -> Iterator[Lab]:
    """The session lab, checked healthy before the test and put back afterwards: faults reset,
    crontabs removed, and the restart budget and holds Guardian keeps on each host forgotten."""
    for host in lab.hosts:
        check = lab.exec(host.name, ["/usr/bin/python3", f"{APP}/pre_market_health_check.py"], check=False)
        assert check.returncode == 0, f"{host.name} not healthy before the test:\n{check.stdout}"
    yield lab
    for host in lab.hosts:
        lab.exec(host.name, ["crontab", "-r"], check=False)
        lab.fault(host.name, "reset")
        for name in ("guardian-breaker.json", "guardian-hold.json"):
            lab.path(host.name, f"{APP}/state/{name}").unlink(missing_ok=True)


def run_cron_runner(lab: Lab, host: str) -> str:
    """Run the deployed runner on ``host`` exactly as its crontab line would; returns its output."""
    proc = lab.exec(
        host,
        [
            "bash",
            "-c",
            f"cd {APP} && /usr/bin/python3 .guardian/guardian-runner.py --config .guardian/config.json "
            "--runner cron --format text",
        ],
        check=False,
        timeout=60,
    )
    return proc.stdout + proc.stderr
