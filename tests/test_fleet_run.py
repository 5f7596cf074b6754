"""FleetRun with scripted host runs (no SSH, no lab): Ctrl-C, host deadlines, rolling batches and
the blast-radius survey, checked in the report an operator reads."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fake_hosts import (
    CTRL_C_REASON,
    SERVICES,
    FakeFleet,
    FakeSession,
    Script,
    ctrl_c_after,
    hangs,
    local_hosts,
    runner,
    unreachable,
)

from remediation.execution.fleet import FleetRun
from remediation.execution.hostrun import JobOptions
from remediation.execution.survey import BlastGuard
from remediation.execution.transport import ConnectOptions
from remediation.inventory import HostSpec
from remediation.reporting.report import HostReport, ReportStore, RunReport

RUN_ID = "20260302T133001Z-f00d"
UW, SIP = "uw_socket", "alpaca_sip_delay"
UW_DAEMON, BOT = SERVICES[UW], SERVICES[SIP]


@dataclass
class Fleet:
    """One fleet run with fake hosts, and what it showed the operator."""

    fake: FakeFleet
    report: RunReport
    saved: RunReport
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def outcomes(self) -> dict[str, str]:
        return {h.host: h.outcome for h in self.report.hosts}

    def host(self, name: str) -> HostReport:
        return next(h for h in self.report.hosts if h.host == name)


class RunFleet:
    """``run_fleet(scripts, **fleet_options)``: a FleetRun over fake hosts (one per script, or
    ``hosts``), returning a :class:`Fleet`. A Ctrl-C that escaped FleetRun would stop pytest
    itself: it fails the test instead."""

    def __init__(self, reports: Path) -> None:
        self.reports = reports
        self.made: list[FakeFleet] = []

    def __call__(
        self,
        scripts: Mapping[str, Script],
        *,
        hosts: Sequence[HostSpec] | None = None,
        job: JobOptions | None = None,
        forks: int = 32,
        blast: BlastGuard | None = None,
        batches: list[list[str]] | None = None,
        max_fail_percent: float | None = None,
        stop_grace: float = 10.0,
        ctrl_c_when_starting: str | None = None,
    ) -> Fleet:
        fake = FakeFleet(scripts, ctrl_c_when_starting=ctrl_c_when_starting)
        self.made.append(fake)
        job = job or JobOptions(run_id=RUN_ID)
        notices: list[str] = []
        store = ReportStore(self.reports)
        started = time.monotonic()
        try:
            report = FleetRun(
                hosts if hosts is not None else local_hosts(*scripts),
                None,
                job,
                connect=ConnectOptions(),
                store=store,
                forks=forks,
                options={},
                progress=lambda host, phase: None,
                summarize=None,
                blast=blast,
                batches=batches,
                max_fail_percent=max_fail_percent,
                notify=notices.append,
                stop_grace=stop_grace,
                host_run=fake,
            ).run()
            seconds = time.monotonic() - started
            fake.wait_idle()  # no script may press Ctrl-C once the run is over
        except KeyboardInterrupt:
            pytest.fail("a Ctrl-C escaped FleetRun.run")
        return Fleet(fake, report, store.load(job.run_id), notices, seconds)


@pytest.fixture
def run_fleet(tmp_path: Path) -> Iterator[RunFleet]:
    runs = RunFleet(tmp_path / "reports")
    yield runs
    for fake in runs.made:
        fake.wait_idle()


def test_every_host_ends_with_its_outcome_and_one_bad_host_stops_no_other(run_fleet: RunFleet) -> None:
    fleet = run_fleet({"h1": runner(), "h2": unreachable(), "h3": runner(UW)})
    assert fleet.outcomes == {"h1": "healthy", "h2": "unreachable", "h3": "healed"}
    assert "Connection refused" in fleet.host("h2").reason
    assert fleet.report.exit_code == 4 and fleet.report.complete and not fleet.report.interrupted
    assert fleet.saved.to_dict() == fleet.report.to_dict()  # what is on disk is what was returned
    assert [a["result"] for a in fleet.host("h3").actions] == ["ok"]


# -- Ctrl-C ------------------------------------------------------------------------------


def test_first_ctrl_c_asks_running_hosts_to_stop_and_waits_for_what_they_did(run_fleet: RunFleet) -> None:
    """h1 has finished, h2 is inside a restart, h3 is settling, h4 (which took h1's worker) is
    checking when the operator presses Ctrl-C: h1 keeps its outcome, h2 finishes its restart and
    reports it, h3 and h4 stop at once; the run waits for them, not for the grace."""
    h1_done: list[bool] = []

    def press_once_h1_is_done(session: FakeSession) -> None:
        deadline = time.monotonic() + 5
        while not h1_done and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # h1's result reaches the controller's loop first
        session.ctrl_c()

    def healthy_h1(session: FakeSession) -> None:
        runner()(session)
        h1_done.append(True)

    fleet = run_fleet(
        {
            "h1": healthy_h1,
            "h2": runner(UW, action_seconds=1.0, during_action=press_once_h1_is_done),
            "h3": runner(SIP, settle_seconds=60),
            "h4": runner(UW, check_seconds=60),
        },
        forks=3,
        stop_grace=20,
    )
    report = fleet.report
    assert report.interrupted and report.complete and report.exit_code == 130
    assert fleet.saved.exit_code == 130 and fleet.saved.interrupted
    assert fleet.outcomes == {"h1": "healthy", "h2": "interrupted", "h3": "interrupted", "h4": "interrupted"}
    assert fleet.notices[0].startswith("Ctrl-C: asking 3 running host(s) to stop at their next safe point")
    assert "(up to 20s)" in fleet.notices[0] and "press Ctrl-C again to cut them off now" in fleet.notices[0]
    # Each running host was asked once, with the reason its log will show.
    for name in ("h2", "h3", "h4"):
        (session,) = fleet.fake.sessions_of(name)
        assert session.control == [{"stop": CTRL_C_REASON}]
    # h2's restart was in hand: it finished, and the report says it is done.
    h2 = fleet.host("h2")
    assert [(a["target"], a["result"]) for a in h2.actions] == [(UW_DAEMON, "ok")]
    assert h2.reason == f"stopped: {CTRL_C_REASON}; done before stopping: restart {UW_DAEMON} ok; not re-verified"
    assert [(a["target"], a["result"]) for a in fleet.host("h3").actions] == [(BOT, "ok")]
    assert fleet.host("h4").actions == []
    assert fleet.host("h4").reason == f"stopped: {CTRL_C_REASON}; nothing changed"
    assert fleet.seconds < 10  # it waited for the hosts, not for the 20 s grace


def test_ctrl_c_while_hosts_are_still_being_started_gives_a_complete_report(run_fleet: RunFleet) -> None:
    fleet = run_fleet(
        {"h1": runner(UW, action_seconds=0.3), "h2": runner(UW), "h3": runner(UW)},
        ctrl_c_when_starting="h2",
    )
    assert fleet.report.complete and fleet.report.interrupted and fleet.saved.exit_code == 130
    assert set(fleet.outcomes.values()) == {"interrupted"}
    assert fleet.fake.hosts_run() <= {"h1"}  # nothing started after the Ctrl-C
    assert all(s.control == [{"stop": CTRL_C_REASON}] for s in fleet.fake.sessions_of("h1"))


def test_hosts_that_never_started_are_not_reported_as_cut_mid_run(run_fleet: RunFleet) -> None:
    """A host still waiting for a worker at Ctrl-C was never contacted: its reason must not send
    the operator looking for a session that was closed or a journal on the host."""
    fleet = run_fleet(
        {"h1": runner(UW, action_seconds=0.5, during_action=FakeSession.ctrl_c), "h2": runner(UW)},
        forks=1,
    )
    assert fleet.outcomes == {"h1": "interrupted", "h2": "interrupted"}
    assert "h2" not in fleet.fake.hosts_run()
    reason = fleet.host("h2").reason
    assert "session was closed" not in reason and "while running" not in reason, reason
    assert reason == "interrupted before this host finished"


def test_the_grace_running_out_cuts_the_session_and_marks_the_action_in_hand_interrupted(run_fleet: RunFleet) -> None:
    fleet = run_fleet(
        {"h1": runner(UW, action_seconds=3600, during_action=FakeSession.ctrl_c), "h2": runner()},
        stop_grace=0.5,
    )
    assert fleet.report.exit_code == 130 and fleet.outcomes == {"h1": "interrupted", "h2": "healthy"}
    assert fleet.seconds < 5
    (session,) = fleet.fake.sessions_of("h1")
    assert session.control == [{"stop": CTRL_C_REASON}]  # asked first, then cut
    h1 = fleet.host("h1")
    (action,) = h1.actions
    assert (action["target"], action["result"]) == (UW_DAEMON, "interrupted")
    assert f".guardian/state/journal/{RUN_ID}.json" in action["detail"]
    assert h1.reason == (
        f"interrupted (Ctrl-C) while running; the host's session was closed; actions started on the host: restart {UW_DAEMON}"
    )
    assert fleet.saved.to_dict()["hosts"][0]["actions"][0]["result"] == "interrupted"


def test_a_second_ctrl_c_cuts_at_once(run_fleet: RunFleet) -> None:
    def press_again(session: FakeSession) -> None:
        time.sleep(0.3)  # the controller is waiting for the hosts by now
        session.ctrl_c()

    fleet = run_fleet(
        {"h1": runner(UW, action_seconds=3600, during_action=FakeSession.ctrl_c, on_stop=press_again)},
        stop_grace=60,
    )
    assert fleet.notices[-1] == "Ctrl-C again: cutting the remaining sessions"
    assert fleet.seconds < 10  # not the 60 s grace
    assert fleet.report.exit_code == 130 and fleet.outcomes == {"h1": "interrupted"}
    assert [a["result"] for a in fleet.host("h1").actions] == ["interrupted"]


def test_ctrl_c_during_a_separate_survey_changes_nothing_and_says_so(run_fleet: RunFleet) -> None:
    """forks < hosts: the blast-radius survey is a first run of its own. A host whose survey run
    ends "surveyed" during the grace is reported interrupted before acting; no host acts."""
    fleet = run_fleet(
        {
            "h1": runner(UW, check_seconds=0.6, check_stoppable=False, during_check=ctrl_c_after(0.3)),
            "h2": runner(UW, check_seconds=60),
            "h3": runner(UW),
            "h4": runner(UW),
        },
        forks=2,
        blast=BlastGuard(),
    )
    assert fleet.report.exit_code == 130
    assert fleet.outcomes["h1"] == "interrupted"
    assert fleet.host("h1").reason == "checked, then interrupted (Ctrl-C) before acting; nothing changed"
    assert all(s.job.defer for s in fleet.fake.sessions)  # only survey runs happened
    assert all(h.actions == [] for h in fleet.report.hosts)


# -- host deadline -------------------------------------------------------------------------


def test_a_host_past_its_deadline_fails_and_the_others_do_not_wait(run_fleet: RunFleet) -> None:
    hosts = [*local_hosts("slow", host_deadline=1.0), *local_hosts("h2", "h3")]
    fleet = run_fleet({"slow": hangs(), "h2": runner(), "h3": runner(UW)}, hosts=hosts)
    assert fleet.outcomes == {"slow": "failed", "h2": "healthy", "h3": "healed"}
    assert fleet.host("slow").reason == "host deadline of 1s exceeded; the run on the host was cut off"
    assert fleet.report.exit_code == 2 and not fleet.report.interrupted
    (session,) = fleet.fake.sessions_of("slow")
    assert 0.5 <= session.timeout <= 1.0  # the session is given what is left of the deadline
    assert fleet.seconds < 5
    first_start = min(s.started for s in fleet.fake.sessions)
    assert max(s.ended or 0 for s in fleet.fake.sessions if s.host != "slow") - first_start < 1  # no waiting


def test_an_action_cut_off_by_the_deadline_is_not_left_started(run_fleet: RunFleet) -> None:
    fleet = run_fleet({"slow": hangs(after_action=True)}, hosts=local_hosts("slow", host_deadline=1.0))
    host = fleet.host("slow")
    assert host.outcome == "failed"
    (action,) = host.actions
    assert action["result"] != "started", action  # the report is final: a result, or interrupted
    assert ".guardian/state/journal" in action.get("detail", "")


# -- rolling batches -------------------------------------------------------------------------

SIX = ["h1", "h2", "h3", "h4", "h5", "h6"]
BATCHES = [["h1", "h2"], ["h3", "h4"], ["h5", "h6"]]


def rolling_scripts() -> dict[str, Script]:
    return {name: unreachable() if name in ("h2", "h3") else runner(UW) for name in SIX}


def test_rolling_batches_stop_once_failures_pass_max_fail_percent(run_fleet: RunFleet) -> None:
    fleet = run_fleet(rolling_scripts(), batches=BATCHES, max_fail_percent=30, blast=BlastGuard())
    assert fleet.outcomes == {
        "h1": "healed",
        "h2": "unreachable",
        "h3": "unreachable",
        "h4": "healed",
        "h5": "skipped",
        "h6": "skipped",
    }
    why = "stopped after batch 2 of 3: 2 of 6 hosts failed or unreachable (33% > --max-fail-percent 30%): h2, h3"
    assert fleet.report.stopped_reason == why == fleet.saved.stopped_reason
    assert fleet.host("h5").reason == f"not started: {why}"
    assert fleet.fake.hosts_run() == {"h1", "h2", "h3", "h4"}  # later batches were never contacted
    assert fleet.report.exit_code == 4
    # One batch at a time: the second starts once the first has finished.
    first = [s for s in fleet.fake.sessions if s.host in BATCHES[0]]
    second = [s for s in fleet.fake.sessions if s.host in BATCHES[1]]
    assert min(s.started for s in second) >= max(s.ended or 0 for s in first)
    # A rolling recovery is its own blast-radius limit: no survey, no gate.
    assert not any(s.job.defer or s.job.gate for s in fleet.fake.sessions)


@pytest.mark.parametrize("max_fail_percent", [34, None])
def test_rolling_batches_all_run_below_the_threshold(run_fleet: RunFleet, max_fail_percent: float | None) -> None:
    fleet = run_fleet(rolling_scripts(), batches=BATCHES, max_fail_percent=max_fail_percent)
    assert fleet.outcomes["h5"] == fleet.outcomes["h6"] == "healed"
    assert fleet.report.stopped_reason == ""
    assert fleet.fake.hosts_run() == set(SIX)


# -- the blast-radius survey -----------------------------------------------------------------

INCIDENT = {
    "signature": UW,
    "hosts": ["h1", "h2", "h3"],
    "selected": 5,
    "threshold_percent": 50.0,
    "forced": False,
}
WHY_NOT = (
    f"common-cause incident: {UW} on 3 of 5 hosts (> 50%); not acting on any of them. Re-run with --force to act anyway"
)


def survey_scripts() -> dict[str, Script]:
    """uw_socket on 3 of 5 hosts (an upstream outage), sip on one, one healthy."""
    return {"h1": runner(UW), "h2": runner(UW), "h3": runner(UW), "h4": runner(SIP), "h5": runner()}


def test_gated_survey_holds_an_incident_back_in_one_session_per_host(run_fleet: RunFleet) -> None:
    """forks >= hosts: each host checks, waits at its gate holding its lock, and is told which
    signatures not to act on; one session per host."""
    fleet = run_fleet(survey_scripts(), forks=5, blast=BlastGuard())
    for name in ("h1", "h2", "h3", "h4", "h5"):
        (session,) = fleet.fake.sessions_of(name)
        assert session.job.gate and not session.job.defer
    for name in ("h1", "h2", "h3"):
        assert fleet.fake.sessions_of(name)[0].control == [{"suppress": {UW: WHY_NOT}}]
        assert fleet.host(name).outcome == "still-unhealthy" and fleet.host(name).actions == []
    assert fleet.fake.sessions_of("h4")[0].control == [{"suppress": {}}]  # sip on 1 of 5: act
    assert fleet.fake.sessions_of("h5")[0].control == []  # healthy: never waited at a gate
    assert fleet.outcomes["h4"] == "healed" and fleet.outcomes["h5"] == "healthy"
    assert fleet.report.incidents == [INCIDENT] == fleet.saved.incidents


def test_separate_survey_runs_first_then_acts_with_the_incident_held_back(run_fleet: RunFleet) -> None:
    """forks < hosts: a waiting host could starve the others, so the survey is a run of its own
    (the runner defers) and a second run acts."""
    fleet = run_fleet(survey_scripts(), forks=2, blast=BlastGuard())
    for name in ("h1", "h2", "h3", "h4"):
        survey, act = fleet.fake.jobs_of(name)
        assert survey.defer and not survey.gate
        assert not act.defer and not act.gate
        assert act.suppress == ({UW: WHY_NOT} if name != "h4" else {})
    (only,) = fleet.fake.jobs_of("h5")  # healthy at the survey: final, no second run
    assert only.defer
    assert fleet.outcomes == {
        "h1": "still-unhealthy",
        "h2": "still-unhealthy",
        "h3": "still-unhealthy",
        "h4": "healed",
        "h5": "healthy",
    }
    assert fleet.report.incidents == [INCIDENT]
    # Each host acts as soon as the surveys that came back decide it, and not before: uw_socket
    # is an incident once 3 of 5 hosts have it; sip on h4 is decided once at most one host is
    # unknown (1 + 1 of 5 is not > 50%).
    surveys = sorted(s.ended or 0 for s in fleet.fake.sessions if s.job.defer)
    acts = {s.host: s.started for s in fleet.fake.sessions if not s.job.defer}
    uw_known = max(s.ended or 0 for s in fleet.fake.sessions if s.job.defer and s.host in ("h1", "h2", "h3"))
    assert all(acts[name] >= uw_known for name in ("h1", "h2", "h3"))
    assert acts["h4"] >= surveys[3]


@pytest.mark.parametrize("forks", [5, 2])
def test_force_acts_on_an_incident_and_still_records_it(run_fleet: RunFleet, forks: int) -> None:
    fleet = run_fleet(survey_scripts(), forks=forks, blast=BlastGuard(force=True))
    assert [fleet.outcomes[h] for h in ("h1", "h2", "h3", "h4")] == ["healed"] * 4
    assert fleet.report.incidents == [{**INCIDENT, "forced": True}]


@pytest.mark.parametrize("forks", [5, 2])
def test_a_signature_on_few_hosts_is_acted_on(run_fleet: RunFleet, forks: int) -> None:
    scripts = {"h1": runner(UW), "h2": runner(), "h3": runner(), "h4": runner(SIP), "h5": runner()}
    fleet = run_fleet(scripts, forks=forks, blast=BlastGuard())
    assert fleet.outcomes["h1"] == fleet.outcomes["h4"] == "healed"
    assert fleet.report.incidents == []


def test_no_survey_below_min_hosts_or_on_a_dry_run(run_fleet: RunFleet) -> None:
    few = run_fleet({"h1": runner(UW), "h2": runner(UW), "h3": runner(UW)}, blast=BlastGuard(min_hosts=4))
    assert not any(s.job.gate or s.job.defer for s in few.fake.sessions)
    assert set(few.outcomes.values()) == {"healed"} and few.report.incidents == []
    dry = run_fleet(survey_scripts(), blast=BlastGuard(), job=JobOptions(run_id="20260302T133002Z-d0d0", dry_run=True))
    assert len(dry.fake.sessions) == 5 and not any(s.job.gate or s.job.defer for s in dry.fake.sessions)
