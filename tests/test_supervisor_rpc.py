"""supervisord over its XML-RPC socket, against a real supervisord started by the test.

Every test here talks to a real ``supervisord`` (the Debian package's) running in a temporary
directory with its own unix socket: a status or a restart goes to supervisord itself with no
program started (the manager's ``supervisorctl`` is a path that does not exist, or a stand-in that
records every call), and a socket that takes no calls falls back to supervisorctl, saying why.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_command

from remediation.agent.commands import NotDelivered, execute
from remediation.agent.managers import ManagerError, ServiceSpec, SupervisorManager, probe, read_status
from remediation.agent.managers import run_command as run_manager_command
from remediation.agent.supervisor_rpc import find_endpoint, parse_endpoint
from remediation.lab.hostfiles import SUPERVISORD_CONF
from remediation.reporting.render import host_view, to_text
from remediation.reporting.views.labels import command_line

SUPERVISORD = shutil.which("supervisord") or "/usr/bin/supervisord"
SUPERVISORCTL = shutil.which("supervisorctl") or "/usr/bin/supervisorctl"
pytestmark = pytest.mark.skipif(not Path(SUPERVISORD).exists(), reason="needs supervisord")

CONF = """\
[unix_http_server]
file=%(here)s/s.sock
{server_auth}

[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/s.sock
{ctl_auth}

[program:uw-daemon]
command={python} {app}/uw_flow_daemon.py
directory={app}
startsecs=0
autorestart=false

[program:trading-bot]
command={python} -c "import time; time.sleep(600)" main.py
startsecs=0
autorestart=false
"""

# The daemon counts its starts; the check is degraded (a UW signature) until it has been restarted.
DAEMON = """\
import os, time
count = os.path.join(os.path.dirname(os.path.abspath(__file__)), "state", "uw_starts")
n = int(open(count).read()) if os.path.exists(count) else 0
open(count, "w").write(str(n + 1))
time.sleep(600)
"""
CHECK = """\
import os, sys
count = os.path.join(os.path.dirname(os.path.abspath(__file__)), "state", "uw_starts")
if int(open(count).read()) >= 2:
    print("RESULT: HEALTHY"); sys.exit(0)
print("[ERROR] UW connection_error: socket closed"); sys.exit(1)
"""

# A stand-in supervisorctl: records its calls, answers a status (for the fall-back tests).
RECORDING_SUPERVISORCTL = """\
#!{python}
import json, os, sys
log = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.jsonl")
open(log, "a").write(json.dumps(sys.argv[1:]) + "\\n")
done = os.path.join(os.path.dirname(os.path.abspath(__file__)), "restarted")
if "restart" in sys.argv:
    open(done, "w").close()
    print(sys.argv[-1] + ": stopped")
    print(sys.argv[-1] + ": started")
if "status" in sys.argv:
    print(sys.argv[-1] + "    RUNNING   pid %d, uptime 0:00:01" % (4243 if os.path.exists(done) else 4242))
"""


class Supervisord:
    """A real supervisord in a short temporary directory (unix socket paths are limited to 107
    bytes), running the two daemons; stopped, by its own pid, at the end."""

    def __init__(self, app: Path, *, server_auth: str = "", ctl_auth: str = "") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rpsv-", dir="/tmp"))
        self.conf = self.dir / "supervisord.conf"
        self.socket = self.dir / "s.sock"
        # the helper's own supervisorctl calls log in as the server expects, whatever [supervisorctl] says
        server = dict(line.split("=", 1) for line in server_auth.splitlines())
        self.login = ["-u", server["username"], "-p", server["password"]] if server else []
        self.conf.write_text(CONF.format(python=sys.executable, app=app, server_auth=server_auth, ctl_auth=ctl_auth))
        self.proc = subprocess.Popen(
            [SUPERVISORD, "-n", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 15
            while self.pid("uw-daemon") is None or self.pid("trading-bot") is None:
                assert self.proc.poll() is None, (self.dir / "supervisord.log").read_text()
                assert time.monotonic() < deadline, "supervisord did not start its programs"
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def ctl(self, *args: str) -> str:
        proc = subprocess.run([SUPERVISORCTL, "-c", str(self.conf), *self.login, *args], capture_output=True, text=True)
        return proc.stdout

    def pid(self, name: str) -> int | None:
        """The program's pid as the real supervisorctl says it."""
        fields = self.ctl("status", name).split()
        return int(fields[3].rstrip(",")) if len(fields) >= 4 and fields[1] == "RUNNING" else None

    def stop(self) -> None:
        self.proc.terminate()  # supervisord stops its programs on SIGTERM
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "state").mkdir(parents=True)
    (app / "uw_flow_daemon.py").write_text(DAEMON)
    (app / "pre_market_health_check.py").write_text(CHECK)
    return app


