"""A bad morning at fleet scale: 30 hosts, most of the reliability matrix at once, one run.

28 lab hosts of this module's own lab plus two fake SSH servers on loopback. Every host ends
with its documented outcome, nothing is written outside the report folder, nothing on a host is
deleted or killed outside what Guardian was configured for, and the healthy hosts finish in
their normal time: they do not wait for the hosts that hang, flood or never answer.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import APP, own_lab, run_command
from rich.console import Console
from test_reliability_lab import FakeServer

from remediation import jobs
from remediation.lab import Lab
from remediation.reporting.report import RunReport

pytestmark = pytest.mark.lab

HEALTHY = [f"h{i:02d}" for i in range(18, 29)]  # 11 hosts with nothing wrong
CHECK_TIMEOUT = 12.0
#: host -> the outcome the report must give it
EXPECTED = {
    "h01": "healed",  # uw, supervisor
    "h02": "healed",  # sip, process-compose stand-in
    "h03": "healed",  # uw, signal manager (respawner)
    "h04": "healed",  # stale lock + uw
    "h05": "healthy",  # a live lock (kept)
    "h06": "unexpected",  # the check hangs: cut off at check_timeout
    "h07": "healthy",  # the check floods 30 MB of output
    "h08": "still-degraded",  # a lock that is a symlink to a file outside the lock dir (kept)
    "h09": "still-degraded",  # the check prints binary, invalid UTF-8 and ANSI escapes
    "h10": "still-unhealthy",  # the daemon refuses to come back
    "h11": "still-unhealthy",  # the process manager is dead
    "h12": "healed",  # hostile files to collect (symlink to /etc/shadow, newline name) + sip
    "h13": "unreachable",  # wrong key
    "h14": "host-key-rejected",  # the host key changed
    "h15": "unreachable",  # sshd is down
    "h16": "healthy",  # a lock whose PID is alive but belongs to an unrelated process (kept)
    "h17": "busy",  # another Guardian run (as cron's would) holds the host lock
    "silent": "unreachable",  # accepts TCP, never sends a banner
    "dropper": "unreachable",  # drops the connection at authentication
    **dict.fromkeys(HEALTHY, "healthy"),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with own_lab(tmp_path_factory, "gm", 8, 28) as fleet:
        yield fleet


def premarket(lab: Lab, tmp_path: Path, hosts: str, extra: Path | None = None) -> tuple[int, RunReport, float]:
    started = time.monotonic()
    result = run_command(
        "premarket",
        hosts,
        inventory=[lab.inventory_path, *([extra] if extra else [])],
        reports=tmp_path / "reports",
        overrides={"settle_seconds": 1, "connect_timeout": 3, "check_timeout": CHECK_TIMEOUT, "lock_wait": 2},
    )
    return result.code, result.report, time.monotonic() - started


def tree(path: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and not p.is_symlink()}


def test_thirty_hosts_with_everything_wrong_at_once(lab: Lab, tmp_path: Path) -> None:
    # Baseline: the healthy hosts alone.
    code, baseline, _ = premarket(lab, tmp_path / "baseline", ",".join(HEALTHY))
    assert code == 0 and {h.outcome for h in baseline.hosts} == {"healthy"}
    normal = max(h.duration for h in baseline.hosts)

    # --- the faults -------------------------------------------------------------------------
    for host, kind in [
        ("h01", "uw"),
        ("h02", "sip"),
        ("h03", "uw"),
        ("h04", "stale-lock"),
        ("h04", "uw"),
        ("h05", "live-lock"),
        ("h06", "hang"),
        ("h07", "flood"),
        ("h10", "uw"),
        ("h11", "uw"),
        ("h12", "sip"),
        ("h15", "sshd-down"),
    ]:
        lab.fault(host, kind)
    outside = lab.path("h08", "/root/precious.txt")
    outside.write_text("not a lock\n")
    lab.path("h08", f"{APP}/state/evil.lock").symlink_to(outside)
    lab.path("h09", f"{APP}/binary_check.py").write_text(
        "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe\\x00garbage \\x1b[2J\\x1b]0;pwned\\x07 UW socket fail\\n')\n"
        "sys.exit(1)\n"
    )
    uw_daemon = lab.path("h10", f"{APP}/uw_flow_daemon.py")
    uw_daemon.write_text("import sys\nsys.exit(1)\n")
    lab.exec("h11", ["supervisorctl", "shutdown"])
    logs = lab.path("h12", f"{APP}/logs")
    (logs / "evil_alert_1.txt").symlink_to("/etc/shadow")
    (logs / "newline\nname_alert_2.txt").write_text("sneaky\n")
    wrong_key = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
    rebuilt = tmp_path / "rebuilt_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(rebuilt)], check=True)
    h14 = lab.host("h14").address
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(
        "".join(
            line if not line.startswith(h14 + " ") else f"{h14} {rebuilt.with_suffix('.pub').read_text()}"
            for line in lab.known_hosts_path.read_text().splitlines(True)
        )
    )
    reused = lab.path("h16", f"{APP}/state/reused.lock")
    reused.write_text("1\n")  # PID 1 of the host: alive, and not the lock's owner
    holder = lab.exec(
        "h17",
        [
            "bash",
            "-c",
            f"cd {APP}; mkdir -p .guardian/state; "
            'nohup /usr/bin/python3 -c \'import fcntl, time; f = open(".guardian/state/.guardian.flock", "a"); '
            "fcntl.flock(f, fcntl.LOCK_EX); time.sleep(300)' >/dev/null 2>&1 < /dev/null & echo $!",
        ],
    ).stdout.strip()
    silent, dropper = FakeServer("silent"), FakeServer("drop")
    extra = tmp_path / "zz-bad-morning.yml"
    extra.write_text(
        json.dumps(
            {
                "groups": {
                    "lab": {"vars": {"known_hosts": str(known_hosts)}},
                    "broken": {
                        "hosts": {
                            "silent": {"address": "127.0.0.1", "port": silent.port},
                            "dropper": {"address": "127.0.0.1", "port": dropper.port},
                        },
                    },
                    "odd": {"hosts": {"h09": {"check": "binary_check.py"}, "h13": {"key": str(wrong_key)}}},
                }
            }
        )
    )
    controller_before = tree(tmp_path)
    try:
        code, report, wall = premarket(lab, tmp_path, "all", extra)
    finally:
        silent.close()
        dropper.close()
        lab.exec("h17", ["kill", holder], check=False)
        uw_daemon.write_text((lab.app_source / "uw_flow_daemon.py").read_text())
        lab.exec("h11", ["supervisord", "-c", "/etc/supervisor/supervisord.conf"], check=False)

    # --- every host, its outcome; the run as a whole ----------------------------------------
    outcomes = {h.host: h.outcome for h in report.hosts}
    assert outcomes == EXPECTED, {h: (o, EXPECTED.get(h)) for h, o in outcomes.items() if o != EXPECTED.get(h)}
    assert code == 4  # the worst: some hosts could not be reached
    assert report.complete and report.exit_code == 4
    by_host = {h.host: h for h in report.hosts}
    for name, host in by_host.items():
        assert host.reason or host.outcome in ("healthy", "healed"), name

    # Healthy hosts finished in their normal time: well before the hanging check was cut off.
    healthy_times = {n: round(by_host[n].duration, 1) for n in HEALTHY}
    assert max(healthy_times.values()) < min(CHECK_TIMEOUT, 3 * normal + 5), (normal, healthy_times)
    assert by_host["h06"].duration >= CHECK_TIMEOUT and by_host["h06"].before["timed_out"]
    assert wall < 90, wall

    # Nothing was written outside the report folder on the controller.
    after = tree(tmp_path)
    assert {p for p in after if p not in controller_before and not p.startswith(str(tmp_path / "reports"))} == set()
    run_dir = tmp_path / "reports" / report.run_id
    for path in run_dir.rglob("*"):
        assert not path.is_symlink()
    shadow = Path("/etc/shadow").read_bytes()[:20] if Path("/etc/shadow").exists() else b"root:"
    assert not any(shadow in data for p, data in after.items() if p.startswith(str(run_dir)))

    # Each broken host: the specific guarantee.
    assert by_host["h04"].locks and any("metadata.lock" in str(lock) for lock in by_host["h04"].locks)
    assert not lab.path("h04", f"{APP}/state/metadata.lock").exists()
    assert lab.path("h05", f"{APP}/state/orders.lock").exists()  # live lock kept
    assert lab.path("h08", f"{APP}/state/evil.lock").is_symlink() and outside.read_text() == "not a lock\n"
    assert reused.read_text() == "1\n"  # alive PID: never deleted, and PID 1 was never signalled
    assert lab.exec("h06", ["pgrep", "-f", "pre_market_health_check"], check=False).returncode == 1
    assert len(json.dumps([h.before for h in report.hosts])) < 2_000_000  # the flood is bounded
    text = io.StringIO()
    jobs.show_report(tmp_path / "reports", host="h09", console=Console(file=text, width=200))
    assert "\x1b[2J" not in text.getvalue() and "\x1b]0;" not in text.getvalue()
    for name in ("h10", "h11"):
        restart = next(a for a in by_host[name].actions if a["kind"] == "restart")
        assert restart["result"] == "failed" and restart["detail"]
    names = {f.name for f in by_host["h12"].files}
    assert "evil_alert_1.txt" not in names and not any("\n" in n for n in names)
    assert "authentication failed" in by_host["h13"].reason
    assert "CHANGED" in by_host["h14"].reason
    assert "refused" in by_host["h15"].reason.lower()
    assert "handshake" in by_host["silent"].reason.lower()
    assert by_host["h17"].actions == [] and lab.path("h17", f"{APP}/state/uw_daemon.json").exists()
    assert "held" in by_host["h17"].reason
