"""Premarket against the local host (no SSH): the same runner, plan and report code as the fleet.

These use small check scripts written by the test so each behaviour is pinned down exactly;
the example app and real process managers are exercised in test_premarket_lab.py.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import run_command
from rich.console import Console

from remediation import jobs
from remediation.reporting.report import ReportStore, RunReport

CHECK = """\
import os, sys, time
app = os.path.dirname(os.path.abspath(__file__))
state = os.path.join(app, "state")
if os.path.exists(os.path.join(state, "hang")):
    print("checking...", flush=True); time.sleep(3600)
if os.path.exists(os.path.join(state, "flood")):
    line = "noise " + "." * 94 + "\\n"
    sys.stdout.write(line * 50_000); sys.stdout.flush()
if os.path.exists(os.path.join(state, "code")):
    print("odd"); sys.exit(int(open(os.path.join(state, "code")).read()))
if os.path.exists(os.path.join(state, "esc")):
    print("\\x1b[2J\\x1b[31mred\\x07 \\xff")
bad = 0
for name in sorted(os.listdir(state)):
    if name.endswith(".lock"):
        pid = int(open(os.path.join(state, name)).read().split()[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"[WARN] stale lock state/{name} held by dead pid {pid}"); bad = 1
print("RESULT:", "DEGRADED" if bad else "HEALTHY")
sys.exit(bad)
"""


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "state").mkdir(parents=True)
    (app / "pre_market_health_check.py").write_text(CHECK)
    return app


def inventory(tmp_path: Path, app: Path, **extra: object) -> Path:
    path = tmp_path / "inv.yml"
    host = {
        "transport": "local",
        "app_dir": str(app),
        "python": sys.executable,
        "manager": "signal",
        "settle_seconds": 0,
        **extra,
    }
    path.write_text(json.dumps({"groups": {"here": {"hosts": {"local": host}}}}))
    return path


def run(
    tmp_path: Path, app: Path, *, dry_run: bool = False, json_output: bool = False, **extra: object
) -> tuple[int, str]:
    result = run_command(
        "premarket",
        "local",
        inventory=[inventory(tmp_path, app, **extra)],
        reports=tmp_path / "reports",
        width=160,
        dry_run=dry_run,
        json_output=json_output,
    )
    return result.code, result.out


def latest(tmp_path: Path) -> RunReport:
    return ReportStore(tmp_path / "reports").load()


def test_healthy_host_is_left_alone(tmp_path: Path, app: Path) -> None:
    code, out = run(tmp_path, app)
    report = latest(tmp_path)
    assert code == 0 and report.hosts[0].outcome == "healthy"
    assert report.hosts[0].actions == []
    assert "healthy" in out


def test_stale_lock_is_cleared_and_host_healed_with_seed_logs(tmp_path: Path, app: Path) -> None:
    (app / "state" / "metadata.lock").write_text(f"{dead_pid()}\n")
    (app / "state" / "live.lock").write_text(f"{os.getpid()}\n")
    code, _ = run(tmp_path, app)
    report = latest(tmp_path)
    host = report.hosts[0]
    assert code == 0 and host.outcome == "healed", host.reason
    assert host.before["exit_code"] == 1 and host.after["exit_code"] == 0
    assert [(a["kind"], a["target"], a["result"]) for a in host.actions] == [("remove_lock", "metadata.lock", "ok")]
    assert not (app / "state" / "metadata.lock").exists()
    assert (app / "state" / "live.lock").exists()
    logs = app / "logs"
    assert (logs / "guardian.log").read_text().count("Cleared stale lock metadata.lock") == 1
    assert "stale lock state/metadata.lock" in (logs / "guardian_pre_market_health_check_output.log").read_text()
    assert "RESULT: HEALTHY" in (logs / "guardian_retry_pre_market_health_check.log").read_text()
    run_dir = tmp_path / "reports" / report.run_id
    collected = {f.name: f for f in host.files}
    assert set(collected) >= {
        "guardian.log",
        "guardian_pre_market_health_check_output.log",
        "guardian_retry_pre_market_health_check.log",
    }
    stored = (run_dir / collected["guardian.log"].path).read_bytes()
    assert stored == (logs / "guardian.log").read_bytes()
    data = json.loads((run_dir / "report.json").read_text())
    assert data["complete"] and data["exit_code"] == 0 and data["outcomes"] == {"local": "healed"}


def test_dry_run_changes_nothing_and_shows_the_plan(tmp_path: Path, app: Path) -> None:
    (app / "state" / "metadata.lock").write_text(f"{dead_pid()}\n")
    before = sorted(str(p.relative_to(app)) for p in app.rglob("*"))
    code, out = run(tmp_path, app, dry_run=True)
    assert sorted(str(p.relative_to(app)) for p in app.rglob("*")) == before
    host = latest(tmp_path).hosts[0]
    assert code == 2 and host.outcome == "degraded"
    assert [a["kind"] for a in host.plan["actions"]] == ["remove_lock"]
    assert "would remove_lock metadata.lock" in out


def test_hanging_check_is_cut_off_and_reported(tmp_path: Path, app: Path) -> None:
    (app / "state" / "hang").write_text("")
    code, _ = run(tmp_path, app, check_timeout=1.5)
    host = latest(tmp_path).hosts[0]
    assert code == 2 and host.outcome == "unexpected"
    assert host.before["timed_out"] and "timeout" in host.reason
    assert host.actions == []


@pytest.mark.parametrize("exit_code", ["3", "127"])
def test_unexpected_exit_codes_do_not_recover(tmp_path: Path, app: Path, exit_code: str) -> None:
    (app / "state" / "code").write_text(exit_code)
    (app / "state" / "metadata.lock").write_text(f"{dead_pid()}\n")
    code, _ = run(tmp_path, app)
    host = latest(tmp_path).hosts[0]
    assert code == 2 and host.outcome == "unexpected" and host.actions == []
    assert (app / "state" / "metadata.lock").exists()


def test_missing_check_is_unexpected(tmp_path: Path, app: Path) -> None:
    (app / "pre_market_health_check.py").unlink()
    code, _ = run(tmp_path, app)
    host = latest(tmp_path).hosts[0]
    assert code == 2 and host.outcome == "unexpected" and "not found" in host.reason


def test_flood_is_bounded_in_report_and_logged_in_full_on_host(tmp_path: Path, app: Path) -> None:
    (app / "state" / "flood").write_text("")
    code, _ = run(tmp_path, app, collect_max_bytes=100_000)
    host = latest(tmp_path).hosts[0]
    assert code == 0
    assert host.before["output_bytes"] > 4_000_000
    assert len(host.before["tail"]) <= 70_000
    output_log = next(f for f in host.files if f.name.endswith("_output.log"))
    assert output_log.truncated and output_log.collected_bytes == 100_000 and output_log.size > 4_000_000


def test_escape_sequences_do_not_reach_the_terminal(tmp_path: Path, app: Path) -> None:
    (app / "state" / "esc").write_text("")
    run(tmp_path, app)
    out = Console(file=__import__("io").StringIO(), width=160)
    jobs.show_report(tmp_path / "reports", host="local", console=out)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[2J" not in text and "\x07" not in text
    assert "\\x1b[2J" in text


def test_json_output_is_the_report(tmp_path: Path, app: Path) -> None:
    code, out = run(tmp_path, app, json_output=True)
    data = json.loads(out)
    assert data["outcomes"] == {"local": "healthy"} and data["exit_code"] == code == 0


def test_busy_host_is_reported_with_holder(tmp_path: Path, app: Path) -> None:
    state_dir = app / ".guardian" / "state"  # Guardian's own state, whatever lock_dir says
    state_dir.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import fcntl, json, os, sys, time
            fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, json.dumps({"runner": "cron", "pid": os.getpid(), "since_iso": "now"}).encode())
            print("locked", flush=True)
            time.sleep(60)
        """),
            str(state_dir / ".guardian.flock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        code, _ = run(tmp_path, app, lock_wait=0.5)
    finally:
        holder.kill()
        holder.wait()
    host = latest(tmp_path).hosts[0]
    assert code == 2 and host.outcome == "busy"
    assert f"held by cron, pid {holder.pid}" in host.reason


def test_host_deadline_cuts_off_a_host_and_says_so(tmp_path: Path, app: Path) -> None:
    (app / "state" / "hang").write_text("")
    code, _ = run(tmp_path, app, check_timeout=60, host_deadline=2)
    host = latest(tmp_path).hosts[0]
    assert code == 2 and host.outcome == "failed"
    assert "deadline of 2s exceeded" in host.reason
    assert host.duration < 15
    # The runner was killed; the hanging check it started must not outlive it.
    deadline = time.monotonic() + 5
    while subprocess.run(["pgrep", "-f", str(app / "pre_market_health_check.py")]).returncode == 0:
        assert time.monotonic() < deadline, "orphaned health check left running"
        time.sleep(0.1)


def test_reports_validate_against_the_published_json_schema(tmp_path: Path, app: Path) -> None:
    import jsonschema

    schema = json.loads((Path(__file__).parent.parent / "docs" / "report.schema.json").read_text())
    (app / "state" / "metadata.lock").write_text(f"{dead_pid()}\n")
    run(tmp_path, app)  # healed, with actions and files
    run(tmp_path, app, dry_run=True)  # healthy dry run
    (app / "state" / "code").write_text("7")
    _, out = run(tmp_path, app, json_output=True)  # unexpected, printed as JSON
    jsonschema.validate(json.loads(out), schema)
    store = ReportStore(tmp_path / "reports")
    for run_id in store.run_ids():
        jsonschema.validate(json.loads((tmp_path / "reports" / run_id / "report.json").read_text()), schema)
    printed = io.StringIO()
    jobs.show_report(tmp_path / "reports", json_output=True, console=Console(file=printed, width=300))
    jsonschema.validate(json.loads(printed.getvalue()), schema)
    broken = json.loads(printed.getvalue())
    broken["hosts"][0]["outcome"] = "fine-probably"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def stale_lock(app: Path) -> Path:
    """``state/orders.lock`` naming a dead pid, two hours old: stale by any rule."""
    lock = app / "state" / "orders.lock"
    lock.write_text(f"{dead_pid()}\n")
    os.utime(lock, (time.time() - 7200, time.time() - 7200))
    return lock


def _gated_runner(tmp_path: Path, app: Path) -> subprocess.Popen[str]:
    """The runner exactly as a gated premarket starts it, with its stdin and stdout ours."""
    import shlex

    from remediation.execution.hostrun import JobOptions, runner_command
    from remediation.inventory import load_inventory
    from remediation.rules import load_rules, rules_data

    host = load_inventory([inventory(tmp_path, app)]).hosts["local"]
    job = JobOptions(run_id="gate-test", signatures=rules_data(load_rules([])), gate=True)
    return subprocess.Popen(
        shlex.split(runner_command(host, job)), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _events_until_gate(proc: subprocess.Popen[str]) -> list[dict[str, object]]:
    assert proc.stdout is not None
    events = []
    for line in proc.stdout:
        event = json.loads(line)
        events.append(event)
        if event["event"] == "gate":
            return events
    raise AssertionError(f"the runner never reached its gate: {events}")


def test_runner_at_the_gate_acts_only_on_the_controllers_go(tmp_path: Path, app: Path) -> None:
    lock = stale_lock(app)
    proc = _gated_runner(tmp_path, app)
    _events_until_gate(proc)
    time.sleep(0.5)
    assert lock.exists()  # waiting at the gate: nothing changed yet
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"suppress": {}}) + "\n")
    proc.stdin.flush()
    rest = [json.loads(line) for line in proc.stdout]
    proc.wait(timeout=30)
    result = next(e for e in rest if e["event"] == "result")
    assert result["outcome"] == "healed" and not lock.exists()