@pytest.fixture
def supervisord(app: Path) -> Iterator[Supervisord]:
    daemon = Supervisord(app)
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def recording_supervisorctl(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "supervisorctl"
    path.parent.mkdir()
    path.write_text(RECORDING_SUPERVISORCTL.format(python=sys.executable))
    path.chmod(0o755)
    return path


def ctl_calls(fake: Path) -> list[list[str]]:
    log = fake.parent / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


UW = ServiceSpec("uw-daemon", "uw-daemon", "uw_flow_daemon.py", "")
NO_PROGRAM = "/nonexistent/bin/supervisorctl"  # any attempt to start supervisorctl would fail


def test_status_and_restart_go_to_supervisord_itself(supervisord: Supervisord) -> None:
    manager = SupervisorManager({"supervisor_conf": str(supervisord.conf), "supervisorctl": NO_PROGRAM})
    assert manager.route() == {"via": "xmlrpc"}
    before = read_status(manager, UW)
    assert (before.running, before.state, before.pid) == (True, "RUNNING", supervisord.pid("uw-daemon"))
    command = manager.restart_command(UW, before)
    assert command.to_dict() == {
        "rpc": [
            {"method": "supervisor.stopProcess", "args": ["uw-daemon", True], "tolerate": ["NOT_RUNNING"]},
            {"method": "supervisor.startProcess", "args": ["uw-daemon", True]},
        ],
        "socket": str(supervisord.socket),
    }
    assert command_line(command.to_dict()) == (
        "supervisor.stopProcess('uw-daemon', True); supervisor.startProcess('uw-daemon', True)"
        f" (XML-RPC on {supervisord.socket})"
    )
    answer = run_manager_command(manager, lambda: command)
    assert answer is not None
    assert manager.restart_answer(UW, answer) == "uw-daemon: stopped, started (XML-RPC)"
    after = read_status(manager, UW)
    assert after.running and after.pid not in (None, before.pid)
    assert after.pid == supervisord.pid("uw-daemon")  # what supervisorctl itself now says
    assert probe(manager) == f"supervisord pid {supervisord.proc.pid}"


def test_a_stopped_program_is_started(supervisord: Supervisord) -> None:
    supervisord.ctl("stop", "trading-bot")
    manager = SupervisorManager({"supervisor_conf": str(supervisord.conf), "supervisorctl": NO_PROGRAM})
    bot = ServiceSpec("trading-bot", "trading-bot", "main.py", "")
    stopped = read_status(manager, bot)
    assert (stopped.running, stopped.pid, stopped.state) == (False, None, "STOPPED")
    answer = run_manager_command(manager, lambda: manager.restart_command(bot, stopped))
    assert answer is not None
    assert manager.restart_answer(bot, answer) == "trading-bot: was not running, started (XML-RPC)"
    assert read_status(manager, bot).pid == supervisord.pid("trading-bot") is not None


def test_a_program_supervisord_does_not_know_is_a_clear_error(supervisord: Supervisord) -> None:
    manager = SupervisorManager({"supervisor_conf": str(supervisord.conf), "supervisorctl": NO_PROGRAM})
    typo = ServiceSpec("uw-daemon", "uw-demon", "uw_flow_daemon.py", "")
    with pytest.raises(ManagerError, match=r"^supervisor has no program named 'uw-demon' \(.*BAD_NAME"):
        read_status(manager, typo)
    answer = run_manager_command(manager, lambda: manager.restart_command(typo, read_status(manager, UW)))
    assert answer is not None and answer.exit_code == 10
    with pytest.raises(ManagerError, match=r"no program named 'uw-demon' \(supervisor.stopProcess\('uw-demon', True\)"):
        manager.restart_answer(typo, answer)
    assert manager.route() == {"via": "xmlrpc"}  # a fault is an answer: no fall-back


def test_credentials_are_sent_and_never_shown(app: Path) -> None:
    auth = "username=guardian\npassword=s3cret-pw"
    daemon = Supervisord(app, server_auth=auth, ctl_auth=auth)
    try:
        manager = SupervisorManager({"supervisor_conf": str(daemon.conf), "supervisorctl": NO_PROGRAM})
        state = read_status(manager, UW)
        assert state.running and state.pid == daemon.pid("uw-daemon")
        command = manager.restart_command(UW, state)
        shown = json.dumps(command.to_dict())
        assert command.to_dict()["auth"] == "basic"
        assert "s3cret" not in shown and "s3cret" not in repr(command)
    finally:
        daemon.stop()


def test_refused_credentials_fall_back_to_supervisorctl(app: Path, recording_supervisorctl: Path) -> None:
    daemon = Supervisord(
        app, server_auth="username=guardian\npassword=right", ctl_auth="username=guardian\npassword=wrong"
    )
    try:
        manager = SupervisorManager(
            {"supervisor_conf": str(daemon.conf), "supervisorctl": str(recording_supervisorctl)}
        )
        assert manager.route() == {"via": "xmlrpc"}
        state = read_status(manager, UW)  # refused (401), then asked through supervisorctl
        assert (state.running, state.pid) == (True, 4242)
        assert ctl_calls(recording_supervisorctl) == [["-c", str(daemon.conf), "status", "uw-daemon"]]
        assert manager.route() == {
            "via": "supervisorctl",
            "via_reason": f"supervisord on {daemon.socket} refused the credentials",
        }
    finally:
        daemon.stop()


def test_a_socket_nobody_listens_on_falls_back(tmp_path: Path, recording_supervisorctl: Path) -> None:
    here = Path(tempfile.mkdtemp(prefix="rpsv-", dir="/tmp"))
    try:
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(here / "s.sock"))  # a socket file left by a supervisord that died
        stale.close()
        conf = here / "supervisord.conf"
        conf.write_text(CONF.format(python=sys.executable, app=tmp_path, server_auth="", ctl_auth=""))
        manager = SupervisorManager({"supervisor_conf": str(conf), "supervisorctl": str(recording_supervisorctl)})
        assert manager.route() == {"via": "xmlrpc"}  # a socket is there: it will be tried
        with pytest.raises(NotDelivered, match="Connection refused"):
            execute(manager.status_command(UW))  # the executor alone: not delivered, nothing done
        assert read_status(manager, UW).pid == 4242
        assert manager.route() == {
            "via": "supervisorctl",
            "via_reason": f"socket {here / 's.sock'}: Connection refused",
        }
        (here / "s.sock").unlink()  # no socket file at all: supervisorctl from the start, nothing tried
        fresh = SupervisorManager({"supervisor_conf": str(conf), "supervisorctl": str(recording_supervisorctl)})
        assert fresh.route() == {
            "via": "supervisorctl",
            "via_reason": f"socket {here / 's.sock'}: No such file or directory",
        }
        assert fresh.status_command(UW).argv == (str(recording_supervisorctl), "-c", str(conf), "status", "uw-daemon")
    finally:
        shutil.rmtree(here, ignore_errors=True)


