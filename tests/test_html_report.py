"""The HTML report of a run and the fleet history: escaped, self-contained, checked in a real browser."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from remediation.reporting.history import history_table, load_history, render_history_html, write_history_html
from remediation.reporting.html import write_run_html
from remediation.reporting.htmlpage import CSP, OUTCOME_COLOURS, host_anchor
from remediation.reporting.render import to_text
from remediation.reporting.report import CollectedFile, HostReport, ReportStore, RunReport

DOCS = Path(__file__).resolve().parent.parent / "docs"
HOSTILE = "<script>alert(1)</script>"


def _file(host: str, name: str, size: int = 1200) -> CollectedFile:
    return CollectedFile(name, f"{host}/{name}", size, size, "3f" * 32, False)


def realistic(run_id: str = "20260302T133001Z-7c1e", *, hostile: bool = False) -> RunReport:
    """A premarket run over four droplets: healed, healthy, unreachable, still degraded."""
    t0 = 1772458201.0
    uw_tail = (
        "2026-03-02 13:30:01 pre-market health check v2\n"
        "[ok] disk 41% used\n"
        "[ok] alpaca account active\n"
        "[FAIL] UW websocket: connection_error after 3 retries\n"
        "[ok] clock skew 12ms\n"
        "RESULT: UNHEALTHY (1 failure)\n"
    )
    healed = HostReport(
        "droplet-1",
        "203.0.113.10",
        "ssh",
        outcome="healed",
        started_at="2026-03-02T13:30:01Z",
        duration=9.4,
        runner="laptop",
        remote_version="0.1.0",
        phases=[
            {"phase": "lock", "t": t0},
            {"phase": "check", "t": t0 + 0.4},
            {"phase": "recover", "t": t0 + 2.1},
            {"phase": "settle", "t": t0 + 3.0},
            {"phase": "verify", "t": t0 + 8.0},
            {"phase": "collect", "t": t0 + 9.0},
        ],
        before={
            "exit_code": 2,
            "state": "unhealthy",
            "reason": "exit code 2",
            "tail": uw_tail + ("\x1b[31mred\x1b[0m " + HOSTILE + "\n" if hostile else ""),
            "matches": [
                {
                    "signature": "uw_socket",
                    "pattern": "connection_error",
                    "line_no": 4,
                    "line": "[FAIL] UW websocket: connection_error after 3 retries",
                }
            ]
            + (
                [{"signature": HOSTILE, "pattern": "x", "line_no": 7, "line": "\x1b[31mred\x1b[0m " + HOSTILE}]
                if hostile
                else []
            ),
        },
        after={"exit_code": 0, "state": "healthy", "reason": "exit code 0", "tail": "RESULT: HEALTHY\n"},
        plan={"notes": [], "actions": []},
        locks=[
            {"name": "uw_flow.lock", "stale": True, "reason": "pid 4121 is dead, 2.1 h old", "pid": 4121},
        ],
        actions=[
            {
                "kind": "remove_lock",
                "target": "uw_flow.lock",
                "result": "ok",
                "detail": "removed",
                "reason": "stale: pid 4121 is dead, 2.1 h old",
                "at": "2026-03-02T13:30:03Z",
                "t": t0 + 2.2,
            },
            {
                "kind": "restart",
                "target": "uw-daemon",
                "result": "ok",
                "detail": "pid 4121 -> 5230, stable after 5s",
                "reason": "uw_socket matched line 4: [FAIL] UW websocket: connection_error"
                + (HOSTILE if hostile else ""),
                "at": "2026-03-02T13:30:03Z",
                "t": t0 + 2.4,
            },
        ],
        files=[
            _file("droplet-1", "guardian.log"),
            _file("droplet-1", "guardian_pre_market_health_check_output.log"),
            _file("droplet-1", "journal-20260302T093000Z.json", 610),
        ]
        + ([CollectedFile("../../etc/passwd", "../../etc/passwd", 1, 1, "00" * 32, False)] if hostile else []),
        cron_runs=[
            {
                "run_id": "20260302T093000Z",
                "outcome": "healed",
                "reason": "",
                "started_at": "2026-03-02T09:30:00Z",
                "actions": [
                    {"kind": "restart", "target": "uw-daemon", "result": "ok", "reason": "uw_socket matched line 4"}
                ],
            }
        ],
        warnings=[HOSTILE] if hostile else [],
    )
    healthy = HostReport(
        "droplet-2",
        "203.0.113.11",
        "ssh",
        outcome="healthy",
        started_at="2026-03-02T13:30:01Z",
        duration=1.3,
        phases=[{"phase": "lock", "t": t0}, {"phase": "check", "t": t0 + 0.3}, {"phase": "collect", "t": t0 + 1.1}],
        before={
            "exit_code": 0,
            "state": "healthy",
            "reason": "exit code 0",
            "tail": "RESULT: HEALTHY\n",
            "matches": [],
        },
        plan={"notes": ["no recovery: exit code 0"], "actions": []},
        locks=[{"name": "trading.lock", "stale": False, "reason": "held by live pid 811", "pid": 811}],
        files=[_file("droplet-2", "guardian.log")],
    )
    down = HostReport(
        "droplet-3",
        "203.0.113.12",
        "ssh",
        outcome="unreachable",
        reason="cannot connect to 203.0.113.12:22: Connection timed out after 10s",
        started_at="2026-03-02T13:30:01Z",
        duration=10.0,
    )
    degraded = HostReport(
        "droplet-4",
        "203.0.113.13",
        "ssh",
        outcome="still-degraded",
        reason="the check still fails after recovery",
        started_at="2026-03-02T13:30:01Z",
        duration=11.8,
        phases=[
            {"phase": "check", "t": t0 + 0.5},
            {"phase": "recover", "t": t0 + 1.9},
            {"phase": "verify", "t": t0 + 9.0},
        ],
        before={
            "exit_code": 1,
            "state": "degraded",
            "reason": "exit code 1",
            "tail": "[WARN] Alpaca SIP delay 2300ms (limit 500ms)\nRESULT: DEGRADED\n",
            "matches": [
                {
                    "signature": "alpaca_sip",
                    "pattern": "SIP.*delay",
                    "line_no": 1,
                    "line": "[WARN] Alpaca SIP delay 2300ms (limit 500ms)",
                }
            ],
        },
        after={
            "exit_code": 1,
            "state": "degraded",
            "reason": "exit code 1",
            "tail": "[WARN] Alpaca SIP delay 2150ms (limit 500ms)\nRESULT: DEGRADED\n",
        },
        actions=[
            {
                "kind": "alert",
                "target": "alpaca_sip",
                "result": "ok",
                "detail": "wrote alpaca_sip_alert_20260302T133003Z.txt",
                "reason": "alpaca_sip matched line 1",
                "t": t0 + 2.0,
            },
            {
                "kind": "restart",
                "target": "trading-bot",
                "result": "ok",
                "detail": "pid 990 -> 1204",
                "reason": "alpaca_sip matched line 1",
                "t": t0 + 2.3,
            },
        ],
        files=[_file("droplet-4", "guardian.log"), _file("droplet-4", "alpaca_sip_alert_20260302T133003Z.txt", 214)],
        warnings=["restart budget for trading-bot: 2 of 3 restarts used in the last 60 min (breaker closes at 3)"],
    )
    if "guards" in HostReport.__dataclass_fields__:
        degraded.guards = {"breakers": {"trading-bot": {"recent": 2, "max_restarts": 3, "open": False}}}
        if hostile:
            healed.guards = {"hold": {"by": HOSTILE, "reason": "\x1b]0;pwned\x07"}}
    return RunReport(
        run_id=run_id,
        command="premarket",
        started_at="2026-03-02T13:30:01Z",
        finished_at="2026-03-02T13:30:13Z",
        hosts=[healed, healthy, down, degraded],
        complete=True,
        exit_code=4,
    )


def test_run_page_escapes_everything_from_hosts(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    report = realistic(hostile=True)
    path = write_run_html(store, report)
    assert path == tmp_path / report.run_id / "index.html"
    text = path.read_text(encoding="utf-8")
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[31mred" in text  # ANSI escapes made visible
    # exactly one script element: the constant self-check (pinned by hash in the CSP)
    assert text.count("<script") == 1
    assert "script-src 'sha256-" in text


def test_run_page_is_self_contained_with_anchors_and_relative_links(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    report = realistic(hostile=True)
    text = write_run_html(store, report).read_text(encoding="utf-8")
    # no URL to anywhere: every src/href is relative or an in-page anchor
    assert not re.search(r"https?:|//|ftp:|file:|data:text|@import|url\(", text)
    for host in report.hosts:
        assert f'id="{host_anchor(host.host)}"' in text
        assert f'href="#{host_anchor(host.host)}"' in text
    assert 'href="droplet-1/guardian.log"' in text
    assert 'href="droplet-4/alpaca_sip_alert_20260302T133003Z.txt"' in text
    hrefs = re.findall(r'href="([^"]*)"', text)
    assert all(not h.startswith("/") and ".." not in h.replace("../index.html", "") for h in hrefs), hrefs
    assert "unsafe path, not linked" in text
    # timeline with reasons, exit codes, matched line, cron journal, breaker state
    assert "why: stale: pid 4121 is dead" in text
    assert "exit 2" in text and "exit 0" in text
    assert '<mark class="hit">[FAIL] UW websocket: connection_error after 3 retries</mark>' in text
    assert "20260302T093000Z" in text
    assert "restart budget for trading-bot" in text
    section = text[text.index('id="host-droplet-1"') :]
    assert section.index("phase</span> check") < section.index("remove_lock") < section.index("<b>check after</b>")


def _write_runs(store: ReportStore, outcomes: list[dict[str, str]], *, cron: dict[int, dict[str, str]]) -> None:
    for i, per_host in enumerate(outcomes):
        run_id = f"202603{i + 1:02d}T133000Z-{i:04x}"
        hosts = []
        for name, outcome in per_host.items():
            host = HostReport(name, "198.18.0.1", "ssh", outcome=outcome, reason=f"{outcome} reason")
            for j, (cron_host, cron_outcome) in enumerate(cron.get(i, {}).items()):
                if cron_host == name:
                    host.cron_runs.append(
                        {
                            "run_id": f"202603{i + 1:02d}T09300{j}Z",
                            "outcome": cron_outcome,
                            "started_at": f"2026-03-{i + 1:02d}T09:30:0{j}Z",
                            "actions": [],
                        }
                    )
            hosts.append(host)
        report = RunReport(run_id, "premarket", f"2026-03-{i + 1:02d}T13:30:00Z", hosts=hosts, complete=True)
        store.save(report)
        write_run_html(store, report)


def test_history_flags_flapping_hosts_and_merges_cron_runs(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    flappy = ["healthy", "healed", "healthy", "still-degraded", "healthy"]  # fine, problem, fine, ...
    _write_runs(
        store,
        [{"h1": "healthy", "h2": o, "h3": "healthy" if i < 4 else "unreachable"} for i, o in enumerate(flappy)],
        cron={1: {"h3": "healthy"}, 2: {"h3": "healthy"}},
    )
    # a later run collects the same cron journal again: it must appear once
    again = store.load(store.run_ids()[2])
    again.hosts[2].cron_runs.append(dict(store.load(store.run_ids()[1]).hosts[2].cron_runs[0]))
    store.save(again)
    history = load_history(store)
    assert history.hosts == ["h1", "h2", "h3"]
    cron_runs = [r for r in history.runs if r.cron]
    assert [r.run_id for r in cron_runs] == ["20260302T093000Z", "20260303T093000Z"]
    assert len(history.runs) == 7
    assert [r.started_at for r in history.runs] == sorted(r.started_at for r in history.runs)
    assert history.flapping() == ["h2"]
    assert history.changes("h1") == 0
    text = to_text(history_table(history), width=140)
    assert "FLAPPING" in text and text.count("FLAPPING") == 1
    h2_line = next(line for line in text.splitlines() if "h2" in line)
    assert "FLAPPING" in h2_line

    page = render_history_html(history)
    assert "flapping: 4 changes" in page
    assert page.count('data-check="host"') == 3
    assert f'href="{store.run_ids()[0]}/index.html#host-h2"' in page

    one = load_history(store, host="h3")
    assert one.hosts == ["h3"]
    host_text = to_text(history_table(one), width=140)
    assert "cron" in host_text and "unreachable" in host_text

    assert len(load_history(store, limit=3).runs) == 3
    path = write_history_html(store)
    assert path == tmp_path / "index.html" and path.read_text().startswith("<!DOCTYPE html>")


def test_history_survives_a_broken_report(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    _write_runs(store, [{"h1": "healthy"}, {"h1": "healed"}], cron={})
    (tmp_path / store.run_ids()[0] / "report.json").write_text("{not json")
    history = load_history(store)
    assert history.skipped == [store.run_ids()[0]]
    assert len(history.runs) == 1
    assert HOSTILE not in render_history_html(load_history(ReportStore(tmp_path / "none")))


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("CI must run the browser test: install Debian's chromium (scripts/setup.sh APT_PACKAGES)")
    pytest.skip("chromium is not installed")


def _browser(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--allow-file-access-from-files",
        f"--user-data-dir={profile}",
    ]
    env = {**os.environ, "HOME": str(profile)}
    return subprocess.run(
        [chromium, *flags, *args], capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL
    )


def _dom(chromium: str, profile: Path, page: Path, *args: str) -> str:
    result = _browser(chromium, profile, "--virtual-time-budget=2000", *args, "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_pages_load_in_a_real_browser(tmp_path: Path) -> None:
    chromium = _chromium()
    store = ReportStore(tmp_path / "reports")
    report = realistic("20260302T133001Z-7c1e", hostile=True)
    store.save(report)
    run_page = write_run_html(store, report)
    _write_runs(
        store, [{"droplet-1": o, "droplet-2": "healthy"} for o in ("healthy", "healed", "still-degraded")], cron={}
    )
    history_page = write_history_html(store)

    dom = _dom(chromium, tmp_path / "profile", run_page)
    head = re.search(r"<html[^>]*>", dom)
    assert head is not None and 'data-selfcheck="ok"' in head.group(0), head
    for host in report.hosts:
        assert f'id="{host_anchor(host.host)}"' in dom
        assert re.search(rf'<a href="#{re.escape(host_anchor(host.host))}">', dom)
    assert "alert(1)" in dom and "<script>alert(1)" not in dom

    dom = _dom(chromium, tmp_path / "profile", history_page)
    head = re.search(r"<html[^>]*>", dom)
    assert head is not None and 'data-selfcheck="ok"' in head.group(0), head
    assert all(f">{h}</th>" in dom for h in ("droplet-1", "droplet-2", "droplet-3", "droplet-4"))

    # the self-check really detects a broken page (a missing host section)
    broken = run_page.with_name("broken.html")
    broken.write_text(run_page.read_text().replace('data-check="host"', "", 1))
    head = re.search(r"<html[^>]*>", _dom(chromium, tmp_path / "profile", broken))
    assert head is not None and 'data-selfcheck="error: expected 4 sections, found 3"' in head.group(0)


SEEN_PROBE = """window.addEventListener('load', function () {
  var rows = Array.prototype.map.call(document.querySelectorAll('table.recap tbody tr'), function (tr) {
    var b = tr.querySelector('.badge'), r = b.getBoundingClientRect(), s = getComputedStyle(b);
    return {host: tr.cells[0].innerText, badge: b.innerText, text: tr.innerText, left: r.left, top: r.top,
            width: r.width, height: r.height, bottom: tr.getBoundingClientRect().bottom,
            background: s.backgroundColor, color: s.color};
  });
  var h1 = document.querySelector('h1');
  document.documentElement.setAttribute('data-seen', JSON.stringify({rows: rows, title: h1.innerText,
    titleBottom: h1.getBoundingClientRect().bottom, width: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth}));
});"""
SHOT_WIDTH, SHOT_HEIGHT = 1280, 1600


def _with_probe(page: Path, probe: str, name: str) -> Path:
    """A copy of ``page`` running ``probe`` (a test script, allowed by its own hash next to the
    page's in the page's CSP); the page itself stays as it is."""
    probe_hash = base64.b64encode(hashlib.sha256(probe.encode()).digest()).decode()
    text = page.read_text(encoding="utf-8")
    assert CSP in text
    probed = text.replace(CSP, CSP.replace("script-src ", f"script-src 'sha256-{probe_hash}' "))
    probed = probed.replace("</body>", f"<script>{probe}</script></body>")
    path = page.with_name(name)
    path.write_text(probed, encoding="utf-8")
    return path


def _png_rows(data: bytes, *, rows: int) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, the first ``rows`` rows) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", (0, 0, 0, 0, 0, 0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    out: list[bytes] = []
    prev = bytearray(stride)
    for y in range(min(rows, height)):
        start = y * (stride + 1)
        filter_type, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if filter_type == 1:
                line[x] = (line[x] + a) & 0xFF
            elif filter_type == 2:
                line[x] = (line[x] + b) & 0xFF
            elif filter_type == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif filter_type == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        out.append(bytes(line))
        prev = line
    return width, height, bpp, out


def _rgb(css: str) -> tuple[int, int, int]:
    """'#a40e26' or 'rgb(164, 14, 38)' -> (164, 14, 38)."""
    if css.startswith("#"):
        return int(css[1:3], 16), int(css[3:5], 16), int(css[5:7], 16)
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return r, g, b


def _near(pixel: bytes, colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(p - c) <= tolerance for p, c in zip(pixel[:3], colour))


def test_screenshot_of_a_realistic_run_shows_every_host_and_its_outcome_on_the_first_screen(tmp_path: Path) -> None:
    """What an operator sees on opening the page (1280x1600): the run's title, then one recap row
    per host with its outcome badge in that outcome's colour, its label readable on it, nothing
    cut at the right edge. Read from the laid-out page (a probe script reports positions and
    styles), then checked in the screenshot's pixels. With GUARDIAN_SCREENSHOTS=1 the screenshot
    becomes docs/report-screenshot.png."""
    chromium = _chromium()
    store = ReportStore(tmp_path / "reports")
    report = realistic()
    store.save(report)
    page = _with_probe(write_run_html(store, report), SEEN_PROBE, "seen.html")
    size = f"--window-size={SHOT_WIDTH},{SHOT_HEIGHT}"
    dom = _dom(chromium, tmp_path / "profile", page, size)
    found = re.search(r'<html[^>]*data-seen="([^"]*)"', dom)
    assert found, dom[:500]
    seen = json.loads(html.unescape(found.group(1)))

    assert seen["title"] == f"Guardian premarket {report.run_id}"
    assert seen["scrollWidth"] <= seen["width"] == SHOT_WIDTH  # nothing runs off the right edge
    rows = seen["rows"]
    assert [(r["host"].split()[0], r["badge"]) for r in rows] == [(h.host, h.outcome) for h in report.hosts]
    assert all(seen["titleBottom"] < r["top"] and r["bottom"] <= SHOT_HEIGHT - 200 for r in rows)  # first screen
    assert "cannot connect to 203.0.113.12:22" in rows[2]["text"]  # why droplet-3 is unreachable
    for row in rows:
        fg, bg, _ = OUTCOME_COLOURS[row["badge"]]
        assert (_rgb(row["color"]), _rgb(row["background"])) == (_rgb(fg), _rgb(bg)), row

    shot = tmp_path / "shot.png"
    result = _browser(chromium, tmp_path / "profile", f"--screenshot={shot}", size, page.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    lowest = int(max(r["top"] + r["height"] for r in rows)) + 2
    width, height, bpp, pixels = _png_rows(shot.read_bytes(), rows=lowest)
    assert (width, height) == (SHOT_WIDTH, SHOT_HEIGHT)
    for row in rows:
        text_rgb, badge_rgb, _ = (_rgb(c) for c in OUTCOME_COLOURS[row["badge"]])
        middle = pixels[int(row["top"] + row["height"] / 2)]
        left, right = int(row["left"]), int(row["left"] + row["width"])
        # The badge's padding is its outcome's colour...
        assert _near(middle[(left + 4) * bpp :], badge_rgb), (row["badge"], middle[(left + 4) * bpp : (left + 5) * bpp])
        # ...and across its middle some pixels are the label's colour: the outcome is readable.
        label = [middle[x * bpp : x * bpp + 3] for x in range(left + 9, right - 9)]
        assert sum(_near(px, text_rgb, 60) for px in label) >= 3, row["badge"]
    if os.environ.get("GUARDIAN_SCREENSHOTS"):  # refresh the documentation's screenshot
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS / "report-screenshot.png")


SCROLL_PROBE = """window.addEventListener('load', function () {
  var b = document.querySelector('pre.tail');
  document.documentElement.setAttribute('data-scroll', [b.scrollTop, b.scrollHeight, b.clientHeight].join(' '));
});"""


def test_output_box_opens_scrolled_to_its_end(tmp_path: Path) -> None:
    """The check output box shows its last lines on load, where the failure is (a test probe,
    allowed by its own hash next to the page's, reads the box's scroll position in the browser)."""
    chromium = _chromium()
    store = ReportStore(tmp_path / "reports")
    report = realistic()
    flood = "".join(f"{i:05d} filler line of a flooding health check\n" for i in range(300))
    report.hosts[0].before = {**(report.hosts[0].before or {}), "tail": flood + "[FAIL] the last line\n"}
    probe = _with_probe(write_run_html(store, report), SCROLL_PROBE, "probe.html")
    dom = _dom(chromium, tmp_path / "profile", probe)
    head = re.search(r"<html[^>]*>", dom)
    assert head is not None and 'data-selfcheck="ok"' in head.group(0), head
    found = re.search(r'data-scroll="(\d+) (\d+) (\d+)"', head.group(0))
    assert found, head.group(0)
    top, height, client = (int(v) for v in found.groups())
    assert height > client > 0, (top, height, client)  # the box overflows: 40 lines in a 360 px box
    assert top + client >= height - 1, (top, height, client)
