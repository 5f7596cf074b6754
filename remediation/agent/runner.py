"""The per-host sequence, run on the host: lock, check, classify, plan, act, settle, verify,
log, collect. The controller streams this program over one SSH session; cron runs it as is.

Progress and results go to stdout as JSON lines (``--format json``) or as readable lines for a
cron log (``--format text``). Nothing here talks to the network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import stat
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import BUNDLE_DIGEST, JOURNAL_DIR, STATE_DIR, VERSION, events
from .checkrun import CheckRun, run_check
from .guards import (
    Hold,
    breaker_open,
    load_restart_history,
    read_hold,
    record_restart,
    release_hold,
    reset_breakers,
    write_hold,
)
from .hostlock import HostBusy, HostLock
from .locks import LockDirError, LockVerdict, judge, probe_locks, remove_lock
from .managers import ManagerError, ServiceSpec, ServiceState, SignalManager, make_manager
from .outcomes import DEPLOY_OK, RUNNER_OK
from .plan import CheckState, Plan, PlannedAction, check_state, decide, final_outcome, outcome_reason
from .signatures import RuleError, load_signatures
from .watch import ControllerGone, ControllerWatch, StopRequested

Emit = Callable[[events.Event], None]
ALERT_GLOB_SUFFIX = ".txt"

#: Where Guardian < 0.2 kept that state: inside the app's lock dir.
LEGACY_STATE_FILES = ("guardian-breaker.json", "guardian-hold.json")
LEGACY_JOURNAL_DIR = "guardian-journal"


def _now_iso(ts: Optional[float] = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


class HostLog:
    """``logs/guardian.log`` in the seed's format: ``[YYYY-mm-dd HH:MM:SS] message``."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self.lines: List[str] = []
        self.error = ""

    def write(self, message: str) -> None:
        line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {message}"
        self.lines.append(line)
        if self.path is None or self.error:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            # A symlinked or unwritable log is never followed; the run goes on and says so.
            self.error = f"{self.path} not written: {exc.strerror}"
            return
        try:
            os.write(fd, (line + "\n").encode("utf-8", errors="replace"))
        finally:
            os.close(fd)