def test_the_lab_config_and_supervisorctls_search_order(tmp_path: Path) -> None:
    lab = parse_endpoint(SUPERVISORD_CONF, "/etc/supervisor/supervisord.conf")
    assert (lab.socket, lab.reason) == ("/run/supervisor.sock", "")
    # supervisorctl's own search: HERE/etc/supervisord.conf first (HERE: above its bin dir)
    prefix = tmp_path / "opt"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "etc").mkdir()
    ctl = prefix / "bin" / "supervisorctl"
    ctl.write_text("#!/bin/sh\n")
    ctl.chmod(0o755)
    (prefix / "etc" / "supervisord.conf").write_text("[unix_http_server]\nfile=%(here)s/x.sock\n")
    found = find_endpoint(None, str(ctl))
    assert found.config == str(prefix / "etc" / "supervisord.conf")
    assert found.reason == f"socket {prefix / 'etc' / 'x.sock'}: No such file or directory"


# -- end to end: the runner heals a host whose supervisord it asks over the socket -------------------


def premarket(tmp_path: Path, app: Path, **settings: Any) -> Any:
    host = {"transport": "local", "app_dir": str(app), "python": sys.executable, "settle_seconds": 0.2, **settings}
    inventory = tmp_path / "inv.yml"
    inventory.write_text(json.dumps({"groups": {"here": {"hosts": {"local": host}}}}))
    return run_command("premarket", "local", inventory=[inventory], reports=tmp_path / "reports")


