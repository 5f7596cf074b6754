"""End to end against real systemd: lab hosts whose PID 1 is systemd 252, with sshd, cron and the
example app as units, healed over SSH through ``systemctl``; deploy's timers; a mixed fleet.

One lab for the module: h01-h03 systemd, h04 supervisor, h05 signal, h06 the process-compose
stand-in. Each test starts from healthy hosts and leaves them so (``checked_and_reset``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CommandRun, checked_and_reset, healthy, lab_names, own_lab, run_command

from remediation.lab import Lab
from remediation.lab.hostinit import CGROUP_PARENT

pytestmark = pytest.mark.lab
APP = "/root/stock-bot"
MANAGERS = ["systemd", "systemd", "systemd", "supervisor", "signal", "process-compose"]
SYSTEMD_HOSTS = ("h01", "h02", "h03")
FAST = {"settle_seconds": 1, "check_timeout": 20}


@pytest.fixture(scope="module")
def sdlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with own_lab(tmp_path_factory, "gs", 40, len(MANAGERS), managers=MANAGERS) as fleet:
        yield fleet


@pytest.fixture
def sd(sdlab: Lab) -> Iterator[Lab]:
    with checked_and_reset(sdlab) as checked:
        yield checked


def show(lab: Lab, host: str, unit: str) -> dict[str, str]:
    out = lab.exec(host, ["systemctl", "show", unit]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def systemctl(lab: Lab, host: str, *args: str) -> str:
    proc = lab.exec(host, ["systemctl", *args], check=False)
    return (proc.stdout + proc.stderr).strip()


def premarket(lab: Lab, tmp_path: Path, hosts: str, **overrides: Any) -> CommandRun:
    return run_command(
        "premarket",
        hosts,
        inventory=[lab.inventory_path],
        reports=tmp_path / "reports",
        overrides={**FAST, **overrides},
    )


def actions(run: CommandRun, host: str) -> list[dict[str, Any]]:
    return [dict(a) for a in next(h for h in run.report.hosts if h.host == host).actions]


def outcomes(run: CommandRun) -> dict[str, str]:
    return {h.host: h.outcome for h in run.report.hosts}


def wait_for(what: str, ready: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_systemd_hosts_run_real_systemd_as_pid_1_with_sshd_cron_and_the_app_as_units(sd: Lab) -> None:
    for host in SYSTEMD_HOSTS:
        procs = sd.processes(host)
        assert procs[1][1][0] == "/lib/systemd/systemd", procs[1]
        assert systemctl(sd, host, "is-system-running") == "running"
        for unit in ("ssh.service", "cron.service", "uw-daemon.service", "trading-bot.service"):
            assert systemctl(sd, host, "is-active", unit) == "active", (host, unit)
        uw = show(sd, host, "uw-daemon.service")
        assert (uw["Restart"], show(sd, host, "trading-bot.service")["Restart"]) == ("always", "on-failure")
        pidfile = sd.path(host, f"{APP}/state/uw_flow_daemon.pid").read_text().strip()
        assert uw["MainPID"] == pidfile  # the daemon the app sees is systemd's main process
        root_pid = procs[int(uw["MainPID"])][0]
        netns = sd.host(host).netns
        cgroup = Path(f"/proc/{root_pid}/cgroup").read_text()
        assert f"/{CGROUP_PARENT}/{netns}/system.slice/uw-daemon.service" in cgroup  # its own tree
        assert show(sd, host, "ssh.service")["MainPID"] == str(sd.sshd_pid(host))
    assert all(status.ok for status in sd.status())


def test_faults_on_a_systemd_host_and_systemd_restarting_a_killed_daemon_by_itself(sd: Lab) -> None:
    host = sd.host("h02")
    sd.fault("h02", "sshd-down")
    assert sd.banner(host) is None and systemctl(sd, "h02", "is-active", "ssh.service") == "inactive"
    assert "restarted sshd" in sd.fault("h02", "reset")
    assert sd.banner(host) is not None and systemctl(sd, "h02", "is-active", "ssh.service") == "active"
    before = show(sd, "h02", "uw-daemon.service")
    sd.fault("h02", "kill")  # SIGKILL: Restart=always brings it back without Guardian
    wait_for("systemd to restart uw-daemon", lambda: healthy(sd, "h02"))
    after = show(sd, "h02", "uw-daemon.service")
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1 and after["MainPID"] != before["MainPID"]


def test_premarket_heals_uw_sip_and_stale_locks_through_systemctl_confirmed_by_systemd(sd: Lab, tmp_path: Path) -> None:
    sd.fault("h01", "uw")
    sd.fault("h02", "sip")
    sd.fault("h02", "stale-lock")
    sd.fault("h03", "uw")
    sd.fault("h03", "sip")
    before = {h: show(sd, h, "uw-daemon.service")["InvocationID"] for h in SYSTEMD_HOSTS}
    run = premarket(sd, tmp_path, "h01,h02,h03")
    assert run.code == 0, run.out
    assert outcomes(run) == {"h01": "healed", "h02": "healed", "h03": "healed"}
    restarts = {(h, a["target"]): a for h in SYSTEMD_HOSTS for a in actions(run, h) if a["kind"] == "restart"}
    assert sorted(restarts) == [
        ("h01", "uw-daemon"),
        ("h02", "trading-bot"),
        ("h03", "trading-bot"),
        ("h03", "uw-daemon"),
    ]
    for (host, service), action in restarts.items():
        assert action["result"] == "ok" and action["confirmed"] is True
        assert action["command"] == {"argv": ["systemctl", "restart", service]}
        unit = show(sd, host, f"{service}.service")
        facts = action["systemd"]
        assert facts["after"]["main_pid"] == action["new_pid"] == int(unit["MainPID"])
        assert facts["after"]["invocation_id"] == unit["InvocationID"] != facts["before"]["invocation_id"]
        assert facts["after"]["state"] == "active/running" and facts["reset_failed"] is False
        assert (
            f"InvocationID {facts['before']['invocation_id'][:12]} -> {unit['InvocationID'][:12]}" in action["detail"]
        )
    assert show(sd, "h01", "uw-daemon.service")["InvocationID"] != before["h01"]
    assert not sd.path("h02", f"{APP}/state/metadata.lock").exists()
    assert "h02: removed stale lock metadata.lock; wrote alert alpaca_sip; restarted trading-bot" in run.out


def test_a_mixed_fleet_of_every_manager_heals_in_one_run(sd: Lab, tmp_path: Path) -> None:
    # Half the fleet each (the blast-radius guard holds back a signature on more than half).
    for host in ("h01", "h04", "h05"):
        sd.fault(host, "uw")
    for host in ("h02", "h03", "h06"):
        sd.fault(host, "sip")
    sd.fault("h06", "stale-lock")
    run = premarket(sd, tmp_path, "lab")
    assert run.code == 0, run.out
    assert set(outcomes(run).values()) == {"healed"} and len(outcomes(run)) == 6
    first = {h.host: next(a for a in h.actions if a["kind"] == "restart") for h in run.report.hosts}
    assert first["h01"]["command"] == {"argv": ["systemctl", "restart", "uw-daemon"]}
    assert first["h02"]["command"] == {"argv": ["systemctl", "restart", "trading-bot"]}
    assert first["h04"]["via"] == "xmlrpc" and first["h04"]["command"]["rpc"][0]["method"] == "supervisor.stopProcess"
    assert first["h05"]["command"]["signal"] == "SIGTERM"
    assert "process-compose" in first["h06"]["command"]["argv"][0]
    assert all(healthy(sd, h) for h in ("h01", "h02", "h03", "h04", "h05", "h06"))


def _crash_loop_until_systemd_gives_up(lab: Lab, host: str) -> dict[str, str]:
    lab.fault(host, "crash-loop")
    wait_for("the start limit", lambda: show(lab, host, "uw-daemon.service")["ActiveState"] == "failed")
    return show(lab, host, "uw-daemon.service")


def test_a_unit_at_its_start_limit_refuses_a_manual_start_and_guardian_resets_it_first(sd: Lab, tmp_path: Path) -> None:
    failed = _crash_loop_until_systemd_gives_up(sd, "h01")
    # systemd 252 keeps the first failure's result (the SIGKILL: "signal"), never start-limit-hit here
    assert failed["Result"] in ("signal", "exit-code"), failed["Result"]
    sd.exec("h01", ["rm", f"{APP}/state/.fault_crash_uw-daemon"])  # the cause is gone now
    refused = systemctl(sd, "h01", "start", "uw-daemon.service")
    assert "failed" in refused and show(sd, "h01", "uw-daemon.service")["InvocationID"] == failed["InvocationID"]
    run = premarket(sd, tmp_path, "h01")
    assert run.code == 0 and outcomes(run) == {"h01": "healed"}, run.out
    restart = next(a for a in actions(run, "h01") if a["kind"] == "restart")
    assert restart["commands_before"] == [{"argv": ["systemctl", "reset-failed", "uw-daemon"]}]
    assert restart["result"] == "ok" and restart["systemd"]["reset_failed"] is True
    assert restart["detail"].startswith("ran systemctl reset-failed uw-daemon; ")
    assert "start-limit-hit: systemd gave up restarting uw-daemon.service" in restart["detail"]
    assert systemctl(sd, "h01", "is-active", "uw-daemon.service") == "active"


def test_a_unit_in_a_restart_loop_trips_the_restart_budget(sd: Lab, tmp_path: Path) -> None:
    _crash_loop_until_systemd_gives_up(sd, "h02")  # and the cause stays
    budget = {"restart_budget_max": 2, "restart_timeout": 4}
    for attempt in (1, 2):
        run = premarket(sd, tmp_path, "h02", **budget)
        assert run.code == 2 and outcomes(run) == {"h02": "still-unhealthy"}, run.out
        restart = next(a for a in actions(run, "h02") if a["kind"] == "restart")
        assert restart["result"] == "failed", (attempt, restart)
    run = premarket(sd, tmp_path, "h02", **budget)
    assert run.code == 2 and outcomes(run) == {"h02": "still-unhealthy"}
    kinds = [(a["kind"], a["result"]) for a in actions(run, "h02")]
    assert (
        ("breaker_open", "blocked") in kinds and ("restart", "ok") not in kinds and ("restart", "failed") not in kinds
    )
    assert "restart of uw-daemon blocked: breaker open (2 restarts" in run.out
    alerts = list(sd.path("h02", f"{APP}/logs").glob("guardian_breaker_uw-daemon_alert_*.txt"))
    assert alerts, "no breaker alert file"


def test_masked_and_stopped_units_are_refused_not_restarted(sd: Lab, tmp_path: Path) -> None:
    unit_file = "/etc/systemd/system/uw-daemon.service"
    sd.exec("h03", ["mv", unit_file, "/root/uw-daemon.service.aside"])
    sd.exec("h03", ["systemctl", "stop", "uw-daemon.service"])
    sd.exec("h03", ["systemctl", "mask", "uw-daemon.service"])  # as an operator does
    sd.exec("h01", ["systemctl", "stop", "trading-bot.service"])
    try:
        dry = run_command(
            "premarket",
            "h01,h03",
            inventory=[sd.inventory_path],
            reports=tmp_path / "dry",
            dry_run=True,
            overrides=FAST,
        )
        planned = {h.host: (h.plan or {})["actions"] for h in dry.report.hosts}
        assert "uw-daemon.service is masked" in planned["h03"][0]["command_error"]
        run = premarket(sd, tmp_path, "h01,h03")
        assert run.code == 2, run.out
        assert outcomes(run) == {"h01": "still-unhealthy", "h03": "still-unhealthy"}
        masked = next(a for a in actions(run, "h03") if a["kind"] == "restart")
        assert masked["result"] == "refused" and "systemctl unmask uw-daemon.service" in masked["detail"]
        assert "command" not in masked  # nothing was run
        stopped = next(a for a in actions(run, "h01") if a["kind"] == "restart")
        assert stopped["result"] == "refused" and "trading-bot.service is stopped" in stopped["detail"]
        assert "restart trading-bot ✗ REFUSED" in run.out
        assert "restart of uw-daemon refused: uw-daemon.service is masked" in run.out
        assert systemctl(sd, "h03", "is-active", "uw-daemon.service") == "inactive"
        assert systemctl(sd, "h01", "is-active", "trading-bot.service") == "inactive"
        breaker = sd.path("h03", f"{APP}/.guardian/state/guardian-breaker.json")
        assert not breaker.exists() or "uw-daemon" not in json.loads(breaker.read_text()).get("restarts", {})
    finally:
        sd.exec("h03", ["systemctl", "unmask", "uw-daemon.service"], check=False)
        sd.exec("h03", ["mv", "/root/uw-daemon.service.aside", unit_file], check=False)
        sd.exec("h03", ["systemctl", "daemon-reload"], check=False)
        sd.exec("h03", ["systemctl", "start", "uw-daemon.service"], check=False)
        sd.exec("h01", ["systemctl", "start", "trading-bot.service"], check=False)


def _timer_inventory(lab: Lab, tmp_path: Path, **group_vars: Any) -> list[Path]:
    extra = tmp_path / "zz-timers.yml"
    extra.write_text(json.dumps({"groups": {"lab": {"vars": {"scheduler": "systemd-timer", **group_vars}}}}))
    return [lab.inventory_path, extra]


def _guardian_unit_files(lab: Lab, host: str) -> list[str]:
    return sorted(p.name for p in lab.path(host, "/etc/systemd").rglob("guardian-*"))


def test_deploy_with_timers_heals_from_the_timer_alone_and_remove_leaves_no_unit(sd: Lab, tmp_path: Path) -> None:
    inventory = _timer_inventory(sd, tmp_path)

    def deploy(hosts: str = "h01,h02", **flags: Any) -> CommandRun:
        return run_command("deploy", hosts, inventory=inventory, reports=tmp_path / "reports", **flags)

    dry = deploy(dry_run=True)
    assert dry.code == 0 and set(outcomes(dry).values()) == {"would-change"}
    diffs = "".join(c.get("diff", "") for c in next(h for h in dry.report.hosts if h.host == "h01").changes)
    assert "+OnCalendar=Mon..Fri *-*-* 14:15:00 UTC" in diffs and "+Persistent=true" in diffs
    assert _guardian_unit_files(sd, "h01") == []  # a dry run writes nothing
    first = deploy()
    assert first.code == 0 and set(outcomes(first).values()) == {"changed"}, first.out
    for host in ("h01", "h02"):
        timer = show(sd, host, "guardian-pre-market.timer")
        assert (timer["ActiveState"], timer["UnitFileState"], timer["Persistent"]) == ("active", "enabled", "yes")
        assert "OnCalendar=Mon..Fri *-*-* 14:15:00 UTC" in timer["TimersCalendar"]
        assert "BEGIN GUARDIAN" not in sd.exec(host, ["crontab", "-l"], check=False).stdout
        assert "guardian-logrotate.timer" in systemctl(sd, host, "list-timers", "--all", "--no-pager")
    second = deploy()
    assert second.code == 0 and set(outcomes(second).values()) == {"unchanged"}, second.out
    # The timer's service alone heals a fault: no laptop, no SSH session.
    sd.fault("h01", "uw")
    assert not healthy(sd, "h01")
    sd.exec("h01", ["systemctl", "start", "guardian-pre-market.service"], timeout=90)
    assert healthy(sd, "h01")
    log = sd.path("h01", f"{APP}/logs/pre_market.log").read_text()
    assert "restart uw-daemon: ok" in log and "outcome: healed" in log
    journals = [json.loads(p.read_text()) for p in sd.path("h01", f"{APP}/.guardian/state/journal").glob("*.json")]
    assert any(j["runner"] == "cron" and j["outcome"] == "healed" for j in journals)
    removed = deploy(remove=True)
    assert removed.code == 0 and set(outcomes(removed).values()) == {"removed"}, removed.out
    for host in ("h01", "h02"):
        assert _guardian_unit_files(sd, host) == []
        assert "0 loaded units listed" in systemctl(sd, host, "list-units", "--all", "--no-pager", "guardian-*")
        assert "0 unit files listed" in systemctl(sd, host, "list-unit-files", "--no-pager", "guardian-*")
    again = deploy(remove=True)
    assert set(outcomes(again).values()) == {"unchanged"}


def test_deploy_preflight_fails_for_a_unit_systemd_does_not_have(sd: Lab, tmp_path: Path) -> None:
    inventory = _timer_inventory(sd, tmp_path, services={"uw-daemon": {"name": "uw-flow"}})
    run = run_command("deploy", "h01", inventory=inventory, reports=tmp_path / "reports", dry_run=True)
    assert run.code == 2 and outcomes(run) == {"h01": "preflight-failed"}
    checks = {c["check"]: c for c in run.report.hosts[0].preflight}
    assert (
        checks["unit uw-flow"]["ok"] is False
        and "systemd has no unit uw-flow.service" in checks["unit uw-flow"]["detail"]
    )
    assert checks["unit trading-bot"]["ok"] is True and checks["scheduler systemd-timer"]["ok"] is True


def test_lab_down_leaves_no_namespace_mount_cgroup_or_process(tmp_path_factory: pytest.TempPathFactory) -> None:
    with own_lab(tmp_path_factory, "gw", 41, 2, managers=["systemd", "supervisor"]) as lab:
        recorded = [(r["init_pid"], r["netns"]) for r in lab._load()["hosts"]]
        workdir = str(lab.workdir)
    prefix, _ = lab_names("gw", 41)
    assert not [ns for ns in Path("/run/netns").glob(f"{prefix}-*")]
    assert workdir not in Path("/proc/self/mountinfo").read_text()
    assert all(
        not Path(f"/proc/{pid}").exists() or "systemd" not in Path(f"/proc/{pid}/comm").read_text()
        for pid, _ in recorded
    )
    unified = next(
        (line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines() if " - cgroup2 " in line),
        None,
    )
    if unified is not None:
        assert not list(Path(unified, CGROUP_PARENT).glob(f"{prefix}-h*"))
