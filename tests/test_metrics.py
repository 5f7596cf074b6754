"""The Prometheus textfile: parsed with prometheus_client's own parser, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from remediation.agent.metrics import METRICS_FILE, render_metrics, write_metrics
from remediation.agent.outcomes import OUTCOMES

RECORD = {
    "runner": "cron",
    "version": "0.1.0",
    "outcome": "healed",
    "duration": 7.25,
    "before": {"exit_code": 2},
    "after": {"exit_code": 0},
    "actions": [
        {"kind": "remove_lock", "target": "metadata.lock", "result": "ok"},
        {"kind": "restart", "target": "uw-daemon", "result": "ok"},
    ],
    "breakers": {"uw-daemon": {"open": False, "recent": [1.0, 2.0]}, "trading-bot": {"open": True, "recent": [1, 2, 3]}},
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_a_run_record_becomes_valid_exposition_text() -> None:
    got = samples(render_metrics(RECORD, now=1_764_684_900.0, bundle="abc123"))
    assert got[("guardian_last_run_timestamp_seconds", (("runner", "cron"),))] == 1_764_684_900.0
    assert got[("guardian_last_run_duration_seconds", (("runner", "cron"),))] == 7.25
    outcomes = {labels[0][1]: v for (name, labels), v in got.items() if name == "guardian_last_run_outcome"}
    assert set(outcomes) == set(OUTCOMES) and outcomes["healed"] == 1 and sum(outcomes.values()) == 1
    assert got[("guardian_check_exit_code", (("check", "before"), ("runner", "cron")))] == 2
    assert got[("guardian_check_exit_code", (("check", "after"), ("runner", "cron")))] == 0
    assert got[("guardian_last_run_restarts", (("runner", "cron"), ("service", "uw-daemon")))] == 1
    assert got[("guardian_breaker_open", (("service", "trading-bot"),))] == 1
    assert got[("guardian_restart_budget_used", (("service", "uw-daemon"),))] == 2
    assert got[("guardian_hold", ())] == 0
    assert got[("guardian_info", (("bundle", "abc123"), ("version", "0.1.0")))] == 1


def test_hostile_label_values_are_escaped() -> None:
    record = {**RECORD, "version": 'x"\n\\y', "actions": []}
    got = samples(render_metrics(record, now=1.0))
    assert ("guardian_info", (("bundle", "dev"), ("version", 'x"\n\\y'))) in got


def test_written_atomically_and_errors_are_values(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    assert write_metrics(str(directory), render_metrics(RECORD, now=1.0)) is None
    assert (directory / METRICS_FILE).read_text().startswith("# HELP guardian_info")
    assert sorted(os.listdir(directory)) == [METRICS_FILE]  # no temporary file left behind
    blocker = tmp_path / "file"
    blocker.write_text("")
    problem = write_metrics(str(blocker / "sub"), "x")
    assert problem is not None and "metrics not written" in problem
