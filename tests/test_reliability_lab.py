"""A bad morning, over real SSH: hosts that misbehave at the protocol level, hostile files on a
host, binary output, a full report disk. Every host ends with the right outcome and nothing is
written outside the report folder."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import CommandRun, run_command
from rich.console import Console

from remediation import jobs
from remediation.errors import ReportError
from remediation.lab import Lab
from remediation.reporting.report import RunReport

pytestmark = pytest.mark.lab
APP = "/root/stock-bot"


def run(tmp_path: Path, inventory: list[Path], hosts: str, reports: Path | None = None) -> tuple[int, RunReport]:
    result = run_command(
        "premarket",
        hosts,
        inventory=inventory,
        reports=reports or tmp_path / "reports",
        overrides={"settle_seconds": 1, "connect_timeout": 3, "check_timeout": 20},
    )
    return result.code, result.report


class FakeServer:
    """A TCP server on loopback that misbehaves: says nothing, or drops at authentication."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.mode == "drop":
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                conn.recv(4096)
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


def test_silent_and_dropping_hosts_and_a_wrong_key(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    silent, dropper = FakeServer("silent"), FakeServer("drop")
    wrong_key = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
    extra = tmp_path / "zz-extra.yml"
    extra.write_text(
        json.dumps(
            {
                "groups": {
                    "broken": {
                        "hosts": {
                            "silent": {"address": "127.0.0.1", "port": silent.port},
                            "dropper": {"address": "127.0.0.1", "port": dropper.port},
                        }
                    },
                    "wrongkey": {"hosts": {"h06": {"key": str(wrong_key)}}},
                }
            }
        )
    )
    lab.fault("h01", "uw")
    try:
        code, report = run(tmp_path, [lab.inventory_path, extra], "h01,silent,dropper,h06")
    finally:
        silent.close()
        dropper.close()
    outcomes = {h.host: h.outcome for h in report.hosts}
    assert outcomes == {"h01": "healed", "silent": "unreachable", "dropper": "unreachable", "h06": "unreachable"}
    assert code == 4
    reasons = {h.host: h.reason for h in report.hosts}
    assert "127.0.0.1" in reasons["silent"] and "handshake" in reasons["silent"].lower()
    assert "authentication failed" in reasons["h06"]
    assert next(h for h in report.hosts if h.host == "silent").duration < 30


def test_hostile_files_on_a_host_stay_there(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    logs = lab.path("h02", f"{APP}/logs")
    logs.mkdir(exist_ok=True)
    (logs / "evil_alert_1.txt").symlink_to("/etc/shadow")
    (logs / "newline\nname_alert_2.txt").write_text("sneaky\n")
    (logs / "..._alert_3.txt").write_text("dots\n")
    (logs / "guardian.log").unlink(missing_ok=True)
    (logs / "guardian.log").symlink_to("/etc/shadow")  # even a known name: never followed
    shadow = Path("/etc/shadow").read_bytes() if Path("/etc/shadow").exists() else b"root:"
    before = set(tmp_path.rglob("*"))
    lab.fault("h02", "sip")
    _code, report = run(tmp_path, [lab.inventory_path], "h02")
    try:
        host = report.hosts[0]
        assert host.outcome == "healed"
        run_dir = tmp_path / "reports" / report.run_id
        created = set(tmp_path.rglob("*")) - before
        assert all(str(p).startswith(str(tmp_path / "reports")) for p in created)
        for path in run_dir.rglob("*"):
            assert not path.is_symlink()
            if path.is_file():
                assert shadow[:20] not in path.read_bytes()
        names = {f.name for f in host.files}
        assert "evil_alert_1.txt" not in names and "guardian.log" not in names
        assert not any("\n" in n for n in names)
        assert any("unsafe name" in w for w in host.warnings)
    finally:
        for name in ("evil_alert_1.txt", "newline\nname_alert_2.txt", "..._alert_3.txt", "guardian.log"):
            (logs / name).unlink(missing_ok=True)


def test_binary_output_is_reported_not_fatal(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    check = lab.path("h04", f"{APP}/binary_check.py")
    check.write_text(
        "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe\\x00garbage \\x1b[2J UW socket fail\\n')\nsys.exit(1)\n"
    )
    result = run_command(
        "premarket",
        "h04",
        inventory=[lab.inventory_path],
        reports=tmp_path / "reports",
        check="binary_check.py",
        overrides={"settle_seconds": 1},
    )
    host = result.report.hosts[0]
    assert host.matched_signatures == ["uw_socket"] and host.outcome == "still-degraded" and result.code == 2
    assert "\ufffd" in host.before["tail"]
    text = io.StringIO()
    jobs.show_report(tmp_path / "reports", host="h04", console=Console(file=text, width=200))
    assert "\x1b[2J" not in text.getvalue() and "\\x1b[2J" in text.getvalue()
    check.unlink()


def test_full_report_disk_gives_a_clear_error_and_keeps_old_reports(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], check=True)
    try:
        reports = mount / "reports"
        code, first = run(tmp_path, [lab.inventory_path], "h05", reports=reports)
        assert code == 0
        old = (reports / first.run_id / "report.json").read_bytes()
        filler = mount / "filler"
        with open(filler, "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
        with pytest.raises(ReportError, match="No space left"):
            run(tmp_path, [lab.inventory_path], "h05", reports=reports)
        assert (reports / first.run_id / "report.json").read_bytes() == old
        assert (reports / "latest").read_text().strip() == first.run_id
        for path in reports.rglob("report.json"):
            data = json.loads(path.read_text())
            assert data["run_id"] == first.run_id or not data["complete"]
        os.unlink(filler)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_daemon_that_refuses_to_come_back_and_a_dead_manager(fleet: Lab, tmp_path: Path) -> None:
    lab = fleet
    # h04: the UW daemon is replaced by one that dies at once, so the restart cannot succeed.
    daemon = lab.path("h04", f"{APP}/uw_flow_daemon.py")
    original = daemon.read_text()
    # h05: supervisord itself is gone, so the process manager answers with an error.
    lab.fault("h04", "uw")
    lab.fault("h05", "uw")
    daemon.write_text("import sys\nsys.exit(1)\n")
    lab.exec("h05", ["supervisorctl", "shutdown"])
    try:
        code, report = run(tmp_path, [lab.inventory_path], "h04,h05,h06")
    finally:
        daemon.write_text(original)
        lab.exec("h05", ["supervisord", "-c", "/etc/supervisor/supervisord.conf"], check=False)
    outcomes = {h.host: h.outcome for h in report.hosts}
    assert outcomes == {"h04": "still-unhealthy", "h05": "still-unhealthy", "h06": "healthy"}
    assert code == 2
    for name in ("h04", "h05"):
        host = next(h for h in report.hosts if h.host == name)
        restart = next(a for a in host.actions if a["kind"] == "restart")
        assert restart["result"] == "failed" and restart["detail"], restart
    h05 = next(h for h in report.hosts if h.host == "h05")
    assert "supervisor" in next(a for a in h05.actions if a["kind"] == "restart")["detail"].lower()


def test_sshd_killed_mid_run_leaves_the_host_untouched_and_reported(fleet: Lab, tmp_path: Path) -> None:
    """sshd dies after the check has started and before any restart: the controller reports the
    host unreachable ("connection lost"), the runner on the host stops (no restart, lock freed),
    and the other hosts finish normally."""
    lab = fleet
    check = lab.path("h05", f"{APP}/slow_check.py")
    check.write_text(
        "import time\nprint('checking', flush=True)\ntime.sleep(4)\nprint('[FAIL] UW socket failure')\n"
        "raise SystemExit(2)\n"
    )
    other = lab.path("h06", f"{APP}/slow_check.py")
    other.write_text("print('[OK] all good')\n")
    before = json.loads(lab.path("h05", f"{APP}/state/uw_daemon.json").read_text())["pid"]
    result: dict[str, CommandRun] = {}

    def premarket() -> None:
        result["run"] = run_command(
            "premarket",
            "h05,h06",
            inventory=[lab.inventory_path],
            reports=tmp_path / "reports",
            check="slow_check.py",
            overrides={"settle_seconds": 1},
        )

    worker = threading.Thread(target=premarket)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while lab.exec("h05", ["pgrep", "-f", "slow_check.py"], check=False).returncode != 0:
            assert time.monotonic() < deadline, "the slow check never started"
            time.sleep(0.1)
        # Kill every sshd process on h05 (the listener and the session's), by PID.
        pids = lab.exec("h05", ["pgrep", "-x", "sshd"], check=False).stdout.split()
        assert pids
        lab.exec("h05", ["kill", "-9", *pids])
    finally:
        worker.join(timeout=90)
    report = result["run"].report
    outcomes = {h.host: h.outcome for h in report.hosts}
    assert outcomes == {"h05": "unreachable", "h06": "healthy"}
    h05 = next(h for h in report.hosts if h.host == "h05")
    assert "connection lost" in h05.reason
    assert result["run"].code == 4
    # Nothing was restarted on h05, and its runner let go of the host lock.
    deadline = time.monotonic() + 15
    while lab.exec("h05", ["pgrep", "-f", "slow_check.py|Guardian on-host runner"], check=False).returncode == 0:
        assert time.monotonic() < deadline, "the runner kept going after its controller vanished"
        time.sleep(0.3)
    assert json.loads(lab.path("h05", f"{APP}/state/uw_daemon.json").read_text())["pid"] == before
    check.unlink()
    other.unlink()
