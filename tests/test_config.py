"""guardian.yaml sets the tasks' defaults; `invoke report` finds the run the last command wrote
and always says which run it shows. Driven through the real Invoke program, in a scratch cwd."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from remediation.cli import program
from remediation.config import load_config
from remediation.errors import ConfigError
from remediation.reporting.report import LAST_RUN_FILE, HostReport, ReportStore, RunReport

CHECK = "print('RESULT: HEALTHY')\n"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch working directory with a local host whose check passes."""
    app = tmp_path / "app"
    (app / "state").mkdir(parents=True)
    (app / "pre_market_health_check.py").write_text(CHECK)
    host = {"transport": "local", "app_dir": str(app), "python": sys.executable, "manager": "signal"}
    (tmp_path / "local.yml").write_text(json.dumps({"groups": {"here": {"hosts": {"local": host}}}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    return tmp_path


def guardian(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    """Run ``guardian ARGV`` as the console script does; returns (stdout, stderr)."""
    program().run(["guardian", *argv], exit=False)
    captured = capsys.readouterr()
    return captured.out, captured.err


def old_run(root: Path, run_id: str = "20200101T000000Z-0001") -> None:
    host = HostReport("old-host", "192.0.2.1", "ssh", outcome="healthy")
    ReportStore(root).save(RunReport(run_id, "premarket", "2020-01-01T00:00:00Z", hosts=[host], complete=True))


def test_config_sets_defaults_and_the_command_line_wins(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "guardian.yaml").write_text("inventory: local.yml\nreports: fleet-reports\nssh_config: ''\n")
    out, err = guardian(capsys, "premarket", "--hosts", "local", "--settle", "0")
    assert "healthy" in out, err
    assert len(ReportStore(here / "fleet-reports").run_ids()) == 1 and not (here / "reports").exists()
    guardian(capsys, "premarket", "--hosts", "local", "--settle", "0", "--reports", "flag-reports")
    assert len(ReportStore(here / "flag-reports").run_ids()) == 1
    assert len(ReportStore(here / "fleet-reports").run_ids()) == 1


def test_config_ssh_config_applies_unless_the_flag_says_none(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "fleet.yml").write_text("groups:\n  g:\n    hosts:\n      h01: {}\n")
    (here / "ssh.conf").write_text("Host h01\n  HostName 192.0.2.77\n  User ops\n")
    (here / "guardian.yaml").write_text("inventory: [fleet.yml]\nssh_config: ssh.conf\n")
    out, _ = guardian(capsys, "inventory", "--hosts", "h01")
    assert "192.0.2.77" in out and "ssh_config (ssh.conf)" in out, out
    out, _ = guardian(capsys, "inventory", "--hosts", "h01", "--ssh-config", "")
    assert "192.0.2.77" not in out and "ops" not in out, out


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("reports: r\ncolour: blue\n", ":2 (key colour)", "unknown setting 'colour'; guardian.yaml takes inventory"),
        ("inventory:\n  - a.yml\n  - 3\n", ":3 (key inventory[1])", "expected a path or a list of paths, got a number"),
        ("reports: [a, b]\n", ":1 (key reports)", "expected a path, got a list"),
        ("ssh_config: 22\n", ":1 (key ssh_config)", "expected a path, or '' for none, got a number"),
        ("reports: ''\n", ":1 (key reports)", "got an empty string"),
        ("- reports\n", ":1", "expected a mapping of settings"),
        ("reports: [unclosed\n", ":2", "YAML syntax error"),
    ],
)
def test_a_bad_config_names_file_line_and_key(tmp_path: Path, text: str, where: str, says: str) -> None:
    (tmp_path / "guardian.yaml").write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / 'guardian.yaml'}{where}: "), str(exc.value)
    assert says in str(exc.value)


def test_a_bad_config_stops_the_command_with_exit_3(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "guardian.yaml").write_text("reports: r\ninventroy: local.yml\n")
    with pytest.raises(SystemExit) as exc:
        program().run(["guardian", "report"])
    assert exc.value.code == 3
    assert "guardian.yaml:2 (key inventroy): unknown setting 'inventroy'" in capsys.readouterr().err


def test_no_config_file_means_the_built_in_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.inventory_paths(None) == [Path("inventory")] and config.rules_paths(None) == []
    assert config.reports_dir(None) == Path("reports") and config.ssh_config_file(None) == "~/.ssh/config"
    assert config.ssh_config_file("") is None and config.reports_dir("x") == Path("x")


def test_report_shows_the_run_the_last_command_wrote_and_says_which(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_run(here / "reports")  # an older run in the default folder
    guardian(capsys, "premarket", "--hosts", "local", "--inventory", "local.yml", "--reports", "elsewhere")
    (run_id,) = ReportStore(here / "elsewhere").run_ids()
    out, _ = guardian(capsys, "report")
    first = out.splitlines()[0]
    assert first.startswith(f"showing run {run_id} (premarket, started ") and "finished" in first, out
    assert f"from {(here / 'elsewhere').resolve()}: the last run started from this directory" in first
    assert "old-host" not in out and "local" in out
    # an explicit folder is used as asked, and still named
    out, _ = guardian(capsys, "report", "--reports", "reports")
    assert out.splitlines()[0].startswith("showing run 20200101T000000Z-0001 (premarket, started 2020-01-01")
    assert "from reports: the latest complete run there" in out.splitlines()[0] and "old-host" in out
    out, _ = guardian(capsys, "report", "--history")
    folder = (here / "elsewhere").resolve()
    assert (
        out.splitlines()[0] == f"history of the runs in {folder} (folder from the last run started from this directory)"
    )
    # --json keeps stdout pure JSON and says which run on stderr
    out, err = guardian(capsys, "report", "--json")
    assert json.loads(out)["run_id"] == run_id and f"showing run {run_id}" in err


def test_report_survives_a_gone_or_broken_pointer(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old_run(here / "reports")
    guardian(capsys, "premarket", "--hosts", "local", "--inventory", "local.yml", "--reports", "elsewhere")
    shutil.rmtree(here / "elsewhere")
    out, _ = guardian(capsys, "report")
    assert "which is gone" in out and "showing run 20200101T000000Z-0001" in out, out
    assert "from reports: the latest complete run there; folder from default" in out
    (here / "guardian.yaml").write_text("reports: reports\n")
    out, _ = guardian(capsys, "report")
    assert "folder from guardian.yaml" in out, out
    LAST_RUN_FILE.write_text("{not json")
    out, _ = guardian(capsys, "report")
    assert "showing run 20200101T000000Z-0001" in out and "which is gone" not in out


def test_version_names_the_same_bundle_digest_as_the_runner(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    from remediation.execution.bundle import build_runner, bundle_digest

    out, _ = guardian(capsys, "--version")
    runner = subprocess.run([sys.executable, "-c", build_runner(), "--version"], capture_output=True, text=True)
    assert f"(bundle {bundle_digest()})" in runner.stdout
    assert out.strip() == f"Guardian {runner.stdout.split()[1]} (bundle {bundle_digest()})", (out, runner.stdout)
