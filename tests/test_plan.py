"""The plan decision, without any host: pure data in, ordered actions with reasons out."""

from __future__ import annotations

import pytest

from remediation.agent.guards import active_hold, breaker_open
from remediation.agent.locks import LockInfo, LockVerdict, judge
from remediation.agent.outcomes import exit_code_for
from remediation.agent.plan import (
    Plan,
    PlannedAction,
    check_state,
    decide,
    final_outcome,
    outcome_reason,
)
from remediation.agent.signatures import classify
from remediation.execution.survey import BlastGuard, batches_for, host_decision, signature_verdicts
from remediation.rules import load_rules

SERVICES = ["trading-bot", "uw-daemon"]


def lock(
    name: str,
    *,
    pid: int | None,
    alive: bool,
    mtime: float = 1000.0,
    held: bool = False,
    started: float | None = None,
    kind: str = "file",
) -> LockInfo:
    return LockInfo(name, f"/app/state/{name}", kind, 5, mtime, 1, 1, f"{pid}\n", pid, alive, started, held)


def plan_for(output: str, exit_code: int, locks: list[LockVerdict] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    rules = load_rules()
    return decide(check_state(exit_code), classify(output, rules), locks or [], rules, SERVICES, settle_seconds=5, **kw)  # type: ignore[arg-type]


def test_healthy_does_nothing() -> None:
    plan = plan_for("[OK] all good", 0)
    assert not plan.recover and plan.actions == []


def test_unexpected_exit_code_and_timeout_do_not_recover() -> None:
    assert not plan_for("UW fail", 3).recover
    state = check_state(None, timed_out=True)
    assert state.state == "unexpected"
    assert not decide(state, [], [], load_rules(), SERVICES, settle_seconds=1).recover


def test_seed_order_locks_then_uw_then_alert_then_bot() -> None:
    stale = judge(lock("metadata.lock", pid=99999, alive=False), now=2000, max_age=3600)
    live = judge(lock("orders.lock", pid=42, alive=True, started=500.0), now=2000, max_age=3600)
    output = "Alpaca SIP delay 45s\nUW socket failure: connection_error\n"
    plan = plan_for(output, 2, [stale, live])
    assert [(a.kind, a.target) for a in plan.actions] == [
        ("remove_lock", "metadata.lock"),
        ("restart", "uw-daemon"),
        ("alert", "alpaca_sip"),
        ("restart", "trading-bot"),
    ]
    assert "recorded pid 99999 is not running" in plan.actions[0].reason
    assert "line 2 matched" in plan.actions[1].reason
    assert any("orders.lock kept" in n for n in plan.notes)
    assert plan.verify


def test_degraded_without_signature_still_clears_locks_and_verifies() -> None:
    stale = judge(lock("metadata.lock", pid=99999, alive=False), now=2000, max_age=3600)
    plan = plan_for("[WARN] stale lock state/metadata.lock held by dead pid 99999", 1, [stale])
    assert [(a.kind, a.target) for a in plan.actions] == [("remove_lock", "metadata.lock")]
    assert plan.verify


def test_unknown_service_is_noted_not_restarted() -> None:
    rules = load_rules()
    plan = decide(check_state(2), classify("UW fail", rules), [], rules, ["trading-bot"], settle_seconds=1)
    assert plan.actions == []
    assert any("does not define" in n for n in plan.notes)


def test_forced_recovery_with_only() -> None:
    stale = judge(lock("metadata.lock", pid=99999, alive=False), now=2000, max_age=3600)
    plan = plan_for("[OK]", 0, [stale], force=True, only=["uw_socket"])
    assert [(a.kind, a.target) for a in plan.actions] == [("restart", "uw-daemon")]
    plan = plan_for("[OK]", 0, [stale], force=True, only=["locks", "alpaca_sip_delay"])
    assert [(a.kind, a.target) for a in plan.actions] == [
        ("remove_lock", "metadata.lock"),
        ("alert", "alpaca_sip"),
        ("restart", "trading-bot"),
    ]


def test_suppressed_signature_is_noted_not_acted_on() -> None:
    plan = plan_for("UW socket fail\nSIP delay", 2, suppress={"uw_socket": "common-cause incident"})
    assert [(a.kind, a.target) for a in plan.actions] == [("alert", "alpaca_sip"), ("restart", "trading-bot")]
    assert any("uw_socket: actions suppressed: common-cause incident" in n for n in plan.notes)


def test_spent_restart_budget_blocks_the_restart() -> None:
    spent = breaker_open("uw-daemon", [100.0, 200.0, 300.0], now=400.0, max_restarts=3, window=1800)
    assert spent.open and spent.recent == [100.0, 200.0, 300.0]
    plan = plan_for("UW socket fail", 2, breakers={"uw-daemon": spent})
    assert [(a.kind, a.target) for a in plan.actions] == [("breaker_open", "uw-daemon")]
    assert "restart budget spent: 3 restart(s) of uw-daemon" in plan.actions[0].reason
    aged = breaker_open("uw-daemon", [100.0, 200.0, 300.0], now=2050.0, max_restarts=3, window=1800)
    assert not aged.open and aged.recent == [300.0]  # the window closes the breaker again


def test_blast_radius_verdicts_decide_early() -> None:
    guard = BlastGuard(percent=50, min_hosts=4)
    # 5 of 6 hosts: incident as soon as 4 are known (4/6 > 50%).
    survey: dict[str, list[str] | None] = {
        "h1": ["uw"],
        "h2": ["uw"],
        "h3": ["uw"],
        "h4": ["uw"],
        "h5": None,
        "h6": None,
    }
    assert signature_verdicts(survey, guard) == {"uw": "incident"}
    # 1 known of 6, 1 unknown: at most 2/6 <= 50%: fine, no need to wait for the hanging host.
    survey = {"h1": ["uw"], "h2": [], "h3": [], "h4": [], "h5": [], "h6": None}
    assert signature_verdicts(survey, guard) == {"uw": "ok"}
    # 3 known of 6 with 1 unknown: could still cross: undecided.
    survey = {"h1": ["uw"], "h2": ["uw"], "h3": ["uw"], "h4": [], "h5": [], "h6": None}
    assert signature_verdicts(survey, guard) == {"uw": None}
    assert host_decision(["uw"], {"uw": None}) == (False, [])
    # Small selections never count as incidents.
    assert signature_verdicts({"h1": ["uw"], "h2": ["uw"]}, guard) == {"uw": "ok"}


def test_batches() -> None:
    names = [f"h{i}" for i in range(1, 7)]
    assert batches_for(names, "2") == [["h1", "h2"], ["h3", "h4"], ["h5", "h6"]]
    assert batches_for(names, "25%") == [["h1", "h2"], ["h3", "h4"], ["h5", "h6"]]
    assert batches_for(names, None) == [names]
    with pytest.raises(ValueError):
        batches_for(names, "lots")


def test_holds_expire() -> None:
    assert active_hold({"until": 200.0, "reason": "upgrade"}, now=100.0) is not None
    assert active_hold({"until": 200.0, "reason": "upgrade"}, now=201.0) is None
    assert active_hold({"reason": "broken file"}, now=1.0) is None


def test_lock_verdicts() -> None:
    now = 10_000.0
    assert judge(lock("a.lock", pid=5, alive=False), now=now, max_age=60).stale
    assert not judge(lock("a.lock", pid=5, alive=True, started=10.0), now=now, max_age=60).stale
    reused = judge(lock("a.lock", pid=5, alive=True, mtime=1000.0, started=5000.0), now=now, max_age=60)
    assert reused.stale and "reused" in reused.reason
    assert not judge(lock("a.lock", pid=5, alive=False, held=True), now=now, max_age=60).stale
    assert not judge(lock("a.lock", pid=None, alive=False, mtime=now - 10), now=now, max_age=60).stale
    assert judge(lock("a.lock", pid=None, alive=False, mtime=now - 100), now=now, max_age=60).stale
    assert not judge(lock("a.lock", pid=5, alive=False, kind="symlink"), now=now, max_age=60).stale


def test_outcomes_and_exit_codes() -> None:
    assert final_outcome(check_state(2), check_state(0), dry_run=False) == "healed"
    assert final_outcome(check_state(1), check_state(1), dry_run=False) == "still-degraded"
    assert final_outcome(check_state(2), check_state(2), dry_run=False) == "still-unhealthy"
    assert final_outcome(check_state(2), None, dry_run=True) == "unhealthy"
    assert final_outcome(check_state(0), None, dry_run=False) == "healthy"
    assert exit_code_for(["healthy", "healed"]) == 0
    assert exit_code_for(["healthy", "still-degraded"]) == 2
    assert exit_code_for(["still-degraded", "unreachable"]) == 4
    assert exit_code_for(["host-key-rejected"]) == 4


def test_a_host_that_stays_broken_says_why() -> None:
    restart = PlannedAction("restart", "uw-daemon", "signature uw_socket")
    plan = Plan("unhealthy", True, [restart], 5.0, [])
    assert outcome_reason("still-unhealthy", check_state(2), plan, ["restart uw-daemon"]) == (
        "after recovery the check still gives exit code 2; failed: restart uw-daemon"
    )
    assert outcome_reason("still-degraded", check_state(1), plan) == "after recovery the check still gives exit code 1"
    assert outcome_reason("healed", check_state(0), plan) == ""
    idle = Plan("unexpected", False, [], 5.0, ["no recovery: the health check did not finish before its timeout"])
    assert outcome_reason("unexpected", None, idle).startswith("no recovery: the health check did not finish")


def test_an_incident_that_leaves_nothing_to_do_neither_waits_nor_rechecks() -> None:
    """Every action held back by the blast-radius guard: nothing changes, so no settle and no
    re-check; the host keeps what its check said, with the incident as the reason."""
    plan = plan_for("UW socket fail", 2, suppress={"uw_socket": "common-cause incident on 5 of 6 hosts"})
    assert not plan.recover and plan.actions == []
    assert plan.held_back
    assert final_outcome(check_state(2), None, dry_run=False, held_back=True) == "still-unhealthy"
    assert outcome_reason("still-unhealthy", None, plan) == (
        "uw_socket: actions suppressed: common-cause incident on 5 of 6 hosts"
    )
    # A stale lock still gets cleared (and verified) while the signature's restart is held back.
    stale = judge(lock("metadata.lock", pid=99999, alive=False), now=2000, max_age=3600)
    with_lock = plan_for("UW socket fail", 2, [stale], suppress={"uw_socket": "incident"})
    assert with_lock.recover and [a.kind for a in with_lock.actions] == ["remove_lock"]


def test_a_host_still_broken_names_what_guardian_left_alone() -> None:
    kept = LockVerdict(lock("evil.lock", pid=None, alive=False, kind="symlink"), False, "a symlink: never followed")
    plan = plan_for("nothing known here", 1, [kept])
    reason = outcome_reason("still-degraded", check_state(1), plan)
    assert reason.startswith("after recovery the check still gives exit code 1; left alone: ")
    assert "lock evil.lock kept: a symlink: never followed" in reason
    assert "no known failure signature" not in reason
