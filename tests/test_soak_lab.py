"""A soak: cron's runner and laptop premarket/recover runs, over and over, while faults break random
hosts in random ways; then nothing may be lost, doubled, corrupt, leaked or left behind.

Short in CI (``GUARDIAN_SOAK_ITERATIONS``, default 6: about a minute); a long one by hand, e.g.
``GUARDIAN_SOAK_ITERATIONS=200 GUARDIAN_SOAK_SEED=7 .venv/bin/python -m pytest -m soak -s``.
Cron's ticks are the deployed runner started exactly as its crontab line starts it (a compressed
schedule: one tick per host chosen in each iteration, alongside the laptop's run), on the real
lab hosts with their real process managers. The summary line it prints is quoted in the README.
"""

from __future__ import annotations

import gc
import json
import os
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import APP, run_command, run_cron_runner

from remediation.agent.outcomes import OK_OUTCOMES
from remediation.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.soak]
HOSTS = ("h01", "h02", "h03", "h04")  # supervisor, process-compose, the seed's respawner, supervisor
FAULTS = ("uw", "sip", "stale-lock", "kill", "crash-loop", "hang", "sshd-down")
NEEDS_RESET = {"crash-loop", "hang", "sshd-down"}  # what no restart cures: the injector puts it back
ITERATIONS = int(os.environ.get("GUARDIAN_SOAK_ITERATIONS", "6"))
SEED = int(os.environ.get("GUARDIAN_SOAK_SEED", "20261202"))
LIMITS = {"journal_retain": 8, "alert_retain": 3}
REPORT_KEEP = 3
NEVER = [{"name": "pre_market", "schedule": "0 0 1 1 *", "check": "pre_market_health_check.py"}]  # cron never fires
STATE = f"{APP}/.guardian/state"


def inventory(lab: Lab, tmp_path: Path) -> list[Path]:
    extra = tmp_path / "zz-soak.yml"
    group = {
        "schedules": NEVER,
        "settle_seconds": 1,
        "check_timeout": 5,
        "host_deadline": 90,
        "restart_budget_max": 1000,  # every restart is done and counted: the breaker must agree
        **LIMITS,
    }
    extra.write_text(json.dumps({"groups": {"lab": {"vars": group}}}))
    return [lab.inventory_path, extra]


def journals(lab: Lab, host: str) -> dict[str, dict[str, Any]]:
    """Every journal on the host, parsed (a corrupt one fails the test)."""
    directory = lab.path(host, f"{STATE}/journal")
    return {p.stem: json.loads(p.read_text()) for p in directory.glob("*.json")} if directory.is_dir() else {}


def open_fds() -> set[tuple[str, str]]:
    """This process's open file descriptors, each with what it points at."""
    gc.collect()
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:
            continue  # the listing's own descriptor, closed by now
    return found


