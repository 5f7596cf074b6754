"""End-to-end tests of the lab fleet: real sshd, cron and process managers in namespaces."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import lab_names

from remediation.lab import Lab
from remediation.lab.procs import proc_starttime

pytestmark = pytest.mark.lab

HEALTH = ["/usr/bin/python3", "/root/stock-bot/pre_market_health_check.py"]


def ssh(lab: Lab, address: str, *command: str, known_hosts: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(lab.key_path),
            "-o",
            f"UserKnownHostsFile={known_hosts or lab.known_hosts_path}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-F",
            "/dev/null",
            f"root@{address}",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def health(lab: Lab, host: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return lab.exec(host, HEALTH, timeout=timeout, check=False)


def uw_pid(lab: Lab, host: str) -> int:
    return int(lab.path(host, "/root/stock-bot/state/uw_flow_daemon.pid").read_text().split()[0])


def test_hosts_come_up(lab: Lab) -> None:
    hosts = lab.hosts
    assert [h.name for h in hosts] == ["h01", "h02", "h03", "h04", "h05", "h06"]
    assert [h.manager for h in hosts] == ["supervisor", "process-compose", "signal"] + ["supervisor"] * 3
    assert [h.address for h in hosts] == [f"198.18.{lab.subnet}.{11 + i}" for i in range(6)]
    for st in lab.status():
        assert st.ok, st
    inv = yaml.safe_load(lab.inventory_path.read_text())
    assert inv["vars"]["key"] == str(lab.key_path)
    assert inv["groups"]["lab"]["hosts"]["h02"] == {"address": f"198.18.{lab.subnet}.12", "manager": "process-compose"}
    assert lab.inventory_path.read_text().startswith("#")


def test_ssh_strict_host_key_checking(lab: Lab) -> None:
    for h in lab.hosts:
        proc = ssh(lab, h.address, "hostname")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == h.name


def test_wrong_known_hosts_entry_is_refused(lab: Lab, tmp_path: Path) -> None:
    h1 = lab.hosts[0]
    key_of_h2 = lab.known_hosts_path.read_text().splitlines()[1].split()[1:]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{h1.address} {' '.join(key_of_h2)}\n")
    proc = ssh(lab, h1.address, "hostname", known_hosts=wrong)
    assert proc.returncode != 0
    assert "host key" in proc.stderr.lower() or "identification has changed" in proc.stderr.lower()


def test_exec_runs_inside_the_host(lab: Lab) -> None:
    proc = lab.exec("h02", ["sh", "-c", "hostname; pwd; ip -4 -o addr show eth0; echo $$"])
    name, cwd, addr, pid = proc.stdout.splitlines()
    assert (name, cwd) == ("h02", "/root")
    assert f"198.18.{lab.subnet}.12/24" in addr
    assert int(pid) < 1000  # its own PID namespace
    assert lab.exec("h02", ["false"], check=False).returncode == 1
    with pytest.raises(subprocess.CalledProcessError):
        lab.exec("h02", ["false"])


def test_pkill_on_one_host_spares_the_others(lab: Lab, reset_host: Callable[[str], str]) -> None:
    before = {h.name: uw_pid(lab, h.name) for h in lab.hosts}
    lab.exec("h01", ["pkill", "-f", "uw_flow_daemon.py"])
    deadline = time.monotonic() + 5
    while lab.status()[0].daemons["uw-daemon"] is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    status = {st.name: st for st in lab.status()}
    assert status["h01"].daemons["uw-daemon"] is None  # supervisor host, autorestart=false
    for name in ("h02", "h03", "h04"):
        assert status[name].daemons["uw-daemon"] == before[name]
    reset_host("h01")
    assert lab.status()[0].ok
    assert health(lab, "h01").returncode == 0


@pytest.mark.parametrize(
    ("host", "kind", "code", "pattern"),
    [
        ("h01", "uw", 2, r"UW.*fail"),
        ("h02", "uw", 2, r"UW.*fail"),
        ("h03", "sip", 1, r"SIP.*delay"),
        ("h04", "stale-lock", 1, r"stale lock"),
        ("h01", "kill", 2, None),
        ("h02", "kill", 2, None),
    ],
)
def test_fault_symptom_and_reset(
    lab: Lab, reset_host: Callable[[str], str], host: str, kind: str, code: int, pattern: str | None
) -> None:
    assert health(lab, host).returncode == 0
    lab.fault(host, kind)
    proc = health(lab, host)
    assert proc.returncode == code, proc.stdout
    if pattern:
        assert re.search(pattern, proc.stdout), proc.stdout
    reset_host(host)
    proc = health(lab, host)
    assert proc.returncode == 0, proc.stdout


def test_live_lock_is_not_stale(lab: Lab, reset_host: Callable[[str], str]) -> None:
    lab.fault("h03", "live-lock")
    proc = health(lab, "h03")
    assert "orders.lock" in proc.stdout
    assert "stale lock" not in proc.stdout
    assert proc.returncode == 0
    reset_host("h03")
    assert "orders.lock" not in health(lab, "h03").stdout


def test_hang_times_out(lab: Lab, reset_host: Callable[[str], str]) -> None:
    lab.fault("h04", "hang")
    with pytest.raises(subprocess.TimeoutExpired) as exc:
        health(lab, "h04", timeout=3)
    assert "checking" in str(exc.value.output)
    procs = lab.exec("h04", ["pgrep", "-f", "pre_market_health_check"], check=False)
    assert procs.stdout.strip() == ""  # the timed-out check was killed inside the host
    reset_host("h04")
    assert health(lab, "h04", timeout=10).returncode == 0


def test_flood_floods(lab: Lab, reset_host: Callable[[str], str]) -> None:
    lab.fault("h02", "flood")
    proc = health(lab, "h02", timeout=60)
    assert len(proc.stdout) > 10 * 1024 * 1024
    reset_host("h02")
    assert len(health(lab, "h02").stdout) < 10_000


def test_sshd_down_and_reset(lab: Lab, reset_host: Callable[[str], str]) -> None:
    h = lab.host("h03")
    lab.fault("h03", "sshd-down")
    with pytest.raises(ConnectionRefusedError), socket.create_connection((h.address, 22), timeout=3):
        pass
    assert ssh(lab, h.address, "hostname").returncode != 0
    assert not lab.status()[2].sshd
    reset_host("h03")
    proc = ssh(lab, h.address, "hostname")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "h03"


def test_supervisorctl_inside_supervisor_host(lab: Lab) -> None:
    proc = lab.exec("h04", ["supervisorctl", "status"])
    assert re.search(r"uw-daemon\s+RUNNING", proc.stdout)
    assert re.search(r"trading-bot\s+RUNNING", proc.stdout)
    old = uw_pid(lab, "h04")
    lab.exec("h04", ["supervisorctl", "restart", "uw-daemon"])
    deadline = time.monotonic() + 10
    while uw_pid(lab, "h04") == old and time.monotonic() < deadline:
        time.sleep(0.1)
    assert uw_pid(lab, "h04") != old


def test_cron_job_runs_only_on_its_host(lab: Lab) -> None:
    marker = "/root/cron-ran"
    lab.exec("h02", ["sh", "-c", f"echo '* * * * * hostname >> {marker}' | crontab -"])
    assert "hostname" in lab.exec("h02", ["crontab", "-l"]).stdout
    assert lab.exec("h01", ["crontab", "-l"], check=False).returncode != 0
    deadline = time.monotonic() + 75
    while not lab.path("h02", marker).exists() and time.monotonic() < deadline:
        time.sleep(1)
    try:
        assert lab.path("h02", marker).read_text().split()[0] == "h02"
        for other in ("h01", "h03", "h04"):
            assert not lab.path(other, marker).exists()
    finally:
        lab.exec("h02", ["crontab", "-r"], check=False)


def _recorded_pids(lab: Lab) -> list[tuple[int, int]]:
    data = lab._load()
    return [(r[p], r[s]) for r in data["hosts"] for p, s in (("pid", "start"), ("init_pid", "init_start"))]


def _assert_gone(lab: Lab, pids: list[tuple[int, int]], prefix: str = "gt") -> None:
    assert not [
        ns
        for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split()
        if ns.startswith(f"{prefix}-")
    ]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert not re.search(rf"^\d+: {prefix}-", links, re.M)
    for pid, start in pids:
        assert proc_starttime(pid) != start
    assert not lab.state_path.exists()


def test_down_on_half_created_lab(tmp_path: Path) -> None:
    """A lab of its own (the session lab stays up): break it by hand, then tear it down twice."""
    prefix, subnet = lab_names("gd", 3)
    lab = Lab(tmp_path / "lab", prefix=prefix, subnet=subnet, inventory_path=tmp_path / "inv.yml")
    try:
        lab.up(3)
        pids = _recorded_pids(lab)
        rec = lab._record("h02")
        os.kill(rec["pid"], 9)
        subprocess.run(["ip", "netns", "del", f"{prefix}-h03"], check=True)
    finally:
        lab.down()
    _assert_gone(lab, pids, prefix=prefix)
    lab.down()
    _assert_gone(lab, pids, prefix=prefix)