def test_premarket_heals_over_the_socket_and_the_report_says_so(
    tmp_path: Path, app: Path, supervisord: Supervisord, recording_supervisorctl: Path
) -> None:
    old_pid = supervisord.pid("uw-daemon")
    options = {"supervisor_conf": str(supervisord.conf), "supervisorctl": str(recording_supervisorctl)}
    run = premarket(tmp_path, app, manager="supervisor", manager_options=options)
    (host,) = run.report.hosts
    assert host.outcome == "healed", host.reason
    (restart,) = host.actions
    assert restart["result"] == "ok" and restart["confirmed"] is True
    assert restart["via"] == "xmlrpc" and "via_reason" not in restart
    assert restart["command"]["rpc"][1] == {"method": "supervisor.startProcess", "args": ["uw-daemon", True]}
    assert restart["new_pid"] == supervisord.pid("uw-daemon") != old_pid
    assert f"pid {old_pid} -> {restart['new_pid']}" in restart["detail"]
    assert ctl_calls(recording_supervisorctl) == []  # no supervisorctl was started, not even for a status
    assert host.plan is not None and host.plan["actions"][0]["via"] == "xmlrpc"
    shown = to_text(host_view(run.report, host), width=600)  # `invoke report --host local`
    assert f"supervisor.startProcess('uw-daemon', True) (XML-RPC on {supervisord.socket})" in shown


def test_premarket_with_a_wrong_program_name_says_so(
    tmp_path: Path, app: Path, supervisord: Supervisord, recording_supervisorctl: Path
) -> None:
    options = {"supervisor_conf": str(supervisord.conf), "supervisorctl": str(recording_supervisorctl)}
    services = {"uw-daemon": {"name": "uw-demon"}}
    run = premarket(tmp_path, app, manager="supervisor", manager_options=options, services=services)
    (host,) = run.report.hosts
    assert host.outcome == "still-degraded"
    (restart,) = host.actions
    assert restart["result"] == "failed"
    assert restart["detail"].startswith("supervisor has no program named 'uw-demon' (supervisor.stopProcess(")
    assert ctl_calls(recording_supervisorctl) == []


def test_premarket_falls_back_to_supervisorctl_and_says_why(tmp_path: Path, recording_supervisorctl: Path) -> None:
    here = Path(tempfile.mkdtemp(prefix="rpsv-", dir="/tmp"))
    try:
        conf = here / "supervisord.conf"  # names a socket no supervisord serves
        conf.write_text(CONF.format(python=sys.executable, app=tmp_path, server_auth="", ctl_auth=""))
        app = tmp_path / "app"
        (app / "state").mkdir(parents=True)
        done = recording_supervisorctl.parent / "restarted"
        (app / "pre_market_health_check.py").write_text(
            f"import os, sys\nif os.path.exists({str(done)!r}):\n    sys.exit(0)\n"
            "print('[ERROR] UW connection_error: socket closed'); sys.exit(1)\n"
        )
        options = {"supervisor_conf": str(conf), "supervisorctl": str(recording_supervisorctl)}
        run = premarket(tmp_path, app, manager="supervisor", manager_options=options)
        (host,) = run.report.hosts
        assert host.outcome == "healed", host.reason
        (restart,) = host.actions
        assert restart["command"] == {"argv": [str(recording_supervisorctl), "-c", str(conf), "restart", "uw-daemon"]}
        assert restart["via"] == "supervisorctl"
        assert restart["via_reason"] == f"socket {here / 's.sock'}: No such file or directory"
        assert restart["new_pid"] == 4243
        shown = to_text(host_view(run.report, host), width=600)
        assert f"restart uw-daemon (not XML-RPC: socket {here / 's.sock'}: No such file or directory)" in shown
    finally:
        shutil.rmtree(here, ignore_errors=True)
