"""Host runs without hosts, for testing the fleet logic, the event sink and the task glue with no
SSH and no lab.

A :class:`ScriptedHostRun` is the real :class:`HostRun` (report building, the control channel,
deadlines, interrupts) with one difference: the command it would run over its session is played
by a script instead. The script writes the on-host runner's JSON events into the real EventSink,
reads the controller's control lines (gate answers, stop requests) from the real ControlStream as
Invoke's stdin thread would, and honours the session timeout as Invoke does (CommandTimedOut).
Hosts are ``transport: local``, so the session itself is a plain Invoke Context and nothing
leaves this machine.

``FakeFleet`` is the ``host_run`` factory FleetRun takes; it records every session it played.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from invoke.exceptions import CommandTimedOut
from invoke.runners import Result

from remediation.errors import ConnectError
from remediation.execution.hostrun import EventSink, HostRun, JobOptions, TailSink
from remediation.inventory import HostSpec

Script = Callable[["FakeSession"], None]
Hook = Callable[["FakeSession"], None]
CTRL_C_REASON = "the operator pressed Ctrl-C on the controller"


def local_hosts(*names: str, **settings: Any) -> list[HostSpec]:
    """Hosts for fake runs: ``transport: local`` (no SSH), with ``settings`` on each."""
    return [HostSpec(name, {"transport": "local", "host_deadline": 30.0, **settings}) for name in names]


def press_ctrl_c() -> None:
    """What the operator's Ctrl-C does: SIGINT to this process, handled in its main thread."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


class SessionCut(Exception):
    """The controller closed the session (a second Ctrl-C, or the stop grace ran out)."""


class StopAsked(Exception):
    """The controller asked the runner to stop at its next safe point."""


@dataclass
class FakeSession:
    """One session's runner side: what it was asked to do, and what it heard back."""

    host: str
    job: JobOptions
    timeout: float
    sink: EventSink
    run: ScriptedHostRun
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    control: list[dict[str, Any]] = field(default_factory=list)  # every control line received
    on_stop: Hook | None = None

    # -- the runner's stdout ---------------------------------------------------------------

    def emit(self, kind: str, /, **fields: Any) -> None:
        """One runner event, written in two pieces as a pipe may deliver it."""
        line = json.dumps({"event": kind, **fields}) + "\n"
        half = len(line) // 2
        self.sink.write(line[:half])
        self.sink.write(line[half:])

    def result(self, outcome: str, reason: str = "", **fields: Any) -> None:
        self.emit("result", outcome=outcome, reason=reason, **fields)

    # -- the runner's stdin (the controller's control lines) -----------------------------

    def poll(self) -> None:
        """Take one control line if there is one (waits up to 0.1 s, as Invoke's reader does);
        raises CommandTimedOut past the session timeout and SessionCut once the controller
        closed the session."""
        if time.monotonic() - self.started > self.timeout:
            raise CommandTimedOut(Result(command="guardian-runner", exited=-1), int(self.timeout))
        line = self.run.control.read()
        if line == "":
            raise SessionCut()
        if line:
            message = json.loads(line)
            self.control.append(message)
            if "stop" in message and self.on_stop is not None:
                self.on_stop(self)

    @property
    def stop_reason(self) -> str | None:
        return next((str(m["stop"]) for m in self.control if "stop" in m), None)

    def check_stop(self) -> None:
        """A safe point: raise StopAsked if the controller asked for a stop."""
        self.poll()
        if self.stop_reason is not None:
            raise StopAsked(self.stop_reason)

    def sleep(self, seconds: float, *, stoppable: bool) -> None:
        """Take ``seconds``; a stoppable wait (the settle, a check) ends early on a stop, an
        unstoppable one (an action in hand) does not."""
        until = time.monotonic() + seconds
        while True:
            if stoppable:
                self.check_stop()  # at least once, as the runner's watch does
            if time.monotonic() >= until:
                return
            if not stoppable:
                self.poll()

    def wait_for(self, key: str) -> dict[str, Any]:
        """Block until a control line with ``key`` arrives (a stop ends the wait: StopAsked)."""
        while True:
            found = next((m for m in self.control if key in m), None)
            if found is not None:
                return found
            self.check_stop()

    # -- the operator ----------------------------------------------------------------------

    def ctrl_c(self) -> None:
        press_ctrl_c()


def ctrl_c_after(seconds: float) -> Hook:
    """A hook that presses Ctrl-C ``seconds`` from now (by then the controller is waiting)."""

    def hook(session: FakeSession) -> None:
        time.sleep(seconds)
        session.ctrl_c()

    return hook


#: The service each signature's restart targets, as in the shipped rules.
SERVICES = {"uw_socket": "uw-daemon", "alpaca_sip_delay": "trading-bot"}


def match(signature: str) -> dict[str, Any]:
    return {"signature": signature, "pattern": signature, "line_no": 1, "line": f"[FAIL] {signature}"}


