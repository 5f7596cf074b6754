"""Report data round-trips through report.json; renderers show it and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remediation.errors import ReportError
from remediation.reporting.render import host_view, recap_table, run_view, to_text
from remediation.reporting.report import CollectedFile, HostReport, ReportStore, RunReport


def sample() -> RunReport:
    healed = HostReport(
        "h01",
        "198.18.1.11",
        "ssh",
        outcome="healed",
        duration=4.2,
        phases=[{"phase": "check", "t": 1000.0}, {"phase": "verify", "t": 1005.0}],
        before={
            "exit_code": 2,
            "state": "unhealthy",
            "tail": "UW fail\x1b[31m\n",
            "matches": [{"signature": "uw_socket", "pattern": "UW.*fail", "line_no": 1, "line": "UW fail"}],
        },
        after={"exit_code": 0, "state": "healthy", "tail": "ok\n"},
        actions=[
            {
                "kind": "restart",
                "target": "uw-daemon",
                "result": "ok",
                "detail": "pid 1 -> 2",
                "reason": "uw_socket: line 1",
                "t": 1001.0,
            }
        ],
        files=[CollectedFile("guardian.log", "h01/guardian.log", 10, 10, "ab" * 32, False)],
    )
    down = HostReport("h02", "198.18.1.12", "ssh", outcome="unreachable", reason="cannot connect: Connection refused")
    return RunReport(
        run_id="20260101T000000Z-abcd",
        command="premarket",
        started_at="2026-01-01T00:00:00Z",
        hosts=[healed, down],
        complete=True,
        exit_code=4,
    )


def test_round_trip_through_report_json(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    report = sample()
    store.save(report, summary=to_text(run_view(report)))
    loaded = store.load()
    assert loaded.to_dict() == report.to_dict()
    data = json.loads((tmp_path / report.run_id / "report.json").read_text())
    assert data["outcomes"] == {"h01": "healed", "h02": "unreachable"}
    assert data["hosts"][0]["matched_signatures"] == ["uw_socket"]
    assert "unreachable" in (tmp_path / report.run_id / "summary.txt").read_text()


def test_recap_shows_every_host_with_outcome_and_reason() -> None:
    text = to_text(run_view(sample()), width=150)
    assert "h01" in text and "healed" in text and "restart uw-daemon ✓" in text
    assert "h02" in text and "unreachable" in text and "Connection refused" in text
    assert "exit code 4" in text
    table_text = to_text(recap_table(sample()), width=150)
    assert "unhealthy (2)" in table_text and "healthy (0)" in table_text


def test_host_view_timeline_in_order_and_control_chars_escaped() -> None:
    report = sample()
    text = to_text(host_view(report, report.hosts[0]), width=150)
    assert (
        text.index("phase check")
        < text.index("check before")
        < text.index("restart uw-daemon")
        < text.index("phase verify")
        < text.index("check after")
    )
    assert "\x1b" not in text and "\\x1b[31m" in text
    assert "h01/guardian.log" in text


def test_missing_run_and_unsafe_names_are_clear_errors(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    with pytest.raises(ReportError, match="no reports"):
        store.load()
    store.save(sample())
    with pytest.raises(ReportError, match="no report for run 'nope'"):
        store.load("nope")
    for name in ("../escape", "a/b", ".hidden", "x\ny", ""):
        with pytest.raises(ReportError):
            store.save_file("20260101T000000Z-abcd", "h01", name, b"x")
    assert not (tmp_path / "escape").exists()
