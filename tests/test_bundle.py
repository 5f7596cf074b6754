"""The runner script: the same program streamed as ``python3 -c`` and installed by deploy, small
enough for one command-line argument, and able to install a copy of itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from remediation.agent.bootstrap import own_script
from remediation.execution.bundle import build_runner, bundle_digest
from remediation.execution.hostrun import JobOptions, runner_command
from remediation.inventory import load_inventory

#: Linux refuses a single command-line argument longer than this (MAX_ARG_STRLEN, 32 pages).
MAX_ARG_STRLEN = 131072
EXIT_LINE = "sys.exit(main(sys.argv[1:], config=_CONFIG))\n"


def test_the_script_names_its_entry_point_and_digest() -> None:
    script = build_runner(None)
    assert script.endswith("from guardian_agent.main import main\n_CONFIG = None\n" + EXIT_LINE)
    assert f"(bundle {bundle_digest()})" in script.splitlines()[0]


def test_a_running_script_writes_a_byte_for_byte_copy_of_itself() -> None:
    """What deploy installs as guardian-runner.py is the program the controller built."""
    script = build_runner(None)
    probe = script.replace(
        EXIT_LINE, "from guardian_agent.bootstrap import own_script\nsys.stdout.write(own_script())\n"
    )
    copy = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert copy == script
    assert own_script() == script  # outside a script (the controller, tests): built from the files


def test_the_deploy_command_carries_the_runner_once_and_fits_one_argument(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(json.dumps({"groups": {"g": {"hosts": {"h01": {"address": "192.0.2.1"}}}}}))
    host = load_inventory([path]).hosts["h01"]
    run = runner_command(host, JobOptions(run_id="r"))
    deploy = runner_command(host, JobOptions(run_id="r", action="deploy"))
    assert len(deploy) - len(run) < 8192, "the deploy command must not embed the runner a second time"
    for command in (run, deploy):
        assert len(command) < MAX_ARG_STRLEN * 3 // 4, f"the runner script is {len(command)} bytes: near the limit"
