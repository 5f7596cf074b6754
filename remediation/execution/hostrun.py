"""One host's run from the controller: connect, stream the on-host runner over one session,
turn its events into a HostReport, and store the files it sends back.

The whole per-host sequence runs on the host in one program (see ``remediation.agent.sequence``),
so a host costs one SSH connection and one session however many steps it takes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fabric import Connection
from invoke.exceptions import CommandTimedOut, ThreadException

from ..agent import JOURNAL_DIR, STATE_SUBDIR, events, records
from ..agent.config import DeployFields, HostSettings, JobFields, RunnerConfig, inventory_settings
from ..errors import ConnectError, GuardianError, HostKeyError, ReportError
from ..inventory import HostSpec, Inventory
from ..reporting.report import CollectedFile, HostReport, ReportStore
from ..reporting.selfheal import assess
from .bundle import build_runner, bundle_digest
from .channel import DeadlineExceeded, run_on_channel
from .transport import ConnectOptions, Session, close_session, open_session


#: Where the on-host runner keeps its journals (relative to the app dir), for messages.
def journal_hint(host: HostSpec) -> str:
    """Where ``host`` keeps its run journals, for a message (relative to its app dir, or absolute)."""
    return f"{host.get('guardian_dir')}/{STATE_SUBDIR}/{JOURNAL_DIR}"


Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class JobOptions:
    """What to do on every host of a run (the controller's side of the runner's JobFields)."""

    run_id: str
    command: str = "premarket"
    dry_run: bool = False
    force: bool = False
    override_windows: bool = False  # --force: restart inside quiet windows
    override_unsafe: bool = False  # --force-unsafe: restart although safe_to_restart says no
    only: tuple[str, ...] = ()
    signatures: Sequence[dict[str, Any]] = field(default_factory=list)
    check: str | None = None  # overrides the host's check script (--check)
    action: str = "run"  # "run" (premarket/recover), "deploy", "collect", "status", "hold" or "release"
    remove: bool = False  # deploy --remove
    drift_check: bool = False  # deploy --check: a dry run that says "drifted"
    fix_permissions: bool = False  # deploy --fix-permissions
    suppress: dict[str, str] = field(default_factory=dict)  # signature -> why not to act (incident)
    reset_breaker: bool = False
    hold_seconds: float = 0.0
    hold_reason: str = ""
    hold_by: str = ""
    defer: bool = False  # survey: check and stop before acting (blast-radius guard)
    gate: bool = False  # survey in one session: check, then wait for the controller's go/no-go


def host_settings(host: HostSpec, job: JobOptions) -> HostSettings:
    """The runner's settings for ``host``: its validated inventory settings, named by the type."""
    values: dict[str, Any] = {key: host.get(key) for key in inventory_settings()}
    if job.check:
        values["check"] = job.check
    return HostSettings.from_dict({**values, "host": host.name, "signatures": list(job.signatures)})


def runner_config(host: HostSpec, job: JobOptions) -> RunnerConfig:
    """The on-host runner's config for ``host``: its settings and this run's job, typed. Cron's
    config (deploy) is the same settings alone, so no job field can reach the host's config.json."""
    settings = host_settings(host, job)
    fields = JobFields(
        action=job.action,
        run_id=job.run_id,
        dry_run=job.dry_run,
        force=job.force,
        override_windows=job.override_windows,
        override_unsafe=job.override_unsafe,
        only=list(job.only),
        suppress=dict(job.suppress),
        reset_breaker=job.reset_breaker,
        hold_seconds=job.hold_seconds,
        hold_reason=job.hold_reason,
        hold_by=job.hold_by,
        defer=job.defer,
        gate=job.gate,
        gate_timeout=float(host.get("host_deadline")),
        control=True,  # the runner reads control lines (gate answer, stop) on its stdin
    )
    deploy = None
    if job.action in ("deploy", "status"):  # status compares the host with what deploy writes
        ping = host.get("ping_url")
        deploy = DeployFields(
            remove=job.remove,
            drift_check=job.drift_check,
            fix_permissions=job.fix_permissions,
            schedules=list(host.get("schedules")),
            scheduler=str(host.get("scheduler")),
            cron_config=records.replace(settings, runner="cron"),
            secrets={"ping_url": str(ping)} if ping else {},
        )
    return RunnerConfig(settings, fields, deploy)


#: How the host's python starts the runner: isolated (``-I``: no PYTHON* variables, no user site,
#: and no current directory on sys.path, so a stray ``json.py`` in the login directory cannot
#: stand in for the standard library) and without ``site`` (``-S``: the runner needs nothing from
#: site-packages, and the .pth files there cost every run start-up time). Python >= 3.4 has both.
PYTHON_FLAGS = ("-I", "-S")


