"""The installed runner, on this machine: deploy's package (sources and pyc compiled here), the
controller's script choosing it when it is the same code, and falling back to the code it carries
when it is other code, missing, or not something root may trust. Real runs of the real script
(``python3 -I -S -c``), local transport; the lab tests do the same over SSH."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from remediation.agent.deploy import Installer
from remediation.agent.installed import RECORD_FILE, probe, runner_tree, tree_changes
from remediation.agent.trust import untrusted
from remediation.execution.bundle import build_runner, bundle_digest
from remediation.execution.hostrun import JobOptions, runner_command
from remediation.inventory import load_inventory
from remediation.rules import load_rules, rules_data

HEALTHY = "print('RESULT: HEALTHY')\n"


def install(app: Path) -> Installer:
    """What deploy installs of the runner (the package and the launcher), without a crontab."""
    installer = Installer({"app_dir": str(app), "manager": "signal"}, lambda event: None)
    installer.ensure_dir(installer.install_dir, 0o750)
    installer.ensure_runner_tree()
    launcher = installer.desired_files()[0]
    installer.ensure_file(str(launcher["path"]), bytes(launcher["data"]), int(launcher["mode"]), diff=False)
    return installer


@pytest.fixture
def app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "state").mkdir(parents=True)
    (app / "pre_market_health_check.py").write_text(HEALTHY)
    return app


def run(app: Path, **job: Any) -> dict[str, Any]:
    """The runner exactly as the controller starts it on a local host; its result event."""
    inventory = app.parent / "inv.yml"
    host = {"transport": "local", "app_dir": str(app), "python": sys.executable, "manager": "signal", "settle_seconds": 0}
    inventory.write_text(json.dumps({"groups": {"here": {"hosts": {"local": host}}}}))
    spec = load_inventory([inventory]).hosts["local"]
    options = JobOptions(run_id=job.pop("run_id", "t1"), signatures=rules_data(load_rules([])), **job)
    argv = shlex.split(runner_command(spec, options))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=app.parent, stdin=subprocess.DEVNULL)
    (result,) = [e for e in map(json.loads, proc.stdout.splitlines()) if e["event"] == "result"]
    return result


def tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its mode, size and mtime."""
    found = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        found[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def test_the_installed_runner_is_this_code_compiled_here(app: Path) -> None:
    install(app)
    runner = app / ".guardian" / "runner"
    assert json.loads((runner / RECORD_FILE).read_text())["bundle"] == bundle_digest()
    sources = sorted(p.name for p in (runner / "guardian_agent").glob("*.py"))
    compiled = sorted(p.name for p in (runner / "guardian_agent" / "__pycache__").iterdir())
    assert compiled == [name[:-3] + f".{sys.implementation.cache_tag}.pyc" for name in sources]
    version = subprocess.run(
        [sys.executable, "-I", "-S", str(app / ".guardian" / "guardian-runner.py"), "--version"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert version.stdout.strip() == f"guardian-runner 0.1.0 (bundle {bundle_digest()})"


def test_a_run_uses_the_installed_runner_and_writes_nothing_into_it(app: Path) -> None:
    install(app)
    guardian = app / ".guardian"
    before = tree(guardian)
    dry = run(app, dry_run=True)
    assert (dry["outcome"], dry["runner_code"]) == ("healthy", "installed")
    assert tree(guardian) == before, "a dry run changed Guardian's directory"
    real = run(app)
    assert (real["outcome"], real["runner_code"]) == ("healthy", "installed")
    # A real run writes its journal, lock and metrics (state/, metrics/), and nothing else there.
    after = {path: facts for path, facts in tree(guardian).items() if path.split("/")[0] not in ("state", "metrics")}
    assert after.pop(".") != before.pop(".")
    assert after == before, "a run wrote into the installed runner (bytecode?)"
    assert run(app, action="collect")["runner_code"] == "installed"
    assert run(app, action="status")["runner_code"] == "streamed"  # the code it was sent, always


def test_other_code_or_none_installed_streams(app: Path) -> None:
    assert run(app)["runner_code"] == "streamed"  # nothing installed
    install(app)
    record = app / ".guardian" / "runner" / RECORD_FILE
    record.write_text(json.dumps({"bundle": "0ldc0de0ldc0"}))
    result = run(app)
    assert (result["outcome"], result["runner_code"]) == ("healthy", "streamed")
    assert not any("installed runner" in w for w in result.get("warnings", []))


@pytest.mark.parametrize("target", ["guardian_agent/main.py", "guardian_agent/__pycache__", RECORD_FILE])
def test_a_writable_installed_file_is_refused_not_run(app: Path, target: str) -> None:
    install(app)
    runner = app / ".guardian" / "runner"
    # Were the installed code run, this line would leave its mark.
    main = runner / "guardian_agent" / "main.py"
    main.write_text(main.read_text() + f"\nopen({str(app / 'ran-installed')!r}, 'w').close()\n")
    path = runner / target
    path.chmod(stat.S_IMODE(path.stat().st_mode) | stat.S_IWOTH)
    result = run(app)
    assert result["outcome"] == "untrusted" and result["runner_code"] == "streamed"
    assert str(path) in result["reason"] and "writable by others" in result["reason"]
    assert not (app / "ran-installed").exists()
    assert not (app / "logs").exists()  # nothing ran: not even a log line


def test_the_probe_never_accepts_what_the_trust_check_refuses(app: Path) -> None:
    install(app)
    install_dir = app / ".guardian"
    config = {"action": "run", "app_dir": str(app), "guardian_dir": ".guardian"}
    assert probe(config, bundle_digest()) == (str(install_dir / "runner"), "")
    assert probe(config, "another") == ("", "") and probe({**config, "action": "deploy"}, bundle_digest()) == ("", "")
    pyc = next((install_dir / "runner" / "guardian_agent" / "__pycache__").iterdir())
    changes = {
        "a pyc others may write": (lambda: pyc.chmod(0o646), True),
        "a directory its group may write": (lambda: (install_dir / "runner").chmod(0o770), True),
        "a pyc another user owns": (lambda: os.chown(pyc, 65534, -1), True),
        "a symlink in the package": (lambda: (pyc.parent.parent / "x.py").symlink_to("/etc/hostname"), False),
    }
    for name, (change, refused) in changes.items():
        shutil.rmtree(install_dir)
        install(app)
        change()
        problems = untrusted(runner_tree(str(install_dir)), owners=(os.getuid(),))
        assert bool(problems) == refused, name
        here, why = probe(config, bundle_digest())
        assert here == "" and why, f"the probe accepted {name}"


def test_deploy_compares_every_file_of_the_package(app: Path) -> None:
    from remediation.agent.bootstrap import own_sources
    from remediation.agent.installed import desired_tree

    installer = install(app)
    package = app / ".guardian" / "runner" / "guardian_agent"
    sources, digest = own_sources()
    desired = desired_tree(installer.install_dir, sources, digest, "0.1.0")
    assert tree_changes(desired) == ([], [])
    (package / "plan.py").write_text("# edited by hand\n")
    next((package / "__pycache__").glob("locks.*.pyc")).unlink()
    (package / "__pycache__" / "plan.cpython-27.pyc").write_bytes(b"old")
    (package / "locks.py").chmod(0o644)
    writes, stale = tree_changes(desired)
    tag = sys.implementation.cache_tag
    assert sorted(Path(str(w["path"])).name for w in writes) == [f"locks.{tag}.pyc", "locks.py", "plan.py"]
    assert stale == [str(package / "__pycache__" / "plan.cpython-27.pyc")]
    # A second deploy puts it right: one change item for the whole package.
    again = Installer({"app_dir": str(app), "manager": "signal"}, lambda event: None)
    again.ensure_runner_tree()
    (item,) = [c for c in again.changes if c["item"] == ".guardian/runner" and c["action"] != "unchanged"]
    assert item["action"] == "update" and "3 file(s) to write, 1 to remove" in item["detail"]
    assert tree_changes(desired) == ([], [])
    assert stat.S_IMODE((package / "locks.py").stat().st_mode) == 0o640


def test_the_script_without_a_config_never_looks_for_an_installed_runner(tmp_path: Path) -> None:
    script = build_runner(None)
    assert 'probe(_CONFIG, ' in script and "if _CONFIG is not None" in script


def test_a_run_reports_what_it_cost_the_host_check_included(app: Path) -> None:
    """``runner_cpu``: the runner's own CPU and its children's (the check), as the host counts it."""
    quick = run(app)["runner_cpu"]
    assert 0 < quick < 5
    busy = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end:\n    pass\n"
    (app / "pre_market_health_check.py").write_text(busy + HEALTHY)
    slow = run(app)
    assert slow["outcome"] == "healthy"
    assert slow["runner_cpu"] >= quick + 0.35  # the check's 0.4 CPU-s are counted
