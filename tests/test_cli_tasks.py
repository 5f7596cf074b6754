"""The task glue (remediation/cli.py) driven through the real Invoke program, as ``guardian ...``
runs it: flags reach the jobs.* functions as the FleetRequest they document, and the process
exits with the documented codes (0 ok, 2 attention, 3 nothing ran, 4 unreachable, 130 interrupted).

The first half stands in for the jobs; the second runs the real jobs and FleetRun over scripted
host runs (fake_hosts.py: ``transport: local``, no SSH)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fake_hosts import FakeFleet, Script, ctrl_c_after, finishes, runner, unreachable

from remediation import jobs
from remediation.cli import WEBHOOK_ENV, program
from remediation.config import DEFAULT_REPORT_KEEP, GuardianConfig
from remediation.errors import GuardianError
from remediation.execution import fleet
from remediation.reporting.report import LAST_RUN_FILE, ReportStore


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch working directory (the CLI reads guardian.yaml and writes its last-run pointer
    there), with no webhook in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    return tmp_path


@dataclass
class Exited:
    code: int
    out: str
    err: str


def guardian(capsys: pytest.CaptureFixture[str], *argv: str) -> Exited:
    """``guardian ARGV`` as the console script runs it: its exit code and what it printed."""
    code = 0
    try:
        program().run(["guardian", *argv])
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    captured = capsys.readouterr()
    return Exited(code, captured.out, captured.err)


@dataclass
class Jobs:
    """Stand-ins for the jobs.* functions: each records what it was called with and returns
    ``code`` (or raises ``error``)."""

    code: int = 0
    error: BaseException | None = None
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def stand_in(self, name: str) -> Any:
        def job(*args: Any, **kwargs: Any) -> int:
            self.calls.append((name, args, kwargs))
            if self.error is not None:
                raise self.error
            return self.code

        return job

    def request(self) -> jobs.FleetRequest:
        ((_, (request,), _),) = self.calls
        assert isinstance(request, jobs.FleetRequest)
        return request


@pytest.fixture
def fake_jobs(monkeypatch: pytest.MonkeyPatch, here: Path) -> Jobs:
    recorded = Jobs()
    names = ("premarket", "recover", "deploy", "collect", "status", "hold", "release", "show_inventory", "show_report")
    for name in names:
        monkeypatch.setattr(jobs, name, recorded.stand_in(name))
    return recorded


def request(hosts: str, **fields: Any) -> jobs.FleetRequest:
    """The FleetRequest a task builds when only ``fields`` differ from the defaults."""
    defaults: dict[str, Any] = {
        "inventory": [Path("inventory")],
        "rules": [],
        "reports": Path("reports"),
        "ssh_config": "~/.ssh/config",
        "overrides": {"settle_seconds": None, "check_timeout": None, "host_deadline": None},
        "last_run_file": LAST_RUN_FILE,
        "report_keep": DEFAULT_REPORT_KEEP,
    }
    return jobs.FleetRequest(hosts=hosts, **{**defaults, **fields})


# -- flags reach the jobs --------------------------------------------------------------------


def test_premarket_with_no_flags_asks_for_the_documented_defaults(
    capsys: pytest.CaptureFixture[str], fake_jobs: Jobs
) -> None:
    assert guardian(capsys, "premarket", "--hosts", "prod").code == 0
    assert fake_jobs.calls[0][0] == "premarket"
    assert fake_jobs.request() == request("prod")


def test_every_premarket_flag_reaches_the_request(capsys: pytest.CaptureFixture[str], fake_jobs: Jobs) -> None:
    argv = [
        "premarket",
        "--hosts", "prod,!h03",
        "--inventory", "a.yml", "--inventory", "b.yml",
        "--rules", "r.yml",
        "--dry-run",
        "--forks", "7",
        "--check", "other_check.py",
        "--settle", "2.5",
        "--check-timeout", "9",
        "--host-deadline", "30",
        "--accept-new-host-keys",
        "--ssh-config", "",
        "--reports", "out",
        "--json",
        "--force",
        "--blast-radius", "40",
        "--webhook", "http://127.0.0.1:9/hook",
    ]  # fmt: skip
    assert guardian(capsys, *argv).code == 0
    assert fake_jobs.request() == request(
        "prod,!h03",
        inventory=[Path("a.yml"), Path("b.yml")],
        rules=[Path("r.yml")],
        dry_run=True,
        forks=7,
        check="other_check.py",
        overrides={"settle_seconds": 2.5, "check_timeout": 9.0, "host_deadline": 30.0},
        accept_new_host_keys=True,
        ssh_config=None,  # '' means: no ssh_config file
        reports=Path("out"),
        json_output=True,
        force=True,
        blast_percent=40.0,
        webhook="http://127.0.0.1:9/hook",
    )


def test_the_webhook_comes_from_the_environment_unless_given(
    capsys: pytest.CaptureFixture[str], fake_jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, "http://127.0.0.1:9/from-env")
    guardian(capsys, "premarket", "--hosts", "prod")
    guardian(capsys, "premarket", "--hosts", "prod", "--webhook", "http://127.0.0.1:9/flag")
    assert [c[1][0].webhook for c in fake_jobs.calls] == ["http://127.0.0.1:9/from-env", "http://127.0.0.1:9/flag"]


def test_recover_flags_reach_the_request(capsys: pytest.CaptureFixture[str], fake_jobs: Jobs) -> None:
    argv = [
        "recover", "--hosts", "prod",
        "--only", "locks, uw",
        "--serial", "25%",
        "--max-fail-percent", "30",
        "--yes",
        "--reset-breaker",
        "--forks", "4",
    ]  # fmt: skip
    assert guardian(capsys, *argv).code == 0
    assert fake_jobs.calls[0][0] == "recover"
    assert fake_jobs.request() == request(
        "prod", only=["locks", "uw"], serial="25%", max_fail_percent=30.0, yes=True, reset_breaker=True, forks=4
    )


@pytest.mark.parametrize(
    ("argv", "job", "fields"),
    [
        (["deploy", "--hosts", "lab", "--dry-run", "--remove"], "deploy", {"dry_run": True, "remove": True}),
        (["collect", "--hosts", "lab", "--forks", "3", "--json"], "collect", {"forks": 3, "json_output": True}),
        (["deploy", "--hosts", "lab", "--check"], "deploy", {"drift_check": True}),
        (
            ["status", "--hosts", "lab", "--forks", "2", "--webhook", "http://127.0.0.1:9/hook"],
            "status",
            {"forks": 2, "webhook": "http://127.0.0.1:9/hook"},
        ),
        (
            ["hold", "--hosts", "h03", "--for", "2h", "--reason", "kernel upgrade"],
            "hold",
            {"hold_seconds": 7200.0, "hold_reason": "kernel upgrade"},
        ),
        (["release", "--hosts", "h03", "--accept-new-host-keys"], "release", {"accept_new_host_keys": True}),
    ],
)
def test_fleet_task_flags_reach_their_job(
    capsys: pytest.CaptureFixture[str], fake_jobs: Jobs, argv: list[str], job: str, fields: dict[str, Any]
) -> None:
    assert guardian(capsys, *argv).code == 0
    assert fake_jobs.calls[0][0] == job
    assert fake_jobs.request() == request(argv[2], **fields)


def test_guardian_yaml_supplies_what_the_flags_leave_out(
    capsys: pytest.CaptureFixture[str], fake_jobs: Jobs, here: Path
) -> None:
    (here / "guardian.yaml").write_text("inventory: [fleet.yml]\nrules: [extra.yml]\nreports: r\nssh_config: ''\n")
    guardian(capsys, "premarket", "--hosts", "prod")
    guardian(capsys, "premarket", "--hosts", "prod", "--reports", "mine", "--ssh-config", "my.conf")
    first, second = (c[1][0] for c in fake_jobs.calls)
    assert (first.inventory, first.rules, first.reports, first.ssh_config) == (
        [Path("fleet.yml")],
        [Path("extra.yml")],
        Path("r"),
        None,
    )
    assert (second.reports, second.ssh_config) == (Path("mine"), "my.conf")


def test_inventory_and_report_tasks_pass_their_flags(capsys: pytest.CaptureFixture[str], fake_jobs: Jobs) -> None:
    guardian(capsys, "inventory", "--hosts", "lab:h0*", "--inventory", "x.yml", "--ssh-config", "c.conf")
    name, (shown,), _ = fake_jobs.calls[0]
    assert name == "show_inventory"
    assert (shown.hosts, shown.inventory, shown.ssh_config) == ("lab:h0*", [Path("x.yml")], "c.conf")
    guardian(
        capsys, "report", "--run", "20260302T133001Z-7c1e", "--host", "h03", "--history", "--json", "--reports", "rp"
    )
    name, args, kwargs = fake_jobs.calls[1]
    assert (name, args) == ("show_report", (Path("rp"),))
    assert kwargs == {
        "run_id": "20260302T133001Z-7c1e",
        "host": "h03",
        "history": True,
        "json_output": True,
        "config": GuardianConfig(),
        "last_run_file": LAST_RUN_FILE,
        "prune": False,
    }
    guardian(capsys, "report")
    assert fake_jobs.calls[2][1] == (None,)  # no --reports: show_report picks the folder


# -- exit codes --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 2, 4, 130])
@pytest.mark.parametrize("task", ["premarket", "recover", "deploy", "collect"])
def test_the_jobs_exit_code_is_the_process_exit_code(
    capsys: pytest.CaptureFixture[str], fake_jobs: Jobs, task: str, code: int
) -> None:
    fake_jobs.code = code
    assert guardian(capsys, task, "--hosts", "prod").code == code


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["premarket", "--hosts", "prod", "--settle", "soon"], "guardian: expected a number, got 'soon'"),
        (["recover", "--hosts", "prod", "--max-fail-percent", "x"], "guardian: expected a number, got 'x'"),
        (["hold", "--hosts", "h03", "--for", "2h"], "guardian: --reason is required: say why the hosts are held"),
        (
            ["hold", "--hosts", "h03", "--for", "a while", "--reason", "r"],
            "guardian: --for 'a while': expected a duration like 30m, 2h or 1d",
        ),
    ],
)
def test_a_wrong_command_line_exits_3_with_one_line_and_runs_nothing(
    capsys: pytest.CaptureFixture[str], fake_jobs: Jobs, argv: list[str], message: str
) -> None:
    exited = guardian(capsys, *argv)
    assert exited.code == 3
    assert exited.err.strip() == message
    assert fake_jobs.calls == []


def test_a_guardian_error_from_the_job_exits_3_without_a_traceback(
    capsys: pytest.CaptureFixture[str], fake_jobs: Jobs
) -> None:
    fake_jobs.error = GuardianError("inventory/prod.yml:3 (key groups.prod.hosts.h01.port): expected a port number")
    exited = guardian(capsys, "premarket", "--hosts", "prod")
    assert exited.code == 3
    assert exited.err == "guardian: inventory/prod.yml:3 (key groups.prod.hosts.h01.port): expected a port number\n"
    assert "Traceback" not in exited.out + exited.err


def test_a_ctrl_c_before_the_fleet_starts_exits_130(capsys: pytest.CaptureFixture[str], fake_jobs: Jobs) -> None:
    fake_jobs.error = KeyboardInterrupt()
    assert guardian(capsys, "premarket", "--hosts", "prod").code == 130


# -- the real jobs and FleetRun, with scripted hosts ------------------------------------------


@pytest.fixture
def fleet_of(monkeypatch: pytest.MonkeyPatch, here: Path) -> Any:
    """``fleet_of(scripts)``: an inventory of ``transport: local`` hosts named after the scripts
    (group ``fake``), and the FakeFleet the real jobs will run them with."""

    def make(scripts: Mapping[str, Script]) -> FakeFleet:
        hosts = {name: {"transport": "local", "app_dir": str(here / "app")} for name in scripts}
        (here / "inventory").mkdir(exist_ok=True)
        (here / "inventory" / "fake.yml").write_text(json.dumps({"groups": {"fake": {"hosts": hosts}}}))
        fake = FakeFleet(scripts)
        monkeypatch.setattr(jobs, "run_fleet", functools.partial(fleet.run_fleet, host_run=fake))
        return fake

    return make


@pytest.mark.parametrize(
    ("scripts", "code"),
    [
        ({"h1": finishes("healthy"), "h2": finishes("healed"), "h3": finishes("held")}, 0),
        ({"h1": finishes("healthy"), "h2": finishes("still-unhealthy")}, 2),
        ({"h1": finishes("busy"), "h2": finishes("failed")}, 2),
        ({"h1": finishes("still-degraded"), "h2": unreachable()}, 4),
        ({"h1": finishes("healthy"), "h2": finishes("host-key-rejected", "host key CHANGED")}, 4),
    ],
)
def test_outcomes_map_to_the_documented_exit_code(
    capsys: pytest.CaptureFixture[str], fleet_of: Any, here: Path, scripts: dict[str, Script], code: int
) -> None:
    fleet_of(scripts)
    exited = guardian(capsys, "premarket", "--hosts", "fake")
    assert exited.code == code, exited.out + exited.err
    report = ReportStore(here / "reports").load()
    assert report.exit_code == code and report.complete
    assert f"exit code {code} (" in exited.out, exited.out  # the recap says what the shell sees


def test_ctrl_c_during_the_run_exits_130_with_a_complete_report(
    capsys: pytest.CaptureFixture[str], fleet_of: Any, here: Path
) -> None:
    fleet_of({"h1": runner("uw_socket", settle_seconds=60, during_check=ctrl_c_after(0.3)), "h2": finishes("healthy")})
    exited = guardian(capsys, "premarket", "--hosts", "fake")
    assert exited.code == 130, exited.out + exited.err
    report = ReportStore(here / "reports").load()
    assert report.interrupted and report.complete and report.exit_code == 130
    assert {h.host: h.outcome for h in report.hosts} == {"h1": "interrupted", "h2": "healthy"}
    assert "Ctrl-C: asking 1 running host(s) to stop" in exited.out


def test_fleet_flags_reach_each_host_run(capsys: pytest.CaptureFixture[str], fleet_of: Any) -> None:
    fake = fleet_of({name: runner("uw_socket") for name in ("h1", "h2", "h3", "h4")})
    argv = ["recover", "--hosts", "fake", "--only", "uw", "--settle", "0", "--host-deadline", "7", "--forks", "2"]
    assert guardian(capsys, *argv).code == 2  # uw on 4 of 4 hosts: an incident, held back
    for name in ("h1", "h2", "h3", "h4"):
        survey, act = fake.sessions_of(name)  # forks < hosts: the survey is a run of its own
        assert survey.job.defer and not act.job.defer
        assert act.job.command == "recover" and act.job.force  # recover acts whatever the check says
        assert act.job.only == ("uw_socket",)
        assert "uw_socket" in act.job.suppress
        assert 6 <= survey.timeout <= 7  # --host-deadline is each session's time limit
        assert survey.run.host.get("settle_seconds") == 0.0  # --settle overrides the inventory


def test_check_and_dry_run_reach_each_host_run(capsys: pytest.CaptureFixture[str], fleet_of: Any) -> None:
    fake = fleet_of({"h1": finishes("unhealthy")})
    assert guardian(capsys, "premarket", "--hosts", "fake", "--dry-run", "--check", "other_check.py").code == 2
    (session,) = fake.sessions_of("h1")
    assert session.job.dry_run and session.job.check == "other_check.py" and not session.job.force


def test_rolling_flags_stop_later_batches(capsys: pytest.CaptureFixture[str], fleet_of: Any, here: Path) -> None:
    fake = fleet_of({"h1": unreachable(), "h2": runner("uw_socket"), "h3": runner("uw_socket")})
    exited = guardian(capsys, "recover", "--hosts", "fake", "--serial", "1", "--max-fail-percent", "10")
    assert exited.code == 4
    assert {h.host: h.outcome for h in ReportStore(here / "reports").load().hosts} == {
        "h1": "unreachable",
        "h2": "skipped",
        "h3": "skipped",
    }
    assert fake.hosts_run() == {"h1"}
    assert "ROLLING RECOVERY STOPPED" in exited.out