def test_runner_at_the_gate_changes_nothing_when_the_controller_leaves(tmp_path: Path, app: Path) -> None:
    lock = stale_lock(app)
    proc = _gated_runner(tmp_path, app)
    _events_until_gate(proc)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()  # the controller went away without an answer
    rest = [json.loads(line) for line in proc.stdout]
    proc.wait(timeout=30)
    assert not any(e["event"] in ("action", "result") for e in rest)
    assert lock.exists()
    assert "closed the gate without an answer" in (app / "logs" / "guardian.log").read_text()


def test_a_stop_at_the_gate_reports_interrupted_and_changes_nothing(tmp_path: Path, app: Path) -> None:
    """Ctrl-C on the controller while a host waits at its gate: the runner stops, says so in
    guardian.log and its journal, sends its result, and the stale lock is still there."""
    lock = stale_lock(app)
    proc = _gated_runner(tmp_path, app)
    _events_until_gate(proc)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"stop": "the operator pressed Ctrl-C on the controller"}) + "\n")
    proc.stdin.flush()
    rest = [json.loads(line) for line in proc.stdout]
    proc.wait(timeout=30)
    result = next(e for e in rest if e["event"] == "result")
    assert result["outcome"] == "interrupted" and "nothing changed" in result["reason"]
    assert not any(e["event"] == "action" for e in rest)
    assert lock.exists()
    journal = json.loads((app / ".guardian" / "state" / "journal" / "gate-test.json").read_text())
    assert journal["outcome"] == "interrupted" and journal["actions"] == []
    assert "Stopping: the operator pressed Ctrl-C" in (app / "logs" / "guardian.log").read_text()