def runner(
    *signatures: str,
    action_seconds: float = 0.0,
    settle_seconds: float = 0.0,
    check_seconds: float = 0.0,
    check_stoppable: bool = True,
    during_check: Hook | None = None,
    during_action: Hook | None = None,
    on_stop: Hook | None = None,
) -> Script:
    """A stand-in for the on-host runner's premarket sequence: check (exit 2 when any of
    ``signatures`` matched, else 0), plan one restart per signature, then, as the job says, stop
    at the survey (``defer``), wait at the gate for the controller's answer (``gate``), or act,
    except on suppressed signatures; settle; report. Stops are honoured between actions, in the
    check (unless ``check_stoppable`` is false) and in the settle, never inside an action, as the
    real runner does. The hooks run when the check, an action or a stop request begins."""

    def script(session: FakeSession) -> None:
        session.on_stop = on_stop
        job = session.job
        actions: list[dict[str, Any]] = []
        session.emit("start", version="fake", hostname=session.host, dry_run=job.dry_run)
        try:
            session.emit("phase", phase="check")
            if during_check is not None:
                during_check(session)
            session.sleep(check_seconds, stoppable=check_stoppable)
            state = "unhealthy" if signatures else "healthy"
            before = {"exit_code": 2 if signatures else 0, "state": state, "matches": [match(s) for s in signatures]}
            session.emit("check", which="before", **before)
            planned = [
                {"kind": "restart", "target": SERVICES.get(s, s), "reason": f"{s} matched line 1", "signature": s}
                for s in signatures
            ]
            session.emit("plan", recover=bool(signatures), actions=planned)
            if not signatures:
                session.result("healthy", "healthy: nothing to do", before=before)
                return
            if job.defer:
                session.result("surveyed", "checked; recovery waits for the fleet-wide incident check")
                return
            suppress = dict(job.suppress)
            if job.gate:
                session.emit("gate", signatures=list(signatures))
                suppress = dict(session.wait_for("suppress")["suppress"])
                session.emit("plan", recover=True, actions=[a for a in planned if a["signature"] not in suppress])
            for planned_action in planned:
                if planned_action["signature"] in suppress:
                    continue
                session.check_stop()
                action = {**planned_action, "index": len(actions), "result": "started"}
                actions.append(action)
                session.emit("action", **action)
                if during_action is not None:
                    during_action(session)
                session.sleep(action_seconds, stoppable=False)
                action.update(result="ok", detail="pid 10 -> 11")
                session.emit("action", **action)
            session.emit("phase", phase="settle")
            session.sleep(settle_seconds, stoppable=True)
        except StopAsked as stop:
            done = [f"{a['kind']} {a['target']} {a['result']}" for a in actions]
            reason = f"stopped: {stop}" + (
                f"; done before stopping: {', '.join(done)}" if done else "; nothing changed"
            )
            session.result("interrupted", reason + ("; not re-verified" if done else ""), actions=actions)
            return
        if actions:
            session.result("healed", "recovered", actions=actions)
        else:
            session.result("still-unhealthy", "recovery held back: " + "; ".join(suppress.values()), actions=actions)

    return script


def finishes(outcome: str, reason: str = "") -> Script:
    """A runner that reports ``outcome`` straight away (whatever the job)."""

    def script(session: FakeSession) -> None:
        session.emit("start", version="fake")
        session.result(outcome, reason or f"fake: {outcome}")

    return script


def unreachable(reason: str = "cannot connect to 192.0.2.1:22: Connection refused") -> Script:
    """A host whose session cannot be opened."""

    def script(session: FakeSession) -> None:
        raise ConnectError(reason)

    return script


def hangs(*, after_action: bool = False) -> Script:
    """A runner that never finishes (a hung check, or a restart that never returns); with
    ``after_action`` it hangs inside a restart it has announced as started."""

    def script(session: FakeSession) -> None:
        session.emit("phase", phase="check")
        if after_action:
            session.emit("action", index=0, kind="restart", target="uw-daemon", reason="uw_socket", result="started")
        session.sleep(3600, stoppable=False)

    return script


class ScriptedHostRun(HostRun):
    """HostRun with its one session command played by a script."""

    def __init__(self, fleet: FakeFleet, host: HostSpec, *args: Any, **kwargs: Any) -> None:
        assert host.is_local, "fake host runs use transport: local, so that no session leaves this machine"
        super().__init__(host, *args, **kwargs)
        self.fleet = fleet

    def _run_runner(self, session: Any, sink: EventSink, errors: TailSink, timeout: float) -> Any:
        fake = FakeSession(self.host.name, self.job, timeout, sink, self)
        self.fleet.record(fake)
        try:
            self.fleet.scripts[self.host.name](fake)
        except SessionCut:
            return None  # what a closed session gives back: no exit code
        finally:
            fake.ended = time.monotonic()
        return Result(command="guardian-runner", exited=0)


class FakeFleet:
    """The ``host_run`` factory for FleetRun: plays each host's script, records its sessions."""

    def __init__(self, scripts: Mapping[str, Script], *, ctrl_c_when_starting: str | None = None) -> None:
        """``ctrl_c_when_starting``: press Ctrl-C as the controller hands this host to a worker
        (in its main thread, while it is still starting hosts)."""
        self.scripts = dict(scripts)
        self.ctrl_c_when_starting = ctrl_c_when_starting
        self.sessions: list[FakeSession] = []
        self.runs: list[ScriptedHostRun] = []
        self._lock = threading.Lock()

    def __call__(self, host: HostSpec, *args: Any, **kwargs: Any) -> HostRun:
        if host.name == self.ctrl_c_when_starting:
            self.ctrl_c_when_starting = None
            press_ctrl_c()
            time.sleep(0.1)  # the signal's handler runs here, in the controller's main thread
        run = ScriptedHostRun(self, host, *args, **kwargs)
        with self._lock:
            self.runs.append(run)
        return run

    def record(self, session: FakeSession) -> None:
        with self._lock:
            self.sessions.append(session)

    def sessions_of(self, host: str) -> list[FakeSession]:
        with self._lock:
            return [s for s in self.sessions if s.host == host]

    def jobs_of(self, host: str) -> list[JobOptions]:
        return [s.job for s in self.sessions_of(host)]

    def hosts_run(self) -> set[str]:
        return {s.host for s in self.sessions}

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every run has ended (after a cut, its worker notices within 0.1 s)."""
        deadline = time.monotonic() + timeout
        while any(not run.done for run in self.runs if run.report.started_at):
            assert time.monotonic() < deadline, "a fake host run is still going"
            time.sleep(0.02)