class Runner:
    """One Guardian run on this host, driven by a validated config (plain data)."""

    def __init__(self, config: Dict[str, Any], emit: Emit, watch: Optional[ControllerWatch] = None) -> None:
        self.config = config
        self.emit = emit
        self.dry_run = bool(config.get("dry_run", False))
        self.app_dir = os.path.abspath(os.path.expanduser(str(config.get("app_dir", "~/stock-bot"))))
        self.logs_dir = os.path.join(self.app_dir, "logs")
        self.lock_dir = os.path.join(self.app_dir, str(config.get("lock_dir", "state")))
        self.state_dir = os.path.join(self.app_dir, STATE_DIR)
        self.journal_dir = os.path.join(self.state_dir, JOURNAL_DIR)
        check = str(config.get("check", "pre_market_health_check.py"))
        self.check_path = check if os.path.isabs(check) else os.path.join(self.app_dir, check)
        self.check_stem = os.path.splitext(os.path.basename(check))[0]
        self.signatures = load_signatures(config.get("signatures", []))
        self.manager = make_manager(str(config.get("manager", "supervisor")), config.get("manager_options", {}))
        self.services = {
            name: ServiceSpec(
                service=name,
                name=str(spec.get("name", name)),
                program=str(spec.get("program", "")),
                pidfile=os.path.join(self.app_dir, str(spec.get("pidfile", ""))),
            )
            for name, spec in dict(config.get("services", {})).items()
        }
        self.log = HostLog(None)
        self.journal_error = ""
        self.started = time.time()
        self.run_id = str(config.get("run_id", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())))
        self.record: Dict[str, Any] = {}
        self.created_files: List[str] = []
        self.watch = watch or ControllerWatch()
        self.pidfile_probe = SignalManager({})

    # -- steps ------------------------------------------------------------------------------

    def phase(self, name: str) -> None:
        self.emit(events.phase(name))

    def run(self) -> Dict[str, Any]:
        record: Dict[str, Any] = self.record
        record.update(
            {
                "host": self.config.get("host", _hostname()),
                "hostname": _hostname(),
                "run_id": self.run_id,
                "runner": self.config.get("runner", "laptop"),
                "version": VERSION,
                "dry_run": self.dry_run,
                "started_at": _now_iso(self.started),
                "app_dir": self.app_dir,
                "manager": self.manager.kind,
                "actions": [],
                "files": [],
            }
        )
        self.emit(events.start(hostname=record["hostname"], version=record["version"], dry_run=record["dry_run"]))
        if not os.path.isdir(self.app_dir):
            return self.finish("unexpected", f"app dir {self.app_dir} does not exist")
        if not self.dry_run:
            os.makedirs(self.logs_dir, mode=0o750, exist_ok=True)
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            self.log = HostLog(self._safe_log_path("guardian.log"))
            self._adopt_legacy_state()
        holder = {
            "runner": record["runner"],
            "pid": os.getpid(),
            "run_id": self.run_id,
            "since": self.started,
            "since_iso": _now_iso(self.started),
        }
        self.phase("lock")
        try:
            with HostLock(
                self.state_dir,
                holder=holder,
                wait=float(self.config.get("lock_wait", 0)),
                dry_run=self.dry_run,
            ):
                return self._locked_sequence()
        except HostBusy as busy:
            record["busy_holder"] = busy.holder
            return self.finish("busy", str(busy))
        except ControllerGone as exc:
            # Stopped at a safe point: whatever was done so far is in the record (and the journal).
            done = [f"{a['kind']} {a['target']} {a['result']}" for a in record["actions"]]
            reason = f"stopped: {exc}" + (f"; done before stopping: {', '.join(done)}" if done else "; nothing changed")
            if done and "after" not in record:
                reason += "; not re-verified"
            self.log.write(f"Stopping: {exc}; the host lock is released")
            return self.finish("interrupted", reason, emit=isinstance(exc, StopRequested))

    def _locked_sequence(self) -> Dict[str, Any]:
        record = self.record
        self._write_journal()  # from here on the host's record of this run survives any stop
        hold = read_hold(self.state_dir, now=time.time())
        if hold is not None:
            record["hold"] = hold.to_dict()
            return self.finish(
                "held", f"maintenance hold until {hold.to_dict()['until_iso']} by {hold.by or '?'}: {hold.reason}"
            )
        if self.config.get("reset_breaker"):
            if self.dry_run:
                record.setdefault("warnings", []).append("would reset the restart budget (breaker)")
            elif reset_breakers(self.state_dir):
                self.log.write("Restart budget reset by the operator (--reset-breaker)")
        self.log.write(
            f"Guardian {VERSION} run {self.run_id} ({record['runner']}) starting: {os.path.basename(self.check_path)}"
        )
        self.phase("check")
        first = self._check(self._safe_log_path(f"guardian_{self.check_stem}_output.log"))
        before = check_state(first.exit_code, timed_out=first.timed_out, error=first.error)
        record["before"] = {**first.to_dict(), "state": before.state, "reason": before.reason}
        self.emit(events.check("before", record["before"]))
        self.log.write(f"{os.path.basename(self.check_path)} exit code {first.exit_code} -> {before.state}")
        if first.timed_out or first.error:
            self.log.write(f"ERROR: {before.reason}")
        verdicts = self._lock_verdicts()
        record["locks"] = [
            {"name": v.lock.name, "stale": v.stale, "reason": v.reason, "pid": v.lock.pid} for v in verdicts
        ]
        now = time.time()
        history = load_restart_history(self.state_dir)
        window = float(self.config.get("restart_budget_window", 1800))
        breakers = {
            name: breaker_open(
                name,
                history.get(name, []),
                now=now,
                max_restarts=int(self.config.get("restart_budget_max", 3)),
                window=window,
            )
            for name in self.services
        }
        record["breakers"] = {k: v.to_dict() for k, v in breakers.items() if v.recent}

        def make_plan(suppress: Dict[str, str]) -> Plan:
            return decide(
                before,
                first.matches,
                verdicts,
                self.signatures,
                sorted(self.services),
                settle_seconds=float(self.config.get("settle_seconds", 5)),
                force=bool(self.config.get("force", False)),
                only=list(self.config.get("only", [])),
                suppress=suppress,
                breakers=breakers,
            )

        plan = make_plan(dict(self.config.get("suppress", {})))
        record["plan"] = plan.to_dict()
        self.emit(events.plan(record["plan"]))
        after: Optional[CheckState] = None
        if plan.recover and self.config.get("defer") and not self.dry_run:
            # Survey for the blast-radius guard: the controller decides, then runs us again to act.
            return self.finish("deferred", "checked; recovery deferred until the fleet-wide incident check")
        if plan.recover and self.config.get("gate") and not self.dry_run:
            # Blast-radius guard in one session: hold here (lock kept, nothing changed) until the
            # controller has seen enough of the fleet to say which signatures are an incident.
            plan = make_plan(self._await_gate(first.matches))
            record["plan"] = plan.to_dict()
            self.emit(events.plan(record["plan"]))
        if plan.recover and not self.dry_run:
            after = self._recover(plan, verdicts)
        elif plan.recover:
            for action in plan.actions:
                self.emit(events.planned(action.to_dict()))
        outcome = final_outcome(before, after, dry_run=self.dry_run, held_back=plan.held_back)
        failed = [f"{a['kind']} {a['target']}" for a in record.get("actions", []) if a.get("result") == "failed"]
        return self.finish(outcome, outcome_reason(outcome, after, plan, failed))

    def _check(self, log_path: Optional[str]) -> CheckRun:
        python = str(self.config.get("python") or sys.executable or "python3")
        argv = [python, self.check_path, *[str(a) for a in self.config.get("check_args", [])]]
        return run_check(
            argv,
            cwd=self.app_dir,
            timeout=float(self.config.get("check_timeout", 60)),
            signatures=self.signatures,
            log_path=None if self.dry_run else log_path,
            watch=self.watch,
        )

    def _lock_verdicts(self) -> List[LockVerdict]:
        if not os.path.lexists(self.lock_dir):
            # Never created: a mistyped lock_dir must not pass for a folder with no stale locks.
            self.record.setdefault("warnings", []).append(
                f"lock dir {self.lock_dir} does not exist: no locks inspected or cleared (check the lock_dir setting)"
            )
            return []
        try:
            locks = probe_locks(self.lock_dir)
        except LockDirError as exc:
            self.record.setdefault("warnings", []).append(f"locks not inspected: {exc}")
            return []
        max_age = float(self.config.get("lock_max_age", 3600))
        return [judge(lock, now=time.time(), max_age=max_age) for lock in locks]

    def _await_gate(self, matches: Sequence[Any]) -> Dict[str, str]:
        """Announce the signatures this host would act on and wait for the controller's answer:
        one JSON line ``{"suppress": {signature: why}}`` on stdin. No answer (the controller went
        away, stdin closed, or the gate timeout passed) means nothing is changed on this host."""
        signatures: List[str] = []
        for match in matches:
            if match.signature not in signatures:
                signatures.append(match.signature)
        self.phase("gate")
        self.emit(events.gate(signatures))
        deadline = time.monotonic() + float(self.config.get("gate_timeout", 300))
        while True:
            self.watch.check()
            answer = next((m for m in self.watch.messages if "suppress" in m), None)
            if answer is not None:
                break
            if self.watch.control_closed:
                raise ControllerGone("the controller closed the gate without an answer")
            if time.monotonic() > deadline:
                raise ControllerGone("no go/no-go answer from the controller before the gate timeout")
            self.watch.poll_control(0.2)
        suppress = answer["suppress"]
        if not isinstance(suppress, dict):
            raise ControllerGone("unreadable gate answer from the controller: suppress must be a mapping")
        self.log.write(
            "Fleet-wide incident check: "
            + (f"not acting on {', '.join(sorted(suppress))} (common cause)" if suppress else "go")
        )
        return {str(k): str(v) for k, v in suppress.items()}

    def _recover(self, plan: Plan, verdicts: Sequence[LockVerdict]) -> CheckState:
        self.log.write(f"Recovery triggered ({plan.state}): {len(plan.actions)} action(s)")
        self.phase("recover")
        by_name = {v.lock.name: v for v in verdicts}
        restarted: Dict[str, Optional[int]] = {}
        for action in plan.actions:
            self.watch.check()  # a stop is honoured between actions, never inside one
            started = time.monotonic()
            result: Dict[str, Any] = {
                "index": len(self.record["actions"]),
                "kind": action.kind,
                "target": action.target,
                "reason": action.reason,
                "at": _now_iso(),
                "t": round(time.time(), 3),
                "result": events.STARTED,
            }
            # Recorded before it is done: if this run dies inside the action, the journal and the
            # controller still know it began (and the restart budget counts it, see below).
            self.record["actions"].append(result)
            self._write_journal()
            self.emit(events.action(result))
            try:
                if action.kind == "remove_lock":
                    verdict = by_name[action.target]
                    outcome = remove_lock(self.lock_dir, verdict.lock)
                    result.update(
                        result="ok" if outcome == "removed" else "skipped",
                        detail=outcome,
                        content=verdict.lock.content[:512],
                    )
                    self.log.write(f"Cleared stale lock {action.target}: {outcome} ({action.reason})")
                elif action.kind == "restart":
                    # An attempt counts against the budget whether or not it succeeds, and it is
                    # counted first, so the breaker and the record agree even if this run dies here.
                    record_restart(
                        self.state_dir,
                        action.target,
                        now=time.time(),
                        window=float(self.config.get("restart_budget_window", 1800)),
                    )
                    new_pid, detail = self._restart(action)
                    restarted[action.target] = new_pid
                    result.update(result="ok", detail=detail, new_pid=new_pid)
                elif action.kind == "breaker_open":
                    path = self._write_alert(action, name=f"guardian_breaker_{action.target}")
                    result.update(
                        result="blocked",
                        detail=f"breaker open; wrote {os.path.basename(path)}",
                        file=os.path.basename(path),
                        breaker=action.detail.get("breaker"),
                    )
                    self.log.write(f"CRITICAL: breaker open for {action.target}: {action.reason}")
                elif action.kind == "alert":
                    path = self._write_alert(action)
                    result.update(result="ok", detail=f"wrote {os.path.basename(path)}", file=os.path.basename(path))
                else:
                    result.update(result="skipped", detail=f"unknown action kind {action.kind}")
            except (ManagerError, OSError) as exc:
                result.update(result="failed", detail=str(exc))
                self.log.write(f"ERROR: {action.kind} {action.target} failed: {exc}")
            result["duration"] = round(time.monotonic() - started, 3)
            self._write_journal()
            self.emit(events.action(result))
        settle = plan.settle_seconds
        self.phase("settle")
        self.log.write(f"Waiting {settle:g}s for stabilization")
        self.watch.sleep(max(0.0, settle))
        for service, new_pid in restarted.items():
            self._confirm(service, new_pid)
        self.phase("verify")
        self.log.write("Re-verifying")
        retry = self._check(self._safe_log_path(f"guardian_retry_{self.check_stem}.log"))
        after = check_state(retry.exit_code, timed_out=retry.timed_out, error=retry.error)
        self.record["after"] = {**retry.to_dict(), "state": after.state, "reason": after.reason}
        self.emit(events.check("after", self.record["after"]))
        self.log.write(f"Re-verification exit code {retry.exit_code} -> {after.state}")
        return after

    def _restart(self, action: PlannedAction) -> tuple[Optional[int], str]:
        spec = self.services[action.target]
        before = self._status(spec)
        answer = " / ".join(line.strip() for line in self.manager.restart(spec).splitlines() if line.strip())
        self.log.write(f"Restarting {action.target} via {self.manager.kind}: {answer}")
        deadline = time.monotonic() + float(self.config.get("restart_timeout", 15))
        state = before
        pause = 0.1  # managers' restart commands usually return once the process is up: look at once,
        while time.monotonic() < deadline:  # then back off (a status call can cost a third of a CPU-second)
            state = self._status(spec)
            if state.running and state.pid is not None and state.pid != before.pid:
                return state.pid, f"{answer}; pid {before.pid} -> {state.pid}"
            time.sleep(pause)  # no stop inside an action: the restart is confirmed (or times out)
            pause = min(pause * 2, 1.0)
        raise ManagerError(
            f"{action.target} did not come back with a new pid within the restart timeout "
            f"(before: {before.state} pid {before.pid}; now: {state.state} pid {state.pid})"
        )

    def _status(self, spec: ServiceSpec) -> ServiceState:
        """The service's state: from its pid file when that names a live process running the
        configured program (a few syscalls), else from the process manager (a ``supervisorctl``
        call costs about a third of a CPU-second, which adds up on a loaded host)."""
        if spec.program and spec.pidfile and os.path.basename(spec.pidfile):
            quick = self.pidfile_probe.status(spec)
            if quick.running:
                return ServiceState(True, quick.pid, "RUNNING (pid file)", quick.raw)
        try:
            return self.manager.status(spec)
        except ManagerError as exc:
            return ServiceState(False, None, "unknown", str(exc))

    def _confirm(self, service: str, new_pid: Optional[int]) -> None:
        state = self._status(self.services[service])
        ok = state.running and state.pid == new_pid
        for action in self.record["actions"]:
            if action["kind"] == "restart" and action["target"] == service:
                action["confirmed"] = ok
                action["state_after_settle"] = state.to_dict()
                if not ok and action["result"] == "ok":
                    action["result"] = "failed"
                    action["detail"] += f"; did not stay up (now {state.state} pid {state.pid})"
        self.emit(events.confirm(service, ok, state.pid))
        self.log.write(f"{service} {'confirmed running' if ok else 'NOT confirmed'} (pid {state.pid})")

    def _write_alert(self, action: PlannedAction, *, name: Optional[str] = None) -> str:
        stamp = time.strftime("%Y%m%d_%H%M%S")
        base = f"{name or action.target}_alert_{stamp}"
        text = (
            f"CRITICAL ALERT: {name or action.target}\n"
            f"Host: {self.record['host']} ({_hostname()})\n"
            f"Time: {_now_iso()}\n"
            f"Run: {self.run_id} ({self.record['runner']})\n"
            f"Reason: {action.reason}\n"
        )
        for n in range(100):
            name = f"{base}.txt" if n == 0 else f"{base}_{n}.txt"
            path = os.path.join(self.logs_dir, name)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            self.log.write(f"CRITICAL: wrote alert {name}")
            self.created_files.append(name)
            return path
        raise OSError(f"could not create a unique alert file for {base}")

    def _safe_log_path(self, name: str) -> Optional[str]:
        return None if self.dry_run else os.path.join(self.logs_dir, name)

    # -- end --------------------------------------------------------------------------------

    def finish(self, outcome: str, reason: str, *, emit: bool = True) -> Dict[str, Any]:
        record = self.record
        if self.log.error:
            record.setdefault("warnings", []).append(self.log.error)
        record.update(
            outcome=outcome,
            reason=reason,
            finished_at=_now_iso(),
            duration=round(time.time() - self.started, 3),
        )
        self.log.write(f"Run {self.run_id} finished: {outcome}{' - ' + reason if reason else ''}")
        if os.path.isdir(self.state_dir):
            self._write_journal()
        if not emit:
            return record
        collect = not self.dry_run and bool(self.config.get("collect", True))
        if collect:
            record["cron_runs"] = [summary for _, summary in self._cron_journals()]
        self.emit(events.result(record))
        if collect:
            self.send_files()
        return record

    def collect_only(self) -> Dict[str, Any]:
        """``invoke collect``: bring logs, alerts and cron journals home; run no check."""
        self.record.update(
            host=self.config.get("host", _hostname()),
            run_id=self.run_id,
            runner=self.config.get("runner", "laptop"),
            version=VERSION,
            actions=[],
        )
        self.emit(events.start(hostname=_hostname(), version=VERSION, dry_run=False))
        self.record.update(
            outcome="collected",
            reason="",
            started_at=_now_iso(self.started),
            cron_runs=[summary for _, summary in self._cron_journals()],
        )
        self.emit(events.result(self.record))
        self.send_files()
        return self.record

    def change_hold(self, action: str) -> int:
        """``invoke hold`` / ``invoke release``: put or lift a maintenance hold on this host."""
        self.emit(events.start(hostname=_hostname(), version=VERSION, dry_run=self.dry_run))
        now = time.time()
        record: Dict[str, Any] = {"host": self.config.get("host"), "run_id": self.run_id, "actions": []}
        if action == "hold":
            hold = Hold(
                now + float(self.config.get("hold_seconds", 3600)),
                str(self.config.get("hold_reason", "")),
                str(self.config.get("hold_by", "")),
                now,
            )
            if not self.dry_run:
                os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
                write_hold(self.state_dir, hold)
                HostLog(self._safe_log_path("guardian.log")).write(
                    f"Maintenance hold until {hold.to_dict()['until_iso']} by {hold.by}: {hold.reason}"
                )
            record.update(
                outcome="held", reason=f"held until {hold.to_dict()['until_iso']}: {hold.reason}", hold=hold.to_dict()
            )
        else:
            existed = False if self.dry_run else release_hold(self.state_dir)
            if existed:
                HostLog(self._safe_log_path("guardian.log")).write("Maintenance hold released")
            record.update(outcome="released", reason="hold released" if existed else "no hold was set")
        self.emit(events.result(record))
        return 0

    def send_files(self) -> None:
        max_bytes = int(self.config.get("collect_max_bytes", 1 << 20))
        self.phase("collect")
        if os.path.isdir(self.logs_dir):
            for item in collect_files(self.logs_dir, self._collect_names(), max_bytes=max_bytes):
                self.emit(events.file(item))
        names = [name for name, _ in self._cron_journals()]
        for item in collect_files(self.journal_dir, names, max_bytes=max_bytes):
            item["name"] = "journal-" + str(item["name"])
            self.emit(events.file(item))

    def _cron_journals(self) -> List[Tuple[str, Dict[str, Any]]]:
        """The newest cron-run journals on this host (name, summary), newest first."""
        journal_dir = self.journal_dir
        found: List[Tuple[str, Dict[str, Any]]] = []
        try:
            entries = sorted(os.listdir(journal_dir), reverse=True)
        except OSError:
            return []
        for name in entries:
            if not name.endswith(".json") or len(found) >= int(self.config.get("journal_keep", 20)):
                continue
            try:
                fd = os.open(os.path.join(journal_dir, name), os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict) or data.get("runner") != "cron":
                continue
            summary = {
                "run_id": data.get("run_id"),
                "outcome": data.get("outcome"),
                "reason": data.get("reason", ""),
                "started_at": data.get("started_at"),
                "check": os.path.basename(str((data.get("before") or {}).get("argv", ["", "?"])[-1])),
                "actions": [
                    {k: a.get(k) for k in ("kind", "target", "result", "detail", "reason", "at")}
                    for a in data.get("actions", [])
                ],
            }
            found.append((name, summary))
        return found

    def _collect_names(self) -> List[str]:
        names = [
            "guardian.log",
            f"guardian_{self.check_stem}_output.log",
            f"guardian_retry_{self.check_stem}.log",
        ]
        alerts = []
        try:
            for entry in os.scandir(self.logs_dir):
                if "_alert_" in entry.name and entry.name.endswith(ALERT_GLOB_SUFFIX):
                    alerts.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
        except OSError:
            pass
        keep = int(self.config.get("alert_keep", 20))
        names += [n for _, n in sorted(alerts, reverse=True)[:keep]]
        return names

    def _write_journal(self) -> None:
        """The host's own record of this run, rewritten (atomically) at each step: before and
        after every action and at the end, so it survives the controller or this process dying
        at any moment (a run that never finished says ``outcome: running``)."""
        if self.dry_run or self.journal_error:
            return
        try:
            os.makedirs(self.journal_dir, mode=0o700, exist_ok=True)
            path = os.path.join(self.journal_dir, f"{self.run_id}.json")
            tmp = path + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                record = {k: v for k, v in self.record.items() if k != "files"}
                record.setdefault("outcome", "running")
                json.dump(record, fh, sort_keys=True)
            os.replace(tmp, path)
        except OSError as exc:
            self.journal_error = f"journal not written: {exc}"
            self.record.setdefault("warnings", []).append(self.journal_error)

    def _adopt_legacy_state(self) -> None:
        """Move a restart budget, hold and cron journals that an older Guardian kept in the app's
        lock dir into the state dir, so an upgrade forgets no hold and resets no budget."""
        for name in LEGACY_STATE_FILES:
            old, new = os.path.join(self.lock_dir, name), os.path.join(self.state_dir, name)
            if os.path.isfile(old) and not os.path.islink(old) and not os.path.lexists(new):
                try:
                    os.rename(old, new)
                    self.log.write(f"Moved {old} to {new} (Guardian's state now lives in {STATE_DIR})")
                except OSError as exc:
                    self.record.setdefault("warnings", []).append(f"could not move {old} to {new}: {exc.strerror}")
        old_journal = os.path.join(self.lock_dir, LEGACY_JOURNAL_DIR)
        if os.path.isdir(old_journal) and not os.path.islink(old_journal) and not os.path.lexists(self.journal_dir):
            try:
                os.rename(old_journal, self.journal_dir)
            except OSError as exc:
                self.record.setdefault("warnings", []).append(f"could not move {old_journal}: {exc.strerror}")


