"""What the terminal and HTML views show: timeline order, recap reasons, long output, piped tables."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from remediation import jobs
from remediation.reporting.html import render_run_html
from remediation.reporting.render import host_view, run_view, to_text
from remediation.reporting.report import CollectedFile, HostReport, ReportStore, RunReport


def _run(*hosts: HostReport) -> RunReport:
    return RunReport("20260101T000000Z-abcd", "premarket", "2026-01-01T00:00:00Z", hosts=list(hosts), complete=True)


def skewed_host(skew: float) -> HostReport:
    """Phases are stamped by the controller when it reads them, actions by the host's clock:
    the restart inside "recover" can carry an earlier (or equal) time than the phase itself."""
    t0 = 1_767_225_600.0
    action: dict[str, Any] = {"result": "ok", "detail": "", "reason": "uw_socket: line 1"}
    return HostReport(
        "h01",
        "198.18.1.11",
        "ssh",
        outcome="healed",
        phases=[
            {"phase": "check", "t": t0},
            {"phase": "recover", "t": t0 + 2.005},
            {"phase": "settle", "t": t0 + 2.5},
            {"phase": "verify", "t": t0 + 7.5},
            {"phase": "collect", "t": t0 + 8.0},
        ],
        before={"exit_code": 2, "state": "unhealthy", "tail": "UW fail\n", "matches": []},
        after={"exit_code": 0, "state": "healthy", "tail": "ok\n"},
        actions=[
            {**action, "kind": "remove_lock", "target": "uw.lock", "t": t0 + 2.005 + skew},
            {**action, "kind": "restart", "target": "uw-daemon", "t": t0 + 2.006 + skew},
        ],
    )


def _order(text: str, *needles: str) -> list[int]:
    return [text.index(n) for n in needles]


def test_a_phase_is_listed_before_the_actions_inside_it_in_both_views() -> None:
    for skew in (-0.004, 0.0, -3.0):  # receipt latency, equal stamps, a host clock 3 s behind
        host = skewed_host(skew)
        text = to_text(host_view(_run(host), host), width=160)
        positions = _order(
            text,
            "phase check",
            "check before",
            "phase recover",
            "remove_lock uw.lock",
            "restart uw-daemon",
            "phase settle",
            "phase verify",
            "check after",
            "phase collect",
        )
        assert positions == sorted(positions), (skew, text)
        page = render_run_html(_run(host))
        section = page[page.index('id="host-h01"') :]
        positions = _order(
            section,
            "</span> check<",
            "<b>check before</b>",
            "</span> recover<",
            "<code>uw.lock</code>",
            "<code>uw-daemon</code>",
            "</span> settle<",
            "</span> verify<",
            "<b>check after</b>",
        )
        assert positions == sorted(positions), skew


def breaker_host() -> HostReport:
    """A SIP host whose restart of trading-bot the breaker blocked (3 restarts in 30 min)."""
    breaker = {"service": "trading-bot", "open": True, "recent": [1.0, 2.0, 3.0], "max_restarts": 3, "window": 1800.0}
    return HostReport(
        "h02",
        "198.18.1.12",
        "ssh",
        outcome="still-degraded",
        reason="after recovery the check still gives exit code 1",
        before={"exit_code": 1, "state": "degraded", "tail": "SIP delay\n", "matches": []},
        after={"exit_code": 1, "state": "degraded", "tail": "SIP delay\n"},
        actions=[
            {"kind": "alert", "target": "alpaca_sip", "result": "ok", "detail": "wrote x.txt", "t": 1.0},
            {"kind": "breaker_open", "target": "trading-bot", "result": "blocked", "breaker": breaker, "t": 2.0},
        ],
    )


def test_recap_says_what_was_healed_and_names_the_breaker() -> None:
    report = _run(skewed_host(0.0), breaker_host())
    healed = "h01: removed stale lock uw.lock; restarted uw-daemon; re-check healthy"
    blocked = (
        "h02: after recovery the check still gives exit code 1; "
        "restart of trading-bot blocked: breaker open (3 restarts in 1800 s)"
    )
    text = to_text(run_view(report), width=200)
    assert healed in text and blocked in text, text
    page = render_run_html(report)
    recap = page[page.index('<table class="recap">') : page.index("</table>")]
    assert healed.split(": ", 1)[1] in recap and blocked.split(": ", 1)[1] in recap


FAIL_LINE = "[FAIL] UW websocket: connection_error after 3 retries"


def flooded_host(*, filler_chars: int, filler_lines: int, fail_at_end: bool) -> HostReport:
    """48 MB of check output: the host kept only its last 64 KiB, and matched the failing line."""
    filler = [f"{i:06d} " + "x" * filler_chars for i in range(filler_lines)]
    lines = [*filler, FAIL_LINE] if fail_at_end else filler
    line_no = 480_000 if fail_at_end else 3
    return HostReport(
        "h01",
        "198.18.1.11",
        "ssh",
        outcome="still-unhealthy",
        reason="after recovery the check still gives exit code 2",
        before={
            "exit_code": 2,
            "state": "unhealthy",
            "output_bytes": 48_000_000,
            "tail": "partial line\n" + "\n".join(lines) + "\n",
            "matches": [
                {"signature": "uw_socket", "pattern": "connection_error", "line_no": line_no, "line": FAIL_LINE}
            ],
        },
    )


def test_host_view_shows_matched_lines_first_then_a_bounded_tail() -> None:
    # long filler lines (the ~1,700 wrapped lines of the issue) with the failure at the very end
    host = flooded_host(filler_chars=8000, filler_lines=8, fail_at_end=True)
    text = to_text(host_view(_run(host), host), width=100)
    assert re.search(r"480000 │ uw_socket /connection_error/ │ \[FAIL\]", text), text[:3000]
    assert text.index(FAIL_LINE) < text.index("│ 000000"), text[:3000]
    assert len(text.splitlines()) < 150, len(text.splitlines())
    assert "characters not shown" in text
    # many short filler lines, the failure early: it is no longer in the tail at all
    host = flooded_host(filler_chars=60, filler_lines=900, fail_at_end=False)
    text = to_text(host_view(_run(host), host), width=100)
    assert re.search(r" 3 │ uw_socket /connection_error/ │ \[FAIL\]", text), text[:3000]
    assert "last 40 of 900 lines" in text and "860 earlier lines not shown" in text
    assert "48,000,000 bytes" in text
    assert "000899 xxx" in text and "000859 xxx" not in text
    assert len(text.splitlines()) < 120


def test_html_shows_matched_lines_before_the_tail_box() -> None:
    host = flooded_host(filler_chars=60, filler_lines=900, fail_at_end=False)
    page = render_run_html(_run(host))
    section = page[page.index('id="host-h01"') :]
    box = section.index('<pre class="tail"')
    assert section.index(FAIL_LINE) < box
    assert ">3</td>" in section[:box]  # the matched line's number
    assert "[860 earlier lines not shown]" in section and "last 40 of 900 lines" in section
    assert "000899 xxx" in section and "000859 xxx" not in section


SHA = "".join(f"{i:02x}" for i in range(32))  # 64 distinct hex digits
LONG_APP_DIR = "/srv/trading/" + "/".join(f"segment-{i:02d}" for i in range(12)) + "/stock-bot"


def piped_run() -> RunReport:
    host = HostReport(
        "droplet-with-a-long-name-07",
        "203.0.113.77",
        "ssh",
        outcome="still-unhealthy",
        reason="after recovery the check still gives exit code 2; failed: restart trading-bot",
        before={"exit_code": 2, "state": "unhealthy", "tail": "x\n", "matches": []},
        after={"exit_code": 2, "state": "unhealthy", "tail": "x\n"},
        actions=[
            {"kind": "remove_lock", "target": "metadata-with-a-long-name.lock", "result": "ok", "t": 1.0},
            {"kind": "restart", "target": "uw-daemon", "result": "ok", "t": 2.0},
            {"kind": "restart", "target": "trading-bot", "result": "failed", "t": 3.0},
        ],
        files=[CollectedFile("out.log", "droplet-with-a-long-name-07/guardian_pre_market_output.log", 1, 1, SHA, False)],
    )
    return _run(host)


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stdout piped, no terminal anywhere (cron, CI, `| tee` in a script), no COLUMNS."""
    monkeypatch.delenv("COLUMNS", raising=False)

    def no_tty(fd: int = 1) -> os.terminal_size:
        raise OSError("not a terminal")

    monkeypatch.setattr(os, "get_terminal_size", no_tty)