def runner_invocation(host: HostSpec, job: JobOptions) -> tuple[str, dict[str, str]]:
    """The one command a host runs (its python with the runner script, every part quoted) and the
    secrets it is sent on stdin: nothing secret is on a command line, which ``ps`` shows to all."""
    config, secrets = runner_config(host, job).split_secrets()
    return shlex.join([str(host.get("python")), *PYTHON_FLAGS, "-c", build_runner(config)]), secrets


def runner_command(host: HostSpec, job: JobOptions) -> str:
    """The one command a host runs (see :func:`runner_invocation`)."""
    return runner_invocation(host, job)[0]


def _only_control_channel_closed(exc: ThreadException) -> bool:
    """Whether Invoke's only thread failures are its stdin thread finding the channel closed: a
    control line (stop) sent just as the runner ended. Nothing is lost by that."""
    return bool(exc.exceptions) and all(
        getattr(w.kwargs.get("target"), "__name__", "") == "handle_stdin" and issubclass(w.type, OSError)
        for w in exc.exceptions
    )


class EventSink(io.TextIOBase):
    """A write-only text stream that splits the runner's stdout into JSON events."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.on_event = on_event
        self.buffer_text = ""
        self.noise: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.buffer_text += text
        *lines, self.buffer_text = self.buffer_text.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict) and events.kind(event) is not None:
            self.on_event(event)
        elif len(self.noise) < 50:
            self.noise.append(line[:300])

    def flush(self) -> None:
        pass


class TailSink(io.TextIOBase):
    """Keeps the last few KB written to it (the runner's stderr)."""

    def __init__(self, limit: int = 8192) -> None:
        self.limit = limit
        self.text = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text = (self.text + text)[-self.limit :]
        return len(text)


class ControlStream:
    """The on-host runner's stdin: the controller's control channel. Silent until the controller
    answers the runner's gate (``{"suppress": ...}``) or asks it to stop (``{"stop": reason}``),
    one JSON line each; end of file only once the run is over.

    Over SSH, ``channel.run_on_channel`` waits on :meth:`wake_fd` and takes the lines with
    :meth:`take`; for the local host, Invoke's stdin thread polls ``read()`` (a ``None`` means
    "nothing yet"; ``""`` means end of file, after which Invoke closes the command's stdin).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._lines: list[str] = []
        self._answered = False
        self._closed = False
        self._wake: tuple[int, int] | None = None  # a pipe written to when a line is queued

    def wake_fd(self) -> int:
        """A file descriptor that is readable once a line is queued or the stream is closed (for
        ``channel.run_on_channel``'s select): the SSH path reads the stream with :meth:`take`."""
        with self._cond:
            if self._wake is None:
                self._wake = os.pipe()
                for fd in self._wake:
                    os.set_blocking(fd, False)
                if self._lines or self._closed:
                    self._signal()
            return self._wake[0]

    def take(self) -> tuple[list[str], bool]:
        """The lines queued so far (removed from the stream), and whether it is closed."""
        with self._cond:
            if self._wake is not None:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake[0], 4096):
                        pass
            lines, self._lines = self._lines, []
            return lines, self._closed

    def release(self) -> None:
        """Close the wake-up pipe, once the command is over."""
        with self._cond:
            if self._wake is not None:
                for fd in self._wake:
                    os.close(fd)
                self._wake = None

    def _signal(self) -> None:
        if self._wake is not None:
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake[1], b"!")

    def readable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def read(self, size: int = -1) -> str | None:
        with self._cond:
            if not self._lines and not self._closed:
                self._cond.wait(0.1)
            if self._lines:
                return self._lines.pop(0)
            return "" if self._closed else None

    def _send(self, message: dict[str, Any]) -> None:
        with self._cond:
            if not self._closed:
                self._lines.append(json.dumps(message) + "\n")
                self._cond.notify_all()
                self._signal()

    def answer(self, suppress: dict[str, str]) -> None:
        """Release the runner from its gate: act, except on the signatures in ``suppress``."""
        if not self._answered:
            self._answered = True
            self._send({"suppress": suppress})

    def send_secrets(self, secrets: dict[str, str]) -> None:
        """The run's secrets (deploy's ping URL), first on the runner's stdin, never on its argv."""
        self._send({"secrets": secrets})

    def stop(self, reason: str) -> None:
        """Ask the runner to stop at its next safe point and report what it did."""
        self._send({"stop": reason})

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._signal()