def collect_files(directory: str, names: Sequence[str], *, max_bytes: int) -> List[Dict[str, Any]]:
    """Read the tail of each regular file ``directory/name`` (never following symlinks)."""
    items = []
    for name in names:
        if "/" in name or name in ("", ".", ".."):
            continue
        try:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            start = max(0, st.st_size - max_bytes)
            data = os.pread(fd, max_bytes, start)
        finally:
            os.close(fd)
        items.append(
            {
                "name": name,
                "size": st.st_size,
                "mtime": st.st_mtime,
                "truncated": start > 0,
                "sha256": hashlib.sha256(data).hexdigest(),
                "data_b64": base64.b64encode(data).decode("ascii"),
            }
        )
    return items


def json_emitter(stream: Any, watch: Optional[ControllerWatch] = None) -> Emit:
    """JSON lines for the controller. A write that fails (the controller's session is gone:
    EPIPE) never aborts the run; the watch learns of it and the run stops at its next safe point."""

    def emit(event: Dict[str, Any]) -> None:
        if watch is not None and watch.lost:
            return
        event.setdefault("t", round(time.time(), 3))
        try:
            stream.write(json.dumps(event, sort_keys=True, default=str) + "\n")
            stream.flush()
        except (OSError, ValueError) as exc:
            if watch is None:
                raise
            watch.mark_lost(f"the controller disconnected (output: {exc})")

    return emit


