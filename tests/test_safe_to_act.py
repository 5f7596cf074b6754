"""Safe to act, as pure decisions and real hook processes: the restart gate (quiet window,
safe_to_restart, the overrides), the plan it shapes, the outcomes (deferred, never healed when
not stable), the exit code, the alerts, and hooks run as real programs with their timeout."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from remediation.agent.outcomes import EXIT_ATTENTION, EXIT_DEFERRED, EXIT_OK, EXIT_UNREACHABLE, exit_code_for
from remediation.agent.plan import CheckState, decide, final_outcome, restart_gate
from remediation.agent.safety import Hook, run_hook, safety_of
from remediation.agent.signatures import load_signatures
from remediation.agent.trust import root_reads, untrusted
from remediation.reporting.alerts import alert_messages
from remediation.reporting.report import HostReport, RunReport
from remediation.rules import load_rules, rules_data

QUIET = {
    "service": "trading-bot",
    "quiet": True,
    "until": "2026-12-02T21:00:00Z",
    "problem": "",
    "window": {
        "name": "market",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:30",
        "end": "16:00",
        "tz": "America/New_York",
        "services": ["trading-bot"],
    },
}
OPEN = {**QUIET, "quiet": False, "until": None}
NO = {
    "hook": "safe_to_restart",
    "exit_code": 1,
    "timed_out": False,
    "error": "",
    "ok": False,
    "output": "3 orders in flight\n",
}
GO = {**NO, "exit_code": 0, "ok": True, "output": "no orders in flight\n"}
DEGRADED, UNHEALTHY, HEALTHY = (
    CheckState("degraded", "exit code 1"),
    CheckState("unhealthy", "exit code 2"),
    CheckState("healthy", "exit code 0"),
)


def test_a_quiet_window_defers_unless_forced_and_safe_to_restart_unless_forced_unsafe() -> None:
    window = restart_gate("trading-bot", QUIET, None, override_windows=False, override_unsafe=False)
    assert window.deferred and window.kind == "quiet-window" and "--force" in window.reason
    assert "market: 09:30-16:00 America/New_York" in window.reason
    forced = restart_gate("trading-bot", QUIET, GO, override_windows=True, override_unsafe=False)
    assert not forced.deferred and any("overridden by --force" in n for n in forced.notes)
    unsafe = restart_gate("trading-bot", OPEN, NO, override_windows=True, override_unsafe=False)
    assert unsafe.deferred and unsafe.kind == "unsafe" and "3 orders in flight" in unsafe.reason
    overridden = restart_gate("trading-bot", OPEN, NO, override_windows=False, override_unsafe=True)
    assert not overridden.deferred and any("--force-unsafe" in n for n in overridden.notes)
    both = restart_gate("trading-bot", QUIET, NO, override_windows=False, override_unsafe=False)
    assert both.kind == "quiet-window" and "3 orders in flight" in both.reason  # every reason is shown
    timeout = restart_gate(
        "trading-bot",
        None,
        {**NO, "exit_code": None, "timed_out": True, "output": ""},
        override_windows=False,
        override_unsafe=False,
    )
    assert timeout.deferred and "no answer within its timeout" in timeout.reason
    unknown_zone = restart_gate(
        "trading-bot",
        {**QUIET, "until": None, "problem": "unknown time zone"},
        None,
        override_windows=False,
        override_unsafe=False,
    )
    assert unknown_zone.deferred and "cannot be judged" in unknown_zone.reason


def _plan(gates: dict[str, object]) -> list[tuple[str, str]]:
    from remediation.agent.signatures import SignatureMatch

    signatures = load_signatures(rules_data(load_rules([])))
    match = SignatureMatch("alpaca_sip_delay", "SIP.*delay", 2, "[WARN] Alpaca SIP delay")
    plan = decide(DEGRADED, [match], [], signatures, ["uw-daemon", "trading-bot"], settle_seconds=1, gates=gates)  # type: ignore[arg-type]
    return [(a.kind, a.target) for a in plan.actions]


def test_the_plan_turns_a_deferred_restart_into_a_defer_step_and_keeps_the_alert() -> None:
    deferred = restart_gate("trading-bot", OPEN, NO, override_windows=False, override_unsafe=False)
    assert _plan({"trading-bot": deferred}) == [("alert", "alpaca_sip"), ("defer", "trading-bot")]
    allowed = restart_gate("trading-bot", OPEN, GO, override_windows=False, override_unsafe=False)
    assert _plan({"trading-bot": allowed}) == [("alert", "alpaca_sip"), ("restart", "trading-bot")]
    assert _plan({}) == [("alert", "alpaca_sip"), ("restart", "trading-bot")]


def test_outcomes_deferred_and_never_healed_unless_stable() -> None:
    assert final_outcome(DEGRADED, None, dry_run=False, deferred=True) == "deferred"
    assert final_outcome(DEGRADED, DEGRADED, dry_run=False, deferred=True) == "deferred"
    assert final_outcome(DEGRADED, HEALTHY, dry_run=False, deferred=True) == "healed"  # fixed anyway
    assert final_outcome(DEGRADED, None, dry_run=True, deferred=True) == "degraded"  # a dry run says what it saw
    assert final_outcome(UNHEALTHY, HEALTHY, dry_run=False) == "healed"
    died = ["uw-daemon exited 6 s after restart"]
    assert final_outcome(UNHEALTHY, HEALTHY, dry_run=False, unstable=died, service_down=True) == "still-unhealthy"
    assert final_outcome(DEGRADED, HEALTHY, dry_run=False, unstable=died, service_down=True) == "still-unhealthy"
    hook = ["post_restart for trading-bot failed"]
    assert final_outcome(DEGRADED, HEALTHY, dry_run=False, unstable=hook) == "still-degraded"
    assert final_outcome(DEGRADED, DEGRADED, dry_run=False, deferred=True, unstable=hook) == "still-degraded"


def test_exit_code_six_only_when_deferral_is_all_there_is() -> None:
    assert exit_code_for(["healed", "deferred"]) == EXIT_DEFERRED
    assert exit_code_for(["deferred", "still-unhealthy"]) == EXIT_ATTENTION
    assert exit_code_for(["deferred", "unreachable"]) == EXIT_UNREACHABLE
    assert exit_code_for(["healthy"]) == EXIT_OK


def test_deferred_and_unstable_hosts_raise_a_webhook_alert() -> None:
    report = RunReport(run_id="r1", command="premarket", started_at="now")
    report.hosts.append(
        HostReport(
            "d1",
            "10.0.0.1",
            "ssh",
            outcome="deferred",
            deferred=[
                {
                    "service": "trading-bot",
                    "kind": "unsafe",
                    "reason": "3 orders in flight",
                    "retry_at": None,
                    "retry": "the next premarket or recover run",
                }
            ],
        )
    )
    report.hosts.append(
        HostReport(
            "d2",
            "10.0.0.2",
            "ssh",
            outcome="still-unhealthy",
            unstable=[{"service": "uw-daemon", "problem": "uw-daemon exited 6 s after restart", "down": True}],
        )
    )
    messages = alert_messages(report)
    assert any("d1" in m and "3 orders in flight" in m and "next try" in m for m in messages), messages
    assert any("d2" in m and "exited 6 s after restart" in m for m in messages), messages


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / "hooks" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"import sys, time\n{body}\n")
    return path


def test_hooks_run_as_programs_from_the_app_dir_with_their_timeout(tmp_path: Path) -> None:
    _script(
        tmp_path, "say.py", "print('cwd ok' if __import__('os').getcwd() == sys.argv[1] else 'wrong cwd'); sys.exit(0)"
    )
    ok = run_hook(
        Hook("pre_restart", (sys.executable, "hooks/say.py", str(tmp_path)), 5), app_dir=str(tmp_path), identity=None
    )
    assert ok.ok and ok.output.strip() == "cwd ok"
    _script(tmp_path, "no.py", "print('3 orders in flight'); sys.exit(1)")
    no = run_hook(Hook("safe_to_restart", (sys.executable, "hooks/no.py"), 5), app_dir=str(tmp_path), identity=None)
    assert not no.ok and no.why() == "exit 1: 3 orders in flight"
    _script(tmp_path, "slow.py", "print('thinking', flush=True); time.sleep(30)")
    slow = run_hook(
        Hook("safe_to_restart", (sys.executable, "hooks/slow.py"), 0.5), app_dir=str(tmp_path), identity=None
    )
    assert slow.timed_out and not slow.ok and slow.duration < 5
    missing = run_hook(Hook("pre_restart", ("hooks/nothing-here",), 5), app_dir=str(tmp_path), identity=None)
    assert not missing.ok and "cannot start pre_restart" in missing.error


def test_hook_files_are_trusted_like_the_check_when_they_run_with_root_s_privilege(tmp_path: Path) -> None:
    hook = _script(tmp_path, "pre.py", "sys.exit(0)")
    safety = safety_of("trading-bot", {"pre_restart": {"run": ["python3", "hooks/pre.py"], "timeout": 5}})
    files = [f for h in safety.hooks.values() for f in h.files(str(tmp_path))]
    assert files == [str(hook)]
    guardian = tmp_path / ".guardian"
    guardian.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o755)
    hook.chmod(0o666)  # anyone could change what root would run
    problems = untrusted(root_reads(guardian_dir=str(guardian), programs=files), owners=(os.getuid(),))
    assert any(str(hook) in p.describe() for p in problems)
    hook.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    assert not untrusted(root_reads(guardian_dir=str(guardian), programs=files), owners=(os.getuid(),))


def test_force_unsafe_asks_first_and_a_run_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    from remediation.errors import GuardianError
    from remediation.inventory import load_inventory
    from remediation.jobs import FleetRequest, confirm_unsafe

    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        "vars:\n  services:\n    trading-bot: {safe_to_restart: [python3, hooks/safe.py]}\n"
        "groups:\n  prod:\n    hosts:\n      d1: {address: 127.0.0.1}\n"
    )
    hosts = load_inventory([inventory]).select("d1")
    request = FleetRequest(hosts="d1", inventory=[inventory], force_unsafe=True)
    with pytest.raises(GuardianError, match=r"trading-bot.*safe_to_restart says no.*re-run with --yes"):
        confirm_unsafe(hosts, request, "recover")  # pytest's stdin is no terminal
    confirm_unsafe(hosts, FleetRequest(hosts="d1", force_unsafe=True, yes=True), "recover")
    confirm_unsafe(hosts, FleetRequest(hosts="d1", force_unsafe=True, dry_run=True), "recover")
    confirm_unsafe(hosts, FleetRequest(hosts="d1"), "recover")
