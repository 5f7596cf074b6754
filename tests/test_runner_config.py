"""The runner's one contract (agent/config.py): its defaults are the inventory's, it refuses what
it does not know, and cron's config.json is the host's settings and nothing of one run."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from remediation.agent import records
from remediation.agent.config import (
    DEFAULT_SCHEDULES,
    DEFAULT_SERVICES,
    LEGACY_CRON_KEYS,
    DeployFields,
    HostSettings,
    JobFields,
    RunnerConfig,
    RunnerConfigError,
    inventory_settings,
    runner_defaults,
)
from remediation.execution.bundle import build_runner
from remediation.execution.hostrun import JobOptions, runner_config
from remediation.inventory import load_inventory
from remediation.inventory.settings import DEFAULTS, VALIDATORS

JOB_ONLY = {f.name for f in records.fields(JobFields)} | {f.name for f in records.fields(DeployFields)}


def local_host(tmp_path: Path, **settings: Any) -> Any:
    path = tmp_path / "inv.yml"
    host = {"transport": "local", "app_dir": str(tmp_path / "app"), "python": sys.executable, **settings}
    path.write_text(json.dumps({"groups": {"here": {"hosts": {"local": host}}}}))
    return load_inventory([path]).hosts["local"]


def test_the_runner_defaults_are_the_inventory_defaults() -> None:
    defaults = runner_defaults()
    assert set(defaults) == set(inventory_settings())
    assert len(defaults) >= 17
    for key, value in defaults.items():
        assert key in DEFAULTS and key in VALIDATORS, key
        assert DEFAULTS[key] == value and type(DEFAULTS[key]) is type(value), key
        assert VALIDATORS[key](value) == value, key  # the default passes its own validator
    assert DEFAULTS["restart_timeout"] == HostSettings().restart_timeout == 20.0
    assert DEFAULTS["lock_wait"] == HostSettings().lock_wait == 5.0
    assert DEFAULTS["services"] == DEFAULT_SERVICES and DEFAULTS["schedules"] == DEFAULT_SCHEDULES
    assert DeployFields().schedules == DEFAULT_SCHEDULES


def test_the_job_defaults_are_the_controllers() -> None:
    """A field the controller's JobOptions and the runner's JobFields share has one default."""
    job, options = JobFields(), JobOptions(run_id="x")
    for f in dataclasses.fields(JobOptions):
        if hasattr(job, f.name) and f.name != "run_id":
            mine, theirs = getattr(job, f.name), getattr(options, f.name)
            assert (list(mine) if isinstance(mine, list) else mine) == (
                list(theirs) if isinstance(theirs, tuple) else theirs
            ), f.name


def test_defaults_are_fresh_copies() -> None:
    first, second = HostSettings(), HostSettings()
    first.services["uw-daemon"]["name"] = "changed"
    assert second.services["uw-daemon"]["name"] == "uw-daemon" == DEFAULT_SERVICES["uw-daemon"]["name"]
    runner_defaults()["check_args"].append("--oops")
    assert DEFAULTS["check_args"] == [] and HostSettings().check_args == []


def test_the_parts_never_share_a_key() -> None:
    names = [f.name for part in (HostSettings, JobFields, DeployFields) for f in records.fields(part)]
    assert len(names) == len(set(names))


def test_a_config_round_trips_through_plain_json() -> None:
    config = RunnerConfig(
        HostSettings(host="h01", lock_wait=0.5, services={"x": {"name": "x", "program": "x.py", "pidfile": "x.pid"}}),
        JobFields(run_id="r1", dry_run=True, only=["locks"], suppress={"uw_socket": "incident"}),
        DeployFields(remove=True, cron_config=HostSettings(runner="cron")),
    )
    wire = json.loads(json.dumps(config.to_dict()))
    assert RunnerConfig.from_dict(wire) == config
    assert RunnerConfig.from_dict({}) == RunnerConfig()
    assert RunnerConfig.from_dict({"action": "deploy"}).deploy == DeployFields()
    assert RunnerConfig.from_dict({"action": "run"}).deploy is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lock_wiat": 5}, "unknown runner config key 'lock_wiat'; known keys: "),
        ({"cron_config": {"dry_run": True}}, "unknown key 'cron_config.dry_run' in HostSettings"),
        ({"lock_wait": "5"}, "runner config lock_wait: expected float, got '5'"),
        ({"dry_run": 1}, "runner config dry_run: expected bool, got 1"),
        ({"collect_max_bytes": 1.5}, "runner config collect_max_bytes: expected int"),
        ({"check_args": "--fast"}, "runner config check_args: expected a list"),
        ({"check_args": ["--fast", 3]}, r"runner config check_args\[1\]: expected str, got 3"),
        ({"services": {"uw-daemon": {"name": 7}}}, "runner config services.uw-daemon.name: expected str"),
        ({"host": 3}, "runner config host: expected str"),
    ],
)
def test_unknown_keys_and_wrong_types_are_refused_with_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(RunnerConfigError, match=message):
        RunnerConfig.from_dict(data)


def test_the_controller_sends_every_inventory_setting_and_the_job(tmp_path: Path) -> None:
    host = local_host(tmp_path, lock_wait=0.5, manager="signal")
    config = runner_config(host, JobOptions(run_id="r1", dry_run=True, only=("locks",), check="other.py"))
    assert config.settings.lock_wait == 0.5 and config.settings.manager == "signal"
    assert config.settings.check == "other.py" and config.settings.host == "local"
    assert config.settings.restart_timeout == host.get("restart_timeout") == 20.0
    assert config.job.dry_run and config.job.only == ["locks"] and config.job.control
    assert config.job.gate_timeout == host.get("host_deadline")
    assert config.deploy is None
    assert RunnerConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_cron_config_json_holds_the_hosts_settings_and_no_job_key(tmp_path: Path) -> None:
    host = local_host(tmp_path)
    job = JobOptions(run_id="r1", action="deploy", dry_run=True, force=True, reset_breaker=True, gate=True)
    config = runner_config(host, job)
    assert config.deploy is not None
    cron = config.deploy.cron_config.to_dict()
    assert set(cron) == {f.name for f in records.fields(HostSettings)}
    assert not set(cron) & JOB_ONLY
    assert cron["runner"] == "cron" and cron["host"] == "local"
    assert HostSettings.from_dict(cron) == records.replace(config.settings, runner="cron")
    # What deploy writes to the host is exactly that.
    from remediation.agent.deploy import CONFIG_NAME, Installer

    installer = Installer(config, lambda event: None)
    written = next(f for f in installer.desired_files() if str(f["path"]).endswith(CONFIG_NAME))
    assert json.loads(bytes(written["data"])) == cron


def test_an_older_config_json_with_job_keys_is_still_read() -> None:
    old = {**HostSettings(runner="cron").to_dict(), "suppress": {}, "gate": False, "gate_timeout": 300.0}
    old.pop("journal_keep")
    assert set(LEGACY_CRON_KEYS) >= {"suppress", "gate", "gate_timeout"}
    assert HostSettings.from_cron_config(old) == HostSettings(runner="cron")
    with pytest.raises(RunnerConfigError, match="unknown key 'dry_run'"):
        HostSettings.from_cron_config({**old, "dry_run": True})


def deployed_runner(tmp_path: Path, config: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    """The runner deploy installs, started as cron starts it (``--config``), on a local app."""
    (tmp_path / "guardian-runner.py").write_text(build_runner(None))
    (tmp_path / "config.json").write_text(json.dumps(config))
    return subprocess.run(
        [sys.executable, str(tmp_path / "guardian-runner.py"), "--config", str(tmp_path / "config.json"), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_the_deployed_runner_runs_from_cron_config_json(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "state").mkdir(parents=True)
    (app / "check.py").write_text("print('RESULT: HEALTHY')\n")
    config = runner_config(local_host(tmp_path, manager="signal"), JobOptions(run_id="d", action="deploy"))
    assert config.deploy is not None
    proc = deployed_runner(tmp_path, config.deploy.cron_config.to_dict(), "--format", "text", "--check", "check.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "outcome: healthy" in proc.stdout
    journal = next((app / ".guardian" / "state" / "journal").glob("*-cron-*.json"))
    assert json.loads(journal.read_text())["runner"] == "cron"


def test_the_deployed_runner_refuses_an_unknown_key_and_says_which(tmp_path: Path) -> None:
    proc = deployed_runner(tmp_path, {**HostSettings().to_dict(), "lock_wiat": 1})
    assert proc.returncode == 3
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["event"] == "result" and result["outcome"] == "failed"
    assert "bad runner config: unknown key 'lock_wiat' in HostSettings" in result["reason"]