def text_emitter(stream: Any) -> Emit:
    """Readable lines for a cron log; file contents are summarised, not printed."""

    def emit(event: Dict[str, Any]) -> None:
        kind = events.kind(event)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        if kind == events.CHECK:
            line = f"check ({event['which']}): exit {event['exit_code']} -> {event['state']}"
        elif kind == events.ACTION:
            detail = event.get("detail", event.get("reason", ""))
            line = f"{event['kind']} {event['target']}: {event['result']} - {detail}"
        elif kind == events.RESULT:
            line = f"outcome: {event['outcome']} {event.get('reason', '')}".rstrip()
        elif kind == events.PLAN:
            planned = ", ".join(f"{a['kind']} {a['target']}" for a in event["actions"]) or "nothing to do"
            line = "; ".join([f"plan: {planned}", *event["notes"]])
        else:
            return
        stream.write(f"[{stamp}] {line}\n")
        stream.flush()

    return emit


def _hostname() -> str:
    return os.uname().nodename  # what socket.gethostname() returns, without importing socket


def _options(argv: Optional[Sequence[str]], config: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The command-line flags. The controller's ``python3 -c`` bundle passes none (its config is
    embedded), so argparse (10 ms of start-up on every host run) is loaded only for the deployed
    runner that cron starts with ``--config``."""
    if config is not None and not argv:
        return {"config": None, "format": "json", "runner": None, "check": None}
    import argparse

    parser = argparse.ArgumentParser(prog="guardian-runner", description=__doc__)
    parser.add_argument("--config", help="JSON config written by `invoke deploy`")
    parser.add_argument("--format", choices=("json", "text"), default="json")
    parser.add_argument("--runner", help="who runs this: laptop or cron")
    parser.add_argument("--check", help="health-check script to run (default: the config's)")
    parser.add_argument("--version", action="version", version=f"guardian-runner {VERSION} (bundle {BUNDLE_DIGEST})")
    args = parser.parse_args(argv)
    if config is None and not args.config:
        parser.error("--config is required")
    return vars(args)


def main(argv: Optional[Sequence[str]] = None, config: Optional[Dict[str, Any]] = None) -> int:
    """Entry point for the on-host runner. Exit code: 0 ok, 2 not ok, 3 bad config."""
    opts = _options(argv, config)
    if config is None:
        try:
            with open(opts["config"], encoding="utf-8") as fh:
                config = json.load(fh)
        except (OSError, ValueError) as exc:
            print(f"guardian-runner: cannot read config {opts['config']}: {exc}", file=sys.stderr)
            return 3
    assert config is not None
    if opts["runner"]:
        config = {**config, "runner": opts["runner"]}
    if opts["check"]:
        config = {**config, "check": opts["check"]}
    if "run_id" not in config or opts["config"]:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        config = {**config, "run_id": f"{stamp}-{config.get('runner', 'cron')}-{os.getpid()}"}
    watch = ControllerWatch(control=bool(config.get("control") or config.get("gate")))
    emit = json_emitter(sys.stdout, watch) if opts["format"] == "json" else text_emitter(sys.stdout)
    action = str(config.get("action", "run"))

    def on_signal(signum: int, frame: Any) -> None:
        watch.request_stop(f"{signal.Signals(signum).name} received")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        if action == "deploy":
            from .deploy import Installer  # only deploy needs it: keeps every other run's start-up small

            record = Installer(config, emit).run()
            return 0 if record["outcome"] in DEPLOY_OK else 2
        runner = Runner(config, emit, watch)
    except (RuleError, ManagerError, ValueError) as exc:
        emit(events.result({"outcome": "failed", "reason": f"bad runner config: {exc}"}))
        return 3
    if action == "collect":
        runner.collect_only()
        return 0
    if action in ("hold", "release"):
        return runner.change_hold(action)
    record = runner.run()
    return 0 if record["outcome"] in RUNNER_OK else 2
