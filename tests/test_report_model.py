"""One view model for the terminal and the HTML page: every field of a host's report reaches
both, and both give a run the same recap, timeline, dry-run plan and exit-code legend."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest
from report_samples import extra_keys_host, full_run

from remediation.agent.outcomes import EXIT_CODES, EXIT_USAGE
from remediation.reporting.html import render_run_html
from remediation.reporting.render import host_view, run_view, to_text
from remediation.reporting.report import HostReport
from remediation.reporting.views import host_page
from remediation.reporting.views.labels import EXIT_CODES_HELP, plain

#: A marker per HostReport field: each must be shown by both views. A new field fails this test
#: until it has a marker here and a place in the view model (remediation/reporting/views/).
MARKERS = {
    "host": "h-marker",
    "address": "198.51.100.7",
    "transport": "ssh",
    "outcome": "still-unhealthy",
    "reason": "reason-marker",
    "started_at": "2026-01-02T03:04:05Z",
    "duration": "12.3s",
    "phases": "phase-marker",
    "before": "before-tail-marker",
    "after": "after-tail-marker",
    "plan": "note-marker",
    "actions": "svc-marker",
    "locks": "lock-marker.lock",
    "files": "file-marker.log",
    "busy_holder": "run holder-marker",
    "runner": "cron-runner",
    "remote_version": "agent 9.9.9",
    "runner_code": "installed code",
    "runner_cpu": "0.07 CPU-s on the host",
    "warnings": "warning-marker",
    "preflight": "preflight-marker",
    "changes": "change-marker",
    "cron_runs": "cron-run-marker",
    "guards": "hold-marker",
    "self_heal": "silence-marker",
    "deferred": "deferred-marker orders in flight",
    "verify": "1/2 passing check(s) in a row over 5 s",
    "unstable": "unstable-marker exited 4 s after restart",
}


def page_text(page: str) -> str:
    """What a reader of the page sees: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_exit_codes_help_comes_from_the_outcome_vocabulary() -> None:
    report = full_run()
    terminal, page = to_text(run_view(report), width=400), html.unescape(render_run_html(report))
    for code, meaning in EXIT_CODES.items():
        if code == EXIT_USAGE:  # a usage error writes no report
            continue
        assert f"{code}: {meaning}" in EXIT_CODES_HELP
        assert f"{code}: {meaning}" in terminal and f"{code}: {meaning}" in page


def test_every_host_field_reaches_both_views() -> None:
    assert set(MARKERS) == {f.name for f in dataclasses.fields(HostReport)}
    report = full_run()
    host = report.hosts[0]
    terminal = to_text(run_view(report), width=400) + to_text(host_view(report, host), width=400)
    page = page_text(render_run_html(report))
    for field, marker in MARKERS.items():
        assert marker in terminal, f"the terminal does not show {field} ({marker!r})"
        assert marker in page, f"the HTML page does not show {field} ({marker!r})"


def test_results_of_an_interrupted_run_and_unknown_keys_are_shown() -> None:
    report = full_run(extra_keys_host())
    terminal = to_text(run_view(report), width=400)
    page = page_text(render_run_html(report))
    for shown in ("restart svc-marker ✗ INTERRUPTED", "alert alpaca_sip … STARTED"):
        assert shown in terminal and shown in page, shown


@pytest.mark.parametrize(
    ("command", "headings"),
    [
        ("premarket", ("before", "actions", "after", "outcome", "time")),
        ("deploy", ("outcome", "changes", "pre-flight", "time")),
        ("collect", ("outcome", "cron runs", "last cron run", "self-heal", "files")),
        ("status", ("outcome", "last cron run", "self-heal", "next due", "runner", "guards")),
    ],
)
def test_both_views_give_a_command_the_same_recap(command: str, headings: tuple[str, ...]) -> None:
    report = dataclasses.replace(full_run(), command=command)
    terminal = to_text(run_view(report), width=400)
    page = render_run_html(report)
    recap_table = page[page.index('<table class="recap">') : page.index("</table>")]
    for heading in headings:
        assert f"┃ {heading}" in terminal or f" {heading} ┃" in terminal, (heading, terminal)
        assert f">{heading}</th>" in recap_table, heading
    if command == "deploy":
        for cell in ("update change-marker", "preflight-marker: missing"):
            assert cell in terminal and cell in page_text(recap_table), cell
    if command == "collect":
        for cell in ("cron-run-marker: running", "SILENT since 2026-01-02T01:00:00Z"):
            assert cell in terminal and cell in page_text(recap_table), cell
    if command == "status":
        for cell in (
            "2026-01-05T14:15:00Z",
            "9.9.9 (bundle-marker), controller has newer-bundle: run deploy",
            "breaker closed svc-marker",
            "hold until",
        ):
            assert cell in terminal and cell in page_text(recap_table), cell
        alert = "SELF-HEAL SILENT on h-marker: self-heal silent since silence-marker"
        assert alert in terminal and alert in page_text(page), alert


def test_a_dry_run_says_what_it_would_do_in_both_views() -> None:
    host = HostReport(
        "h01",
        "198.51.100.1",
        "ssh",
        outcome="unhealthy",
        before={"exit_code": 2, "state": "unhealthy", "tail": "UW fail\n"},
        plan={
            "state": "unhealthy",
            "recover": True,
            "notes": [],
            "actions": [{"kind": "restart", "target": "uw-daemon", "reason": "uw_socket: line 1", "detail": {}}],
        },
    )
    report = dataclasses.replace(full_run(host), options={"dry_run": True})
    terminal = to_text(run_view(report), width=300) + to_text(host_view(report, host), width=300)
    page = page_text(render_run_html(report))
    for shown in ("(dry run)", "would restart uw-daemon", "(planned) restart uw-daemon", "why: uw_socket: line 1"):
        assert shown in terminal and shown in page, shown


def test_both_views_show_the_same_timeline() -> None:
    report = full_run()
    host = report.hosts[0]
    terminal = to_text(host_view(report, host), width=400)
    page = page_text(render_run_html(report))
    rows = host_page(report, host).timeline
    assert [r.kind for r in rows] == ["phase", "check", "note", "phase", "action", "after", "phase"]
    position = {"terminal": 0, "page": page.index("timeline (UTC)")}
    for row in rows:
        what = plain(row.what)
        for view, text in (("terminal", terminal), ("page", page)):
            found = text.index(what, position[view])
            position[view] = found
    assert "ran: supervisorctl restart svc-marker" in terminal and "ran: supervisorctl restart svc-marker" in page