def test_sigterm_stops_the_runner_between_actions_with_its_record_intact(tmp_path: Path, app: Path) -> None:
    """A runner told to stop by a signal (cron's runner killed by an operator, a shutdown)
    finishes the step in hand and leaves a journal and a reason, never half a record."""
    import shlex
    import signal

    from remediation.execution.hostrun import JobOptions, runner_command
    from remediation.inventory import load_inventory
    from remediation.rules import load_rules, rules_data

    (app / "state" / "metadata.lock").write_text(f"{dead_pid()}\n")
    host = load_inventory([inventory(tmp_path, app, settle_seconds=30)]).hosts["local"]
    job = JobOptions(run_id="sigterm-test", signatures=rules_data(load_rules([])))
    proc = subprocess.Popen(
        shlex.split(runner_command(host, job)), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1].get("phase") == "settle":
            proc.send_signal(signal.SIGTERM)
            break
    events += [json.loads(line) for line in proc.stdout]
    assert proc.wait(timeout=20) == 2  # stopped within the settle's 0.2 s wake-ups, not after 30 s
    result = next(e for e in events if e["event"] == "result")
    assert result["outcome"] == "interrupted"
    assert "SIGTERM" in result["reason"] and "remove_lock metadata.lock ok" in result["reason"]
    assert "not re-verified" in result["reason"]
    assert [(a["kind"], a["result"]) for a in result["actions"]] == [("remove_lock", "ok")]
    journal = json.loads((app / ".guardian" / "state" / "journal" / "sigterm-test.json").read_text())
    assert journal["outcome"] == "interrupted" and journal["actions"] == result["actions"]