def test_a_soak_loses_nothing_and_leaves_nothing_behind(fleet: Lab, tmp_path: Path) -> None:
    lab, rng = fleet, random.Random(SEED)
    inv, reports = inventory(lab, tmp_path), tmp_path / "reports"
    deployed = run_command("deploy", ",".join(HOSTS), inventory=inv, reports=reports)
    assert deployed.code == 0, deployed.out
    fds_before = open_fds()
    seen: dict[tuple[str, str], dict[str, Any]] = {}  # (host, run id) -> its journal, final
    laptop_runs = cron_runs = 0
    verdicts: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()  # what the faulted hosts ended as, for the summary
    for iteration in range(ITERATIONS):
        host, kind = rng.choice(HOSTS), rng.choice(FAULTS)
        lab.fault(host, kind)
        ticks = rng.sample(HOSTS, 2)
        before = {h: set(journals(lab, h)) for h in HOSTS}
        outputs: dict[str, str] = {}
        threads = [threading.Thread(target=_tick, args=(lab, h, outputs)) for h in ticks]
        for thread in threads:
            thread.start()
        command = rng.choice(("premarket", "recover"))
        run = run_command(command, ",".join(HOSTS), inventory=inv, reports=reports, report_keep=REPORT_KEEP)
        for thread in threads:
            thread.join(timeout=120)
            assert not thread.is_alive(), "a cron tick never ended"
        laptop_runs += 1
        cron_runs += len(ticks)

        # The laptop's report: complete, every host with a final outcome and, if not ok, a reason.
        report = json.loads((reports / run.report.run_id / "report.json").read_text())
        assert report["complete"] and not report["interrupted"], iteration
        by_host = {h["host"]: h for h in report["hosts"]}
        assert set(by_host) == set(HOSTS)
        for name, entry in by_host.items():
            assert entry["outcome"] not in ("pending", "running"), (iteration, name, entry)
            assert entry["outcome"] in OK_OUTCOMES or entry["reason"], (iteration, name, entry)
        verdicts[_verdict(by_host[host], kind)] += 1
        outcomes[f"{kind}->{by_host[host]['outcome']}"] += 1

        # Every run is in its host's journal, once, finished and agreeing with what was reported.
        for name in HOSTS:
            new = {run_id: data for run_id, data in journals(lab, name).items() if run_id not in before[name]}
            crons = [r for r in new if "-cron-" in r]
            assert len(crons) == (1 if name in ticks else 0), (iteration, name, sorted(new), outputs.get(name))
            outcome = by_host[name]["outcome"]
            if outcome != "unreachable":
                assert run.report.run_id in new, (iteration, name, outcome)
                assert new[run.report.run_id]["outcome"] == outcome
            for run_id, data in new.items():
                assert data["outcome"] != "running", (iteration, name, run_id, data)
                assert (name, run_id) not in seen
                seen[(name, run_id)] = data
        if kind in NEEDS_RESET:
            lab.fault(host, "reset")

    for name in HOSTS:
        # Never two restarts of one service at once; the restart budget counted each one.
        restarts: dict[str, list[tuple[float, float]]] = {}
        for (host, _), data in seen.items():
            if host != name:
                continue
            for action in data.get("actions", []):
                if action.get("kind") == "restart" and action.get("result") in ("ok", "failed"):
                    start = float(action["t"])
                    restarts.setdefault(action["target"], []).append((start, start + float(action.get("duration", 0))))
        breaker = json.loads(lab.path(name, f"{STATE}/guardian-breaker.json").read_text() or "{}") if restarts else {}
        for service, spans in restarts.items():
            spans.sort()
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), (name, service, spans)
            assert len(breaker["restarts"][service]) == len(spans), (name, service)
        # No lock held, no Guardian process left, no zombie.
        flock = lab.exec(name, ["flock", "-n", "-E", "99", f"{STATE}/.guardian.flock", "true"], check=False)
        assert flock.returncode == 0, f"{name}: Guardian's host lock is still held"
        for pid, (root_pid, argv) in lab.processes(name).items():
            assert "Guardian on-host runner" not in " ".join(argv) and "guardian-runner" not in " ".join(argv), argv
            state = Path(f"/proc/{root_pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            assert state != "Z", f"{name}: zombie {pid} {argv}"
        # Disk use bounded: journals and alert files pruned to their limits.
        assert len(journals(lab, name)) <= LIMITS["journal_retain"]
        alerts = list(lab.path(name, f"{APP}/logs").glob("*_alert_*.txt"))
        assert len(alerts) <= LIMITS["alert_retain"], (name, alerts)
    assert len(list(reports.glob("*/report.json"))) <= REPORT_KEEP + 1  # + the run just finished
    # Earlier tests' descriptors may close meanwhile; none may be left open by the soak's runs.
    assert open_fds() - fds_before == set(), "the controller leaked file descriptors"
    print(
        f"\nsoak: runs={laptop_runs + cron_runs} (laptop {laptop_runs}, cron {cron_runs}), "
        f"faults={ITERATIONS}, healed={verdicts['healed']}, guarded={verdicts['guarded']}, "
        f"reported={verdicts['reported']}, lost=0 (seed {SEED}; {', '.join(sorted(outcomes))})"
    )


def _tick(lab: Lab, host: str, outputs: dict[str, str]) -> None:
    """One cron tick on ``host``: the deployed runner, exactly as its crontab line starts it."""
    outputs[host] = run_cron_runner(lab, host)


def _verdict(entry: dict[str, Any], kind: str) -> str:
    """What became of a fault: healed (by this run, or by a cron tick before it), guarded (the
    host's lock held by a cron tick, the blast-radius guard), or reported with its reason."""
    outcome = entry["outcome"]
    if outcome in ("healed", "healthy"):
        return "healed"
    if outcome in ("busy", "held") or "common-cause" in entry.get("reason", ""):
        return "guarded"
    assert entry["reason"], (kind, entry)
    return "reported"
