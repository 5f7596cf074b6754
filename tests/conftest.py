"""Shared pytest fixtures: the session-wide lab fleet."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from remediation.lab import Lab

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