def test_piped_report_tables_are_complete(
    tmp_path: Path, no_terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ReportStore(tmp_path / "reports")
    report = piped_run()
    store.save(report)
    assert jobs.show_report(store.root) == 0
    assert jobs.show_report(store.root, host="droplet-with-a-long-name-07") == 0
    out = capsys.readouterr().out
    assert "…" not in out
    for whole in (
        "still-unhealthy",
        "droplet-with-a-long-name-07",
        "remove_lock metadata-with-a-long-name.lock ✓",
        "after recovery the check still gives exit code 2; failed: restart trading-bot",
        SHA,
        "droplet-with-a-long-name-07/guardian_pre_market_output.log",
    ):
        assert whole in out, (whole, out)


def test_piped_inventory_values_are_complete(
    tmp_path: Path, no_terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inv.yml"
    inventory.write_text(f"groups:\n  g:\n    hosts:\n      h01: {{address: 203.0.113.5, app_dir: {LONG_APP_DIR}}}\n")
    request = jobs.FleetRequest(hosts="h01", inventory=[inventory], ssh_config=None)
    assert jobs.show_inventory(request) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    assert LONG_APP_DIR in out and '"pidfile": "state/uw_flow_daemon.pid"' in out, out


def test_a_narrow_console_folds_cells_and_never_cuts_them() -> None:
    text = to_text(run_view(piped_run()), width=60) + to_text(host_view(piped_run(), piped_run().hosts[0]), width=60)
    assert "…" not in text
    assert "still-unhealthy" in text  # outcomes are never folded
    assert SHA[:16] in text and SHA[-16:] in text.replace("\n", " ")  # the whole digest, folded


def test_a_narrow_console_keeps_the_output_excerpt_whole() -> None:
    host = flooded_host(filler_chars=60, filler_lines=900, fail_at_end=False)
    text = to_text(host_view(_run(host), host), width=50)
    assert "…" not in text
    assert "48,000,000 bytes)" in text and "[860 earlier lines not shown]" in text


def test_both_views_show_the_exact_command_run_or_planned() -> None:
    """Managers yield commands; the report shows the argv that ran, and a dry run the one that would."""
    done = HostReport("h1", "198.18.1.11", "ssh", outcome="healed")
    done.actions = [
        {
            "index": 0,
            "kind": "restart",
            "target": "uw-daemon",
            "reason": "uw_socket: line 3 matched",
            "result": "ok",
            "command": {"argv": ["supervisorctl", "-c", "/etc/supervisor/my conf.conf", "restart", "uw-daemon"]},
        }
    ]
    planned = HostReport("h2", "198.18.1.12", "ssh", outcome="unhealthy")
    planned.plan = {
        "state": "unhealthy",
        "recover": True,
        "verify": True,
        "settle_seconds": 5,
        "notes": [],
        "actions": [
            {"kind": "restart", "target": "uw-daemon", "reason": "r", "command": {"signal": "SIGTERM", "pid": 4242}},
            {"kind": "restart", "target": "trading-bot", "reason": "r", "command_error": "no live pid in its pid file"},
        ],
    }
    run = RunReport(run_id="20260302T133001Z-aaaa", command="premarket", started_at="2026-03-02T13:30:01Z")
    run.hosts = [done, planned]
    shown = "supervisorctl -c '/etc/supervisor/my conf.conf' restart uw-daemon"
    assert shown in to_text(host_view(run, done), width=200)
    text = to_text(host_view(run, planned), width=200)
    assert "kill -TERM 4242" in text and "no command: no live pid in its pid file" in text
    page = render_run_html(run)
    assert "kill -TERM 4242" in page and "supervisorctl -c &#x27;/etc/supervisor/my conf.conf&#x27;" in page