class HostRun:
    """Runs the job on one host and builds its report."""

    def __init__(
        self,
        host: HostSpec,
        inventory: Inventory | None,
        job: JobOptions,
        connect: ConnectOptions,
        store: ReportStore,
        progress: Progress,
        on_gate: Callable[[str, list[str], bool], None] | None = None,
    ) -> None:
        self.host = host
        self.inventory = inventory
        self.job = job
        self.connect = connect
        self.store = store
        self.progress = progress
        self.report = HostReport(
            host=host.name,
            address="local" if host.is_local else host.address,
            transport="local" if host.is_local else "ssh",
        )
        self.session: Session | None = None
        self.got_result = False
        self.lock = threading.Lock()
        self.on_gate = on_gate
        self.control = ControlStream()
        self.gate = self.control if job.gate else None
        self.interrupted = False
        self.done = False
        self.surveyed = False  # the gate run has told the controller what its check found

    def phase(self, name: str) -> None:
        self.report.phases.append({"phase": name, "t": round(time.time(), 3)})
        self.progress(self.host.name, name)

    def run(self) -> HostReport:
        started = time.monotonic()
        self.report.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        deadline = started + float(self.host.get("host_deadline"))
        try:
            self._run(deadline)
        except HostKeyError as exc:
            self._set("host-key-rejected", str(exc))
        except ConnectError as exc:
            self._set("unreachable", str(exc))
        except (CommandTimedOut, DeadlineExceeded):
            self._set(
                "failed",
                f"host deadline of {self.host.get('host_deadline'):g}s exceeded; the run on the host was cut off",
            )
        except GuardianError as exc:
            self._set("failed", str(exc))
        except Exception as exc:
            self._set("failed", f"unexpected controller error: {type(exc).__name__}: {exc}")
        finally:
            with self.lock:
                self.done = True
                if not self.got_result:
                    self._mark_unfinished_actions()
            if self.session is not None:
                close_session(self.session)
            self.report.duration = round(time.monotonic() - started, 3)
            self.progress(self.host.name, f"done: {self.report.outcome}")
        return self.report

    def request_stop(self, reason: str) -> None:
        """First Ctrl-C: ask the runner to stop at its next safe point. It finishes the action in
        hand, reports what it did (outcome ``interrupted``) and ends; the session stays open."""
        with self.lock:
            if not self.done and not self.got_result:
                self.control.stop(reason)

    def interrupt(self) -> None:
        """Cut the host's session (Ctrl-C again, or the stop took too long); the runner on the
        host notices, stops at its next safe point and drops its lock.

        From then on the host's outcome stays "interrupted": the worker thread, which sees its
        session vanish, must not turn it into "unreachable" (connection lost) afterwards. An
        action that had started but whose result never came back is marked ``interrupted``:
        the host's journal holds how it ended."""
        with self.lock:
            if self.done:
                return
            self.interrupted = True
            if not self.got_result:
                self.report.outcome = "interrupted"
                self.report.reason = "interrupted (Ctrl-C) while running; the host's session was closed"
                self._mark_unfinished_actions()
                started = [f"{a['kind']} {a['target']}" for a in self.report.actions]
                if started:
                    self.report.reason += f"; actions started on the host: {', '.join(started)}"
            self.control.close()
            session = self.session
        if session is not None:
            close_session(session)

    def _mark_unfinished_actions(self) -> None:
        """Actions the host announced but whose result never came back (Ctrl-C, the host
        deadline, a lost connection) end ``interrupted``, pointing at the host's journal."""
        for action in self.report.actions:
            if action.get("result") == events.STARTED:
                action["result"] = "interrupted"
                action["detail"] = (
                    "started on the host, but the session was closed before its result came back; "
                    f"the host's journal ({journal_hint(self.host)}/{self.job.run_id}.json) records how it ended"
                )

    def _set(self, outcome: str, reason: str) -> None:
        if self.interrupted:
            return
        if not self.got_result or outcome in ("failed", "interrupted"):
            self.report.outcome = outcome
            self.report.reason = reason

    def _run(self, deadline: float) -> None:
        self.phase("connect")
        session = open_session(self.host, self.inventory, self.connect)
        with self.lock:
            self.session = session
        self.phase("run")
        sink = EventSink(self._on_event)
        errors = TailSink()
        remaining = max(1.0, deadline - time.monotonic())
        try:
            result = self._run_runner(session, sink, errors, remaining)
        except ThreadException as exc:
            if not _only_control_channel_closed(exc):
                raise
            result = None  # a control line raced the runner's exit: what came back stands
        finally:
            self.control.close()
            self.control.release()
        sink.write("\n")
        self._finish_run(sink, errors, result)

    def _run_runner(self, session: Session, sink: EventSink, errors: TailSink, timeout: float) -> Any:
        command, secrets = runner_invocation(self.host, self.job)
        if secrets:
            self.control.send_secrets(secrets)  # the first line on the runner's stdin
        if isinstance(session, Connection):  # SSH: on the channel, from this thread (see channel)
            return run_on_channel(session.client.get_transport(), command, self.control, sink, errors, timeout)
        return session.run(
            command,
            hide=False,
            warn=True,
            pty=False,
            echo=False,
            echo_stdin=False,
            in_stream=self.control,
            out_stream=sink,
            err_stream=errors,
            timeout=timeout,
        )

    def _finish_run(self, sink: EventSink, errors: TailSink, result: Any) -> None:
        if not self.got_result:
            detail = (errors.text.strip() or "\n".join(sink.noise)).splitlines()[-5:]
            exit_code = getattr(result, "exited", None)
            if exit_code in (None, -1) and not self.host.is_local:
                raise ConnectError(
                    "connection lost while the runner was running; no result came back"
                    + (f": {' | '.join(detail)}" if detail else "")
                )
            raise GuardianError(
                f"the on-host runner ended (exit {exit_code}) without a result"
                + (f": {' | '.join(detail)}" if detail else "")
                + f". Is {self.host.get('python')} (>= 3.9) installed on the host?"
            )

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = events.kind(event)
        report = self.report
        if kind == events.PHASE:
            self.phase(str(event.get("phase")))
        elif kind == events.START:
            report.remote_version = str(event.get("version", ""))
        elif kind == events.ACTION and isinstance(event.get("index"), int):
            # Kept as they happen (started, then its result), so a run cut short still shows
            # every action that began on the host; the final result event replaces the list.
            with self.lock:
                if self.interrupted or self.got_result:
                    return
                action = events.action_record(event)
                index = int(event["index"])
                if index < len(report.actions):
                    report.actions[index] = action
                else:
                    report.actions.append(action)
        elif kind == events.CHECK:
            data = events.check_record(event)
            if event.get("which") == "after":
                report.after = data
            else:
                report.before = data
        elif kind == events.PLAN:
            report.plan = events.plan_record(event)
            if self.gate is not None and self.on_gate is not None and not event.get("recover") and not self.surveyed:
                # Nothing to act on here: count this host in the fleet-wide survey now, not after
                # its logs have come home, so hosts waiting at their gate are answered sooner.
                self.surveyed = True
                self.on_gate(self.host.name, [], False)
        elif kind == events.RESULT:
            with self.lock:
                if self.interrupted:
                    return
                self.got_result = True
            report.outcome = str(event.get("outcome", "failed"))
            report.reason = str(event.get("reason", ""))
            report.actions = list(event.get("actions", []))
            report.locks = list(event.get("locks", []))
            report.busy_holder = event.get("busy_holder")
            report.runner = str(event.get("runner", "laptop"))
            report.runner_code = str(event.get("runner_code", ""))
            cpu = event.get("runner_cpu")
            report.runner_cpu = float(cpu) if isinstance(cpu, (int, float)) and not isinstance(cpu, bool) else None
            report.warnings += [str(w) for w in event.get("warnings", [])]
            report.changes = list(event.get("changes", []))
            report.preflight = list(event.get("preflight", []))
            report.cron_runs = list(event.get("cron_runs", []))
            report.guards = {k: event[k] for k in ("breakers", "hold") if event.get(k)}
            report.deferred = list(event.get("deferred", []))
            report.verify = event.get("verify")
            report.unstable = list(event.get("unstable", []))
            report.self_heal = assess(
                event.get("self_heal"),
                report.cron_runs,
                now=time.time(),
                grace=float(self.host.get("self_heal_grace")),
                controller_bundle=bundle_digest(),
            )
            if report.before is None and event.get("before"):
                report.before = event["before"]
        elif kind == events.FILE:
            self._store_file(event)
        elif kind == events.GATE and self.on_gate is not None:
            self.surveyed = True
            self.on_gate(self.host.name, [str(s) for s in event.get("signatures", [])], True)

    def _store_file(self, event: dict[str, Any]) -> None:
        name = str(event.get("name", ""))
        try:
            data = base64.b64decode(str(event.get("data_b64", "")), validate=True)
        except ValueError:
            self.report.warnings.append(f"file {name!r}: corrupt data, not stored")
            return
        digest = hashlib.sha256(data).hexdigest()
        if digest != event.get("sha256"):
            self.report.warnings.append(f"file {name!r}: checksum mismatch, not stored")
            return
        try:
            rel = self.store.save_file(self.job.run_id, self.host.name, name, data)
        except ReportError as exc:
            self.report.warnings.append(str(exc))
            return
        self.report.files.append(
            CollectedFile(
                name=name,
                path=rel,
                size=int(event.get("size", len(data))),
                collected_bytes=len(data),
                sha256=digest,
                truncated=bool(event.get("truncated", False)),
            )
        )
