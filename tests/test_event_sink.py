"""The controller's side of the runner's stdout: EventSink splits it into JSON events, HostRun turns
them into the host's report. Fed exactly as a session feeds them (text written in pieces), no SSH."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fake_hosts import FakeFleet, FakeSession, local_hosts
from hypothesis import given
from hypothesis import strategies as st

from remediation.execution.hostrun import EventSink, HostRun, JobOptions
from remediation.execution.transport import ConnectOptions
from remediation.reporting.report import ReportStore

RUN_ID = "20260302T133001Z-e0e0"


def line(kind: str, /, **fields: Any) -> str:
    return json.dumps({"event": kind, **fields}) + "\n"


def host_run(tmp_path: Path, *, gate: bool = False, gates: list[tuple[str, list[str], bool]] | None = None) -> HostRun:
    (host,) = local_hosts("h1")
    return HostRun(
        host,
        None,
        JobOptions(run_id=RUN_ID, gate=gate),
        ConnectOptions(),
        ReportStore(tmp_path / "reports"),
        lambda name, phase: None,
        on_gate=(lambda name, sigs, waiting: gates.append((name, sigs, waiting))) if gates is not None else None,
    )


def feed(run: HostRun, *lines: str) -> EventSink:
    sink = EventSink(run._on_event)
    for text in lines:
        sink.write(text)
    return sink


STREAM = (
    line("start", version="0.1.0", hostname="h1", dry_run=False)
    + line("phase", phase="check")
    + "some stray print from a library\n"
    + line("check", which="before", exit_code=2, state="unhealthy", tail="[FAIL] UW socket\n", matches=[])
    + "\n"
    + line("action", index=0, kind="restart", target="uw-daemon", reason="uw_socket", result="started")
)
EVENTS = [json.loads(text) for text in STREAM.splitlines() if text.startswith("{")]


@given(cuts=st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_events_split_across_writes_arrive_whole_once_and_in_order(cuts: list[int]) -> None:
    seen: list[dict[str, Any]] = []
    sink = EventSink(seen.append)
    bounds = [0, *sorted(cuts), len(STREAM)]
    for start, end in zip(bounds, bounds[1:]):
        assert sink.write(STREAM[start:end]) == end - start
    assert seen == EVENTS
    assert sink.noise == ["some stray print from a library"]


def test_a_line_is_an_event_only_once_its_newline_arrives() -> None:
    seen: list[dict[str, Any]] = []
    sink = EventSink(seen.append)
    sink.write('{"event": "phase", "phase": "lock"}\n{"event": "phase", "ph')
    assert seen == [{"event": "phase", "phase": "lock"}]
    sink.write('ase": "check"}')
    assert len(seen) == 1  # still no newline: the runner may not have finished the line
    sink.write("\n")  # what the session does once the command is over
    assert seen[-1] == {"event": "phase", "phase": "check"}


def test_noise_is_kept_bounded_and_never_taken_for_an_event() -> None:
    seen: list[dict[str, Any]] = []
    sink = EventSink(seen.append)
    sink.write('[1, 2]\n"a string"\n{"no": "event key"}\n{"event": broken json\n   \n\n')
    sink.write("".join(f"noise {i} " + "x" * 400 + "\n" for i in range(60)))
    assert seen == []
    assert sink.noise[:4] == ["[1, 2]", '"a string"', '{"no": "event key"}', '{"event": broken json']
    assert len(sink.noise) == 50 and all(len(n) <= 300 for n in sink.noise)  # blank lines are not noise


def test_a_runner_that_prints_only_noise_fails_the_host_with_what_it_printed(tmp_path: Path) -> None:
    def script(session: FakeSession) -> None:
        session.sink.write("Traceback (most recent call last):\nSyntaxError: invalid syntax\n")

    fake = FakeFleet({"h1": script})
    (host,) = local_hosts("h1", python="python3")
    report = fake(
        host, None, JobOptions(run_id=RUN_ID), ConnectOptions(), ReportStore(tmp_path), lambda h, p: None
    ).run()
    assert report.outcome == "failed"
    assert report.reason == (
        "the on-host runner ended (exit 0) without a result: Traceback (most recent call last): | "
        "SyntaxError: invalid syntax. Is python3 (>= 3.9) installed on the host?"
    )


def started(index: int, target: str) -> str:
    return line("action", index=index, kind="restart", target=target, reason="matched", result="started")


def test_action_events_are_kept_as_they_happen_one_entry_per_index(tmp_path: Path) -> None:
    run = host_run(tmp_path)
    feed(run, started(0, "uw-daemon"), started(1, "trading-bot"))
    assert [(a["index"], a["result"]) for a in run.report.actions] == [(0, "started"), (1, "started")]
    feed(run, line("action", index=0, kind="restart", target="uw-daemon", reason="matched", result="ok", new_pid=7))
    assert [(a["target"], a["result"]) for a in run.report.actions] == [("uw-daemon", "ok"), ("trading-bot", "started")]
    assert run.report.actions[0] == {
        "index": 0,
        "kind": "restart",
        "target": "uw-daemon",
        "reason": "matched",
        "result": "ok",
        "new_pid": 7,
    }
    feed(run, line("action", index="2", kind="restart", target="bogus", result="started"))  # not an index
    assert len(run.report.actions) == 2


def test_the_result_replaces_the_running_record_and_later_events_change_nothing(tmp_path: Path) -> None:
    run = host_run(tmp_path)
    before = {"exit_code": 2, "state": "unhealthy", "tail": "x\n", "matches": []}
    final = [{"index": 0, "kind": "restart", "target": "uw-daemon", "reason": "matched", "result": "ok"}]
    feed(
        run,
        started(0, "uw-daemon"),
        started(1, "trading-bot"),
        line(
            "result",
            outcome="healed",
            reason="recovered",
            actions=final,
            locks=[{"name": "a.lock", "stale": True}],
            warnings=["lock dir is odd"],
            breakers={"uw-daemon": {"recent": 1}},
            runner="laptop",
            before=before,
        ),
        started(1, "trading-bot"),
    )
    report = run.report
    assert (report.outcome, report.reason) == ("healed", "recovered")
    assert report.actions == final
    assert report.locks == [{"name": "a.lock", "stale": True}] and report.warnings == ["lock dir is odd"]
    assert report.guards == {"breakers": {"uw-daemon": {"recent": 1}}}
    assert report.before == before  # taken from the result, as no check event came
    run.interrupt()  # a Ctrl-C after the result: what the host reported stands
    assert report.outcome == "healed" and report.actions == final


def test_an_interrupt_marks_started_actions_interrupted_and_keeps_finished_ones(tmp_path: Path) -> None:
    run = host_run(tmp_path)
    feed(
        run,
        started(0, "uw-daemon"),
        line("action", index=0, kind="restart", target="uw-daemon", reason="matched", result="ok"),
        started(1, "trading-bot"),
    )
    run.interrupt()
    report = run.report
    assert report.outcome == "interrupted"
    assert report.reason == (
        "interrupted (Ctrl-C) while running; the host's session was closed; "
        "actions started on the host: restart uw-daemon, restart trading-bot"
    )
    assert report.actions[0]["result"] == "ok"
    assert report.actions[1]["result"] == "interrupted"
    assert report.actions[1]["detail"] == (
        "started on the host, but the session was closed before its result came back; "
        f"the host's journal (.guardian/state/journal/{RUN_ID}.json) records how it ended"
    )
    # Whatever the cut session still delivers changes nothing.
    feed(
        run,
        line("action", index=1, kind="restart", target="trading-bot", result="ok"),
        line("result", outcome="healed"),
    )
    assert report.outcome == "interrupted" and report.actions[1]["result"] == "interrupted"


def test_checks_plan_and_start_land_in_their_fields(tmp_path: Path) -> None:
    run = host_run(tmp_path)
    feed(
        run,
        line("start", version="0.1.0"),
        line("check", which="before", exit_code=1, state="degraded", t=5.0),
        line("plan", recover=True, actions=[{"kind": "restart", "target": "uw-daemon"}], t=6.0),
        line("check", which="after", exit_code=0, state="healthy"),
    )
    report = run.report
    assert report.remote_version == "0.1.0"
    assert report.before == {"exit_code": 1, "state": "degraded"}
    assert report.plan == {"recover": True, "actions": [{"kind": "restart", "target": "uw-daemon"}]}
    assert report.after == {"exit_code": 0, "state": "healthy"}


@pytest.mark.parametrize("gate", [True, False])
def test_the_survey_hears_of_a_host_once_at_its_gate_or_at_a_plan_with_nothing_to_do(
    tmp_path: Path, gate: bool
) -> None:
    gates: list[tuple[str, list[str], bool]] = []
    quiet = host_run(tmp_path, gate=gate, gates=gates)
    feed(quiet, line("plan", recover=False, actions=[]), line("plan", recover=False, actions=[]))
    waiting = host_run(tmp_path, gate=gate, gates=gates)
    feed(waiting, line("plan", recover=True, actions=[]), line("gate", signatures=["uw_socket", "alpaca_sip_delay"]))
    expected = [("h1", ["uw_socket", "alpaca_sip_delay"], True)]
    assert gates == ([("h1", [], False), *expected] if gate else expected)


def file_event(name: str, data: bytes, **overrides: Any) -> str:
    fields = {
        "name": name,
        "data_b64": base64.b64encode(data).decode(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data) * 2,
        "truncated": True,
        **overrides,
    }
    return line("file", **fields)


def test_files_are_stored_only_when_whole_and_safely_named(tmp_path: Path) -> None:
    run = host_run(tmp_path)
    feed(
        run,
        file_event("guardian.log", b"Run finished\n"),
        file_event("bad_sum.log", b"abc", sha256="0" * 64),
        file_event("bad_b64.log", b"abc", data_b64="%%%not base64%%%"),
        file_event("../../escape.txt", b"x"),
    )
    (stored,) = run.report.files
    assert (stored.name, stored.size, stored.collected_bytes, stored.truncated) == ("guardian.log", 26, 13, True)
    assert (tmp_path / "reports" / RUN_ID / stored.path).read_bytes() == b"Run finished\n"
    assert stored.sha256 == hashlib.sha256(b"Run finished\n").hexdigest()
    warnings = run.report.warnings
    assert "file 'bad_sum.log': checksum mismatch, not stored" in warnings
    assert "file 'bad_b64.log': corrupt data, not stored" in warnings
    assert len(warnings) == 3 and "escape.txt" in warnings[2]
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "reports" / "escape.txt").exists()
