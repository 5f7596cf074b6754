"""A report with every field of every record set: shared by the schema and the view-model tests."""

from __future__ import annotations

from remediation.reporting.report import CollectedFile, HostReport, RunReport

SHA = "ab" * 32


def full_host() -> HostReport:
    """A host with every field set, each to something the views must show (MARKERS)."""
    t0 = 1_767_225_600.0
    return HostReport(
        "h-marker",
        "198.51.100.7",
        "ssh",
        outcome="still-unhealthy",
        reason="reason-marker",
        started_at="2026-01-02T03:04:05Z",
        duration=12.3,
        phases=[{"phase": "check", "t": t0}, {"phase": "recover", "t": t0 + 1}, {"phase": "phase-marker", "t": t0 + 9}],
        before={
            "exit_code": 2,
            "state": "unhealthy",
            "reason": "exit code 2",
            "tail": "before-tail-marker\n",
            "output_bytes": 19,
            "matches": [{"signature": "uw_socket", "pattern": "tail", "line_no": 1, "line": "before-tail-marker"}],
        },
        after={"exit_code": 2, "state": "unhealthy", "reason": "exit code 2", "tail": "after-tail-marker\n"},
        plan={"state": "unhealthy", "recover": True, "notes": ["note-marker"], "actions": []},
        actions=[
            {
                "index": 0,
                "kind": "restart",
                "target": "svc-marker",
                "reason": "uw_socket matched line 1",
                "result": "failed",
                "detail": "did not come back",
                "t": t0 + 1.5,
                "command": {"argv": ["supervisorctl", "restart", "svc-marker"]},
            }
        ],
        locks=[{"name": "lock-marker.lock", "stale": True, "reason": "pid 9 is dead", "pid": 9}],
        files=[CollectedFile("file-marker.log", "h-marker/file-marker.log", 10, 10, SHA, False)],
        busy_holder={"runner": "cron", "pid": 4242, "run_id": "holder-marker", "since": t0, "since_iso": "x"},
        runner="cron-runner",
        remote_version="9.9.9",
        runner_code="installed",
        runner_cpu=0.0731,
        warnings=["warning-marker"],
        preflight=[{"check": "preflight-marker", "ok": False, "detail": "missing", "fatal": False}],
        changes=[{"item": "change-marker", "action": "update", "detail": "", "diff": "+a line\n-old line"}],
        cron_runs=[
            {
                "run_id": "cron-run-marker",
                "outcome": "running",
                "reason": None,
                "started_at": "2026-01-02T01:00:00Z",
                "check": "pre_market_health_check.py",
                "actions": [{"kind": "restart", "target": "uw-daemon", "result": "started", "detail": None}],
            }
        ],
        guards={
            "breakers": {
                "svc-marker": {
                    "service": "svc-marker",
                    "open": False,
                    "recent": [t0],
                    "max_restarts": 3,
                    "window": 1800.0,
                    "description": "1 restart(s) of svc-marker in the last 30 min (budget 3): 00:00:00 UTC",
                }
            },
            "hold": {"until": t0 + 3600, "until_iso": "2026-01-01T01:00:00Z", "reason": "hold-marker", "by": "ops"},
        },
        self_heal={
            "deployed": True,
            "tz": "UTC",
            "clock_skew": 0.5,
            "last_cron_run": {"run_id": "cron-run-marker", "started_at": "2026-01-02T01:00:00Z", "outcome": "running"},
            "version": "9.9.9",
            "bundle": "bundle-marker",
            "controller_bundle": "newer-bundle",
            "scheduler": "cron",
            "next_due": "2026-01-05T14:15:00Z",
            "silent": [
                {
                    "schedule": "pre_market",
                    "expression": "15 14 * * 1-5",
                    "last_run": "2026-01-02T01:00:00Z",
                    "expected": ["2026-01-02T14:15:00Z"],
                    "message": "self-heal silent since silence-marker (expected at 2026-01-02T14:15:00Z)",
                }
            ],
        },
        deferred=[
            {
                "service": "svc-marker",
                "kind": "unsafe",
                "reason": "safe_to_restart said no: exit 1: deferred-marker orders in flight",
                "retry_at": "2026-01-05T14:15:00Z",
                "retry": "the scheduled run at 2026-01-05T14:15:00Z",
            }
        ],
        verify={
            "passes_wanted": 2,
            "window": 5.0,
            "passes": [{"pass": 1, "at": "2026-01-02T03:04:10Z", "exit_code": 0, "state": "healthy"}],
            "stable": False,
        },
        unstable=[{"service": "svc-marker", "problem": "unstable-marker exited 4 s after restart", "down": True}],
    )


def full_run(*hosts: HostReport) -> RunReport:
    return RunReport(
        "20260101T000000Z-abcd",
        "premarket",
        "2026-01-01T00:00:00Z",
        hosts=list(hosts) or [full_host()],
        finished_at="2026-01-01T00:00:13Z",
        complete=True,
        exit_code=2,
        incidents=[
            {"signature": "uw_socket", "hosts": ["a", "b"], "selected": 3, "threshold_percent": 50.0, "forced": False}
        ],
    )


def extra_keys_host() -> HostReport:
    """``full_host`` with keys no version knows and the results of an interrupted run."""
    host = full_host()
    host.actions = [
        {**host.actions[0], "result": "interrupted", "surprise": {"nested": [1, 2]}},
        {"kind": "alert", "target": "alpaca_sip", "reason": "sip", "result": "started", "t": 1_767_225_602.0},
    ]
    host.before = {**(host.before or {}), "from_the_future": True}
    return host