def test_lock_dir_is_only_swept_never_created_and_guardian_state_stays_put(tmp_path: Path, app: Path) -> None:
    """A mistyped lock_dir is reported, not created; Guardian's own state (host lock, journal)
    stays in .guardian/state whatever lock_dir says, so every runner shares one host lock."""
    code, _ = run(tmp_path, app, lock_dir="stat")  # typo for "state"
    host = latest(tmp_path).hosts[0]
    assert code == 0 and host.outcome == "healthy"
    assert not (app / "stat").exists()
    assert any("lock dir" in w and "stat" in w and "does not exist" in w for w in host.warnings), host.warnings
    state = app / ".guardian" / "state"
    assert (state / ".guardian.flock").exists()
    assert (state / "journal" / f"{latest(tmp_path).run_id}.json").exists()


def test_state_an_older_guardian_kept_in_the_lock_dir_is_adopted(tmp_path: Path, app: Path) -> None:
    """Upgrading never forgets a maintenance hold or resets a restart budget."""
    until = time.time() + 3600
    (app / "state" / "guardian-hold.json").write_text(
        json.dumps({"until": until, "reason": "broker maintenance", "by": "ops", "since": time.time()})
    )
    code, _ = run(tmp_path, app)
    assert code == 0  # a held host is ok: it is left alone on purpose
    host = latest(tmp_path).hosts[0]
    assert host.outcome == "held" and "broker maintenance" in host.reason
    assert (app / ".guardian" / "state" / "guardian-hold.json").exists()
    assert not (app / "state" / "guardian-hold.json").exists()
