"""Premarket through a jump host, to a droplet the controller has no route to.

This module's own two-host lab: h01 is a public host on the lab bridge; h02 is private, its
only link a veth pair into h01's network namespace (198.19.7.0/24), and the root namespace has
an ``unreachable`` route for that range. Whatever reaches h02 went through h01's sshd.
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import APP, checked_and_reset, healthy, lab_names, own_lab, run_command

from remediation.lab import Lab
from remediation.reporting.report import RunReport

pytestmark = pytest.mark.lab

PREFIX, SUBNET = lab_names("gj", 7)  # moved aside by GUARDIAN_TEST_LAB_SHIFT, as own_lab moves the lab
PUBLIC = f"198.18.{SUBNET}.11"
PRIVATE = f"198.19.{SUBNET}.12"


@pytest.fixture(scope="module")
def jump_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with own_lab(tmp_path_factory, "gj", 7, 2, managers=["supervisor", "supervisor"], behind={"h02": "h01"}) as lab:
        yield lab
    # down() takes the private range's unreachable route with it, and every namespace.
    routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True, check=True).stdout
    assert f"198.19.{SUBNET}.0/24" not in routes
    assert not [
        ns
        for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        if ns.startswith(f"{PREFIX}-")
    ]


@pytest.fixture
def lab(jump_lab: Lab) -> Iterator[Lab]:
    with checked_and_reset(jump_lab) as checked:
        yield checked


def sshd_log(lab: Lab, host: str) -> str:
    log = lab.path(host, "/var/log/sshd.log")
    return log.read_text() if log.exists() else ""


def premarket(
    hosts: str, inventory: list[Path], reports: Path, ssh_config: Path | None = None
) -> tuple[int, RunReport]:
    result = run_command(
        "premarket",
        hosts,
        inventory=inventory,
        reports=reports,
        ssh_config=str(ssh_config) if ssh_config else None,
        overrides={"settle_seconds": 1, "check_timeout": 20, "host_deadline": 90},
    )
    return result.code, result.report


def established_to(address: str, port: int) -> int:
    """How many TCP connections from this network namespace to ``address:port`` are established."""
    wanted = f"{socket.inet_aton(address)[::-1].hex().upper()}:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[2] == wanted and line.split()[3] == "01")


def test_the_private_host_has_no_route_from_the_controller(lab: Lab) -> None:
    assert lab.host("h02").address == PRIVATE and lab.host("h02").via == "h01"
    with pytest.raises(OSError) as raised:
        socket.create_connection((PRIVATE, 22), timeout=3).close()
    assert raised.value.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)
    route = subprocess.run(["ip", "route", "get", PRIVATE], capture_output=True, text=True, check=False)
    assert route.returncode != 0, route.stdout  # no route at all, not even the default one
    # ...yet it is up and answering SSH where it lives: behind h01.
    assert lab.banner(lab.host("h02")) is not None
    assert lab.status()[1].sshd


def test_premarket_heals_the_private_host_through_the_inventory_jump_host(lab: Lab, tmp_path: Path) -> None:
    lab.fault("h02", "uw")
    seen_h01, seen_h02 = len(sshd_log(lab, "h01")), len(sshd_log(lab, "h02"))
    code, report = premarket("all", [lab.inventory_path], tmp_path / "reports")
    assert code == 0, report.hosts
    by_host = {h.host: h for h in report.hosts}
    assert by_host["h01"].outcome == "healthy"
    h02 = by_host["h02"]
    assert h02.outcome == "healed" and h02.matched_signatures == ["uw_socket"]
    assert h02.before and h02.before["exit_code"] == 2 and h02.after and h02.after["exit_code"] == 0
    assert healthy(lab, "h02")
    # h02's logs came home through the jump host too.
    names = {f.name for f in h02.files}
    assert {"guardian.log", "guardian_pre_market_health_check_output.log"} <= names
    assert (tmp_path / "reports" / report.run_id / "h02" / "guardian.log").read_bytes()
    # h02's sshd saw the controller arrive from h01's private-side address; h01 saw the
    # controller twice (its own run, and the tunnel for h02).
    assert f"Accepted publickey for root from 198.19.{SUBNET}.1 " in sshd_log(lab, "h02")[seen_h02:]
    assert sshd_log(lab, "h01")[seen_h01:].count(f"Accepted publickey for root from 198.18.{SUBNET}.1 ") >= 2
    # Every connection is closed once the run is over, the jump host's tunnel too.
    deadline = time.monotonic() + 5
    while established_to(lab.host("h01").address, 22):
        assert time.monotonic() < deadline, "a connection to the jump host h01 was left open after the run"
        time.sleep(0.1)


def test_a_jump_host_that_cannot_reach_the_private_host_is_named(lab: Lab, tmp_path: Path) -> None:
    """h01 is up and lets the controller in, but nothing listens on the port asked for on h02:
    the reason says the jump host answered and what it could not reach."""
    closed_port = tmp_path / "zz-closed-port.yml"
    closed_port.write_text(json.dumps({"groups": {"lab": {"hosts": {"h02": {"port": 1}}}}}))
    code, report = premarket("h02", [lab.inventory_path, closed_port], tmp_path / "reports")
    assert code == 4
    (host,) = report.hosts
    assert host.outcome == "unreachable"
    assert f"jump host h01 ({PUBLIC}:22) is up but could not open a connection to {PRIVATE}:1" in host.reason


def _ssh_config(path: Path, lab: Lab, bastion_known_hosts: Path) -> Path:
    path.write_text(
        "Host bastion\n"
        f"  HostName {PUBLIC}\n"
        "  User root\n"
        f"  IdentityFile {lab.key_path}\n"
        f"  UserKnownHostsFile {bastion_known_hosts}\n"
        "Host private-bot\n"
        f"  HostName {PRIVATE}\n"
        "  User root\n"
        f"  IdentityFile {lab.key_path}\n"
        f"  UserKnownHostsFile {lab.known_hosts_path}\n"
        "  ProxyJump bastion\n"
    )
    return path


def _alias_inventory(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "vars": {"python": "/usr/bin/python3", "app_dir": APP},
                "groups": {"aliases": {"hosts": {"private-bot": None}}},
            }
        )
    )
    return path


def test_ssh_config_proxyjump_reaches_the_private_host(lab: Lab, tmp_path: Path) -> None:
    lab.fault("h02", "sip")
    ssh_config = _ssh_config(tmp_path / "ssh_config", lab, lab.known_hosts_path)
    inventory = _alias_inventory(tmp_path / "aliases.yml")
    seen = len(sshd_log(lab, "h02"))
    code, report = premarket("private-bot", [inventory], tmp_path / "reports", ssh_config)
    assert code == 0, report.hosts
    assert [(h.host, h.outcome) for h in report.hosts] == [("private-bot", "healed")]
    assert healthy(lab, "h02")
    assert f"Accepted publickey for root from 198.19.{SUBNET}.1 " in sshd_log(lab, "h02")[seen:]


def test_an_unknown_proxyjump_host_key_is_refused(lab: Lab, tmp_path: Path) -> None:
    """Fabric builds ssh_config ProxyJump hops with AutoAddPolicy; Guardian must not: a bastion
    whose key is not known is refused before anything reaches the private host."""
    lab.fault("h02", "sip")
    only_private = tmp_path / "known_hosts_without_bastion"
    only_private.write_text("".join(x for x in lab.known_hosts_path.read_text().splitlines(True) if PRIVATE in x))
    ssh_config = _ssh_config(tmp_path / "ssh_config", lab, only_private)
    inventory = _alias_inventory(tmp_path / "aliases.yml")
    seen_h01, seen_h02 = len(sshd_log(lab, "h01")), len(sshd_log(lab, "h02"))
    code, report = premarket("private-bot", [inventory], tmp_path / "reports", ssh_config)
    assert code == 4
    (host,) = report.hosts
    assert host.outcome == "host-key-rejected"
    assert PUBLIC in host.reason and "not in" in host.reason
    assert only_private.read_text().count("\n") == 1  # nothing was recorded either
    assert "Accepted" not in sshd_log(lab, "h01")[seen_h01:]
    assert "Accepted" not in sshd_log(lab, "h02")[seen_h02:]
    assert not healthy(lab, "h02")  # untouched: the fault is still there


@pytest.mark.parametrize(
    ("behind", "message"),
    [
        ({"h03": "h01"}, "both must be hosts of this lab"),
        ({"h02": "h09"}, "both must be hosts of this lab"),
        ({"h02": "h01", "h01": "h02"}, "is itself private"),
    ],
)
def test_a_bad_private_layout_is_refused_before_anything_is_created(
    tmp_path: Path, behind: dict[str, str], message: str
) -> None:
    lab = Lab(tmp_path / "never", prefix="gx", subnet=9, inventory_path=tmp_path / "inv.yml")
    with pytest.raises(ValueError, match=message):
        lab.up(2, behind=behind)
    assert not (tmp_path / "never").exists()
