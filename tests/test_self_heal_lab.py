"""Watch the watcher, on the lab fleet with its real cron daemons: after deploy, a host whose cron
stopped and a host whose crontab block was removed by hand are flagged as silent (and the second
as drifted) by `invoke status` and premarket, while a host whose cron still runs reports its cron
runs, writes Prometheus metrics and pings a dead man's switch (a small HTTP server in this test
process, on the lab's own bridge address; never the internet)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_command
from prometheus_client.parser import text_string_to_metric_families

from remediation.agent.outcomes import EXIT_ATTENTION, EXIT_SILENT
from remediation.execution.bundle import bundle_digest
from remediation.lab import Lab

pytestmark = pytest.mark.lab
APP = "/root/stock-bot"
GRACE = 15.0
EVERY_MINUTE = [
    {"name": "pre_market", "schedule": "* * * * *", "check": "pre_market_health_check.py", "log": "logs/pre_market.log"}
]
SECRET = "5f1c0de0-aaaa-4bbb-8ccc-secret-uuid"


class PingServer:
    """A healthchecks.io-compatible endpoint that records every ping it gets."""

    def __init__(self, address: str) -> None:
        pings: list[tuple[str, str]] = []
        self.pings = pings

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                pings.append((self.path, self.rfile.read(length).decode("utf-8", "replace")))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.server.server_address[1]}/ping/{SECRET}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ping_server(fleet: Lab) -> Iterator[PingServer]:
    server = PingServer(f"198.18.{fleet.subnet}.1")  # the controller's address on the lab bridge
    try:
        yield server
    finally:
        server.close()


def inventory(lab: Lab, tmp_path: Path, ping_url: str) -> list[Path]:
    extra = tmp_path / "zz-self-heal.yml"
    group_vars = {"schedules": EVERY_MINUTE, "self_heal_grace": GRACE, "settle_seconds": 1}
    extra.write_text(json.dumps({"groups": {"lab": {"vars": group_vars, "hosts": {"h01": {"ping_url": ping_url}}}}}))
    return [lab.inventory_path, extra]


def finished_cron_runs(lab: Lab, host: str) -> list[dict[str, object]]:
    journal = lab.path(host, f"{APP}/.guardian/state/journal")
    runs = [json.loads(p.read_text()) for p in sorted(journal.glob("*-cron-*.json"))] if journal.exists() else []
    return [r for r in runs if r.get("outcome") != "running"]


def test_status_and_premarket_flag_exactly_the_hosts_that_stopped_healing_themselves(
    fleet: Lab, tmp_path: Path, ping_server: PingServer
) -> None:
    lab = fleet
    inv = inventory(lab, tmp_path, ping_server.url)
    reports = tmp_path / "reports"
    deployed = run_command("deploy", "h01,h02,h03", inventory=inv, reports=reports)
    assert deployed.code == 0, deployed.out
    assert SECRET not in json.dumps(deployed.report.to_dict()) and SECRET not in deployed.out
    secrets = lab.path("h01", f"{APP}/.guardian/secrets.json")
    assert secrets.stat().st_mode & 0o777 == 0o600 and SECRET in secrets.read_text()
    assert SECRET not in lab.path("h01", f"{APP}/.guardian/config.json").read_text()
    deployed_at = time.time()

    lab.fault("h02", "cron-down")  # cron stopped: the crontab is intact, nothing runs
    lab.exec("h03", ["crontab", "-r"])  # the block removed by hand
    # Wait until the first fire time after the deploy is older than the grace period, and h01's
    # cron has served it.
    first_fire = (int(deployed_at) // 60 + 1) * 60
    while time.time() < first_fire + GRACE + 2 or not finished_cron_runs(lab, "h01"):
        assert time.time() < first_fire + 90, "cron never ran the runner on h01"
        time.sleep(1)
    assert not finished_cron_runs(lab, "h02") and not finished_cron_runs(lab, "h03")

    status = run_command("status", "h01,h02,h03", inventory=inv, reports=reports, width=250)
    hosts = {h.host: h for h in status.report.hosts}
    assert {name: h.outcome for name, h in hosts.items()} == {
        "h01": "in-sync",
        "h02": "in-sync",
        "h03": "drifted",
    }, status.out
    assert status.code == EXIT_ATTENTION  # h03 drifted
    assert not hosts["h01"].self_heal["silent"] and hosts["h01"].self_heal["last_cron_run"]["outcome"] == "healthy"
    for name in ("h02", "h03"):
        silence = hosts[name].self_heal["silent"]
        assert [s["schedule"] for s in silence] == ["pre_market"], name
        assert silence[0]["last_run"] is None and silence[0]["expected"], name
        assert f"SELF-HEAL SILENT on {name}" in status.out
    assert "SELF-HEAL SILENT on h01" not in status.out
    assert any(c["item"] == "crontab" and "missing" in c["detail"] for c in hosts["h03"].changes)
    verdict = hosts["h01"].self_heal
    assert verdict["next_due"] and verdict["bundle"] == verdict["controller_bundle"] == bundle_digest()

    # premarket heals nothing here (all healthy) but still says who stopped healing itself.
    premarket = run_command("premarket", "h01,h02", inventory=inv, reports=reports, width=250)
    assert {h.host: h.outcome for h in premarket.report.hosts} == {"h01": "healthy", "h02": "healthy"}
    assert premarket.code == EXIT_SILENT == premarket.report.exit_code
    assert "SELF-HEAL SILENT on h02" in premarket.out and "SELF-HEAL SILENT on h01" not in premarket.out

    check = run_command("deploy", "h01,h03", inventory=inv, reports=reports, drift_check=True)
    assert {h.host: h.outcome for h in check.report.hosts} == {"h01": "unchanged", "h03": "drifted"}
    assert check.code == EXIT_ATTENTION
    assert lab.exec("h03", ["crontab", "-l"], check=False).returncode != 0  # --check changed nothing

    # h01's cron runs: metrics for node_exporter's textfile collector, and pings without the secret.
    metrics = lab.path("h01", f"{APP}/.guardian/metrics/guardian.prom").read_text()
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    outcome = {s.labels["outcome"]: s.value for s in families["guardian_last_run_outcome"].samples}
    assert outcome["healthy"] == 1 and sum(outcome.values()) == 1
    paths = [path for path, _ in ping_server.pings]
    assert f"/ping/{SECRET}/start" in paths and f"/ping/{SECRET}/0" in paths, ping_server.pings
    assert all("h01" in body for _, body in ping_server.pings)
    log = (
        lab.path("h01", f"{APP}/logs/guardian.log").read_text()
        + lab.path("h01", f"{APP}/logs/pre_market.log").read_text()
    )
    assert SECRET not in log
