"""What a lab is made of: its hosts, their status, and the fixed facts of every lab droplet.

Plain data and constants only (no subprocesses, no YAML), so ``invoke lab.*`` can read the
defaults at ``invoke --list`` without importing the machinery that brings a lab up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GuardianError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORKDIR = REPO / ".lab"
DEFAULT_INVENTORY = REPO / "inventory" / "lab.yml"
DEFAULT_APP_SOURCE = REPO / "examples" / "stock-bot"

MANAGERS = ("supervisor", "process-compose", "signal", "systemd")
DEFAULT_MANAGER_CYCLE = ("supervisor", "process-compose", "signal", "supervisor", "supervisor", "supervisor")

HOST_PYTHON = "/usr/bin/python3"
APP_DIR = "/root/stock-bot"
STATE_FILES = ("state/uw_daemon.json", "state/trading_bot.json")
DAEMON_PIDFILES = {"uw-daemon": "state/uw_flow_daemon.pid", "trading-bot": "state/main.pid"}
#: program -> (status file, script, healthy status)
DAEMONS = {
    "uw-daemon": ("state/uw_daemon.json", "uw_flow_daemon.py", "connected"),
    "trading-bot": ("state/trading_bot.json", "main.py", "streaming"),
}
#: manager -> a word in the argv of its running process
MANAGER_MARKERS = {
    "supervisor": "supervisord",
    "process-compose": "process-compose",
    "signal": "deploy_supervisor.py",
    "systemd": "/lib/systemd/systemd",
}
#: The environment of every process the lab starts inside a host.
HOST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "SHELL": "/bin/bash",
    "LANG": "C.UTF-8",
}
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
