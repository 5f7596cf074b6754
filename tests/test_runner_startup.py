"""The runner's start-up on a host: what a run loads before its check starts, and how python is
started. A healthy host's run is the common case at 9:15 on every droplet, so it loads no code for
acting (managers, their commands, XML-RPC) and no ``site`` (see bench/RESULTS.md)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from remediation.agent.managers import MANAGERS
from remediation.agent.sequence import MANAGER_KINDS
from remediation.execution.hostrun import PYTHON_FLAGS, JobOptions, runner_command
from remediation.inventory import load_inventory
from remediation.rules import load_rules, rules_data

EXIT_LINE = "sys.exit(main(sys.argv[1:], config=_CONFIG))\n"
# The same exit, reporting first which modules the run had loaded.
REPORTING_EXIT = (
    "_code = main(sys.argv[1:], config=_CONFIG)\nsys.stderr.write(json.dumps(sorted(sys.modules)))\nsys.exit(_code)\n"
)
ACTING = ("guardian_agent.apply", "guardian_agent.managers", "guardian_agent.commands", "guardian_agent.gate")
NEVER_WHEN_HEALTHY = (*ACTING, "guardian_agent.supervisor_rpc", "xmlrpc.client", "http.client", "site")


def run_reporting_modules(tmp_path: Path, check: str, **settings: object) -> tuple[dict[str, object], list[str]]:
    """Run the runner exactly as the controller starts it on a local host; return its result
    event and the modules it had loaded."""
    app = tmp_path / "app"
    (app / "state").mkdir(parents=True, exist_ok=True)
    (app / "pre_market_health_check.py").write_text(check)
    inventory = tmp_path / "inv.yml"
    host = {"transport": "local", "app_dir": str(app), "python": sys.executable, "settle_seconds": 0, **settings}
    inventory.write_text(json.dumps({"groups": {"here": {"hosts": {"local": host}}}}))
    spec = load_inventory([inventory]).hosts["local"]
    argv = shlex.split(runner_command(spec, JobOptions(run_id="startup", signatures=rules_data(load_rules([])))))
    script = argv.index("-c") + 1
    assert argv[script].endswith(EXIT_LINE)
    argv[script] = argv[script][: -len(EXIT_LINE)] + REPORTING_EXIT
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    (result,) = [e for e in events if e["event"] == "result"]
    return result, json.loads(proc.stderr)


def test_python_starts_isolated_and_without_site(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yml"
    inventory.write_text(json.dumps({"groups": {"g": {"hosts": {"h01": {"address": "192.0.2.1"}}}}}))
    argv = shlex.split(runner_command(load_inventory([inventory]).hosts["h01"], JobOptions(run_id="r")))
    assert argv[:4] == ["python3", "-I", "-S", "-c"] and PYTHON_FLAGS == ("-I", "-S")


def test_a_healthy_run_loads_nothing_for_acting(tmp_path: Path) -> None:
    # A json.py in the directory the runner starts in must not stand in for the standard library.
    (tmp_path / "json.py").write_text("raise SystemExit('the cwd was on sys.path')\n")
    result, modules = run_reporting_modules(tmp_path, "print('RESULT: HEALTHY')\n", manager="supervisor")
    assert result["outcome"] == "healthy"
    assert [m for m in NEVER_WHEN_HEALTHY if m in modules] == []


def test_a_host_with_something_to_do_loads_its_manager(tmp_path: Path) -> None:
    check = "import sys\nprint('[ERROR] UW connection_error: socket closed')\nsys.exit(1)\n"
    result, modules = run_reporting_modules(tmp_path, check, manager="signal")
    assert result["outcome"] == "still-degraded"  # no daemon to signal here: the restart fails
    assert all(m in modules for m in ("guardian_agent.apply", "guardian_agent.managers"))


@pytest.mark.parametrize("bad", ["supervisorctl", "runit"])
def test_an_unknown_manager_is_a_bad_config_before_anything_runs(tmp_path: Path, bad: str) -> None:
    from remediation.agent.config import RunnerConfig
    from remediation.agent.context import RunContext
    from remediation.agent.sequence import Runner
    from remediation.agent.watch import ControllerWatch

    config = RunnerConfig.from_dict({"app_dir": str(tmp_path), "manager": bad})
    with pytest.raises(ValueError, match=f"unknown process manager '{bad}'"):
        Runner(RunContext(config, lambda event: None, ControllerWatch()))


def test_the_runner_knows_every_manager() -> None:
    assert sorted(MANAGERS) == list(MANAGER_KINDS)
