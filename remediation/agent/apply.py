"""Applying a plan on the host: clear stale locks, restart services through their manager (each
restart confirmed by a new PID that stays up), write alert files.

Every action is recorded as ``started`` (journal written, event sent) before it runs, and its
result right after, so a run that dies inside an action still says that it began. A stop is
honoured between actions, never inside one: a restart in hand runs to its confirmation.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional, Sequence, Tuple

from . import events
from .commands import Command, ManagerError, execute
from .context import RunContext, hostname, now_iso
from .guards import record_restart
from .identity import Identity
from .locks import LockVerdict, remove_lock
from .managers import Manager, ServiceSpec, ServiceState, pidfile_status, read_status, run_command
from .plan import Plan, PlannedAction
from .safety import HookRun, ServiceSafety, run_hook

#: How a restart is confirmed: the service's state is read at once, then after pauses growing
#: from POLL_FIRST to POLL_MAX seconds, until a new pid or the restart timeout.
POLL_FIRST, POLL_MAX = 0.05, 0.5


class Recovery:
    """The plan's actions on this host, with the manager that restarts its services."""

    def __init__(
        self,
        ctx: RunContext,
        manager: Manager,
        services: Dict[str, ServiceSpec],
        safety: Optional[Dict[str, ServiceSafety]] = None,
        identity: Optional[Identity] = None,
    ) -> None:
        self.ctx = ctx
        self.manager = manager
        self.services = services
        self.safety = safety or {}
        self.identity = identity  # who the hooks run as (run_as), as the check does
        self.restarted_at: Dict[str, float] = {}  # service -> when its new pid was seen

    # -- what the plan shows --------------------------------------------------------------------

    def describe(self, action: PlannedAction) -> Dict[str, Any]:
        """The exact command a restart would run (``command``), or why it cannot (``command_error``).
        Read-only: the signal manager's pid comes from the pid file, as the real restart's does."""
        if action.kind != "restart" or action.target not in self.services:
            return {}
        spec = self.services[action.target]
        # A manager whose word is the state (systemd) is asked; the others' pid files suffice.
        current = self.status(spec) if self.manager.authoritative else pidfile_status(spec)
        try:
            refusal = self.manager.refusal(spec, current)
            if refusal:
                return {"command_error": refusal}
            described: Dict[str, Any] = {
                "command": self.manager.restart_command(spec, current).to_dict(),
                **self.manager.route(),
            }
        except ManagerError as exc:
            return {"command_error": str(exc)}
        prelude = self.manager.restart_prelude(spec, current)
        if prelude:
            described["commands_before"] = [c.to_dict() for c in prelude]
        return described

    def plan_record(self, plan: Plan) -> Dict[str, Any]:
        """The plan as the record, the events and a dry run show it: each action with its command."""
        record = plan.to_dict()
        for action, step in zip(plan.actions, record["actions"]):
            step.update(self.describe(action))
        return record

    # -- doing it -------------------------------------------------------------------------------

    def apply(self, plan: Plan, verdicts: Sequence[LockVerdict]) -> Dict[str, Optional[int]]:
        """Run the plan's actions in order. Returns each restarted service's new pid."""
        ctx = self.ctx
        ctx.log.write(f"Recovery triggered ({plan.state}): {len(plan.actions)} action(s)")
        ctx.phase("recover")
        by_name = {v.lock.name: v for v in verdicts}
        restarted: Dict[str, Optional[int]] = {}
        for action in plan.actions:
            ctx.watch.check()  # a stop is honoured between actions, never inside one
            started = time.monotonic()
            result: Dict[str, Any] = {
                "index": len(ctx.record["actions"]),
                "kind": action.kind,
                "target": action.target,
                "reason": action.reason,
                "at": now_iso(),
                "t": round(time.time(), 3),
                "result": events.STARTED,
                **self.describe(action),
            }
            # Recorded before it is done: if this run dies inside the action, the journal and the
            # controller still know it began (and the restart budget counts it, see below).
            ctx.record["actions"].append(result)
            ctx.write_journal()
            ctx.emit(events.action(result))
            try:
                if action.kind == "remove_lock":
                    verdict = by_name[action.target]
                    outcome = remove_lock(ctx.lock_dir, verdict.lock)
                    result.update(
                        result="ok" if outcome == "removed" else "skipped",
                        detail=outcome,
                        content=verdict.lock.content[:512],
                    )
                    ctx.log.write(f"Cleared stale lock {action.target}: {outcome} ({action.reason})")
                elif action.kind == "restart":
                    before = self.status(self.services[action.target])
                    refusal = self.manager.refusal(self.services[action.target], before)
                    if refusal:  # the manager's state forbids it (a masked unit...): nothing is done
                        result.update(result="refused", detail=refusal)
                        ctx.log.write(f"NOT restarting {action.target}: {refusal}")
                    elif not self._safe_now(action, result):
                        pass  # deferred at the last moment: the record says why; nothing restarted
                    else:
                        # An attempt counts against the budget whether or not it succeeds, and it is
                        # counted first, so the breaker and the record agree even if this run dies here.
                        record_restart(
                            ctx.state_dir,
                            action.target,
                            now=time.time(),
                            window=ctx.settings.restart_budget_window,
                        )
                        new_pid, detail = self._restart(action, result, before)
                        restarted[action.target] = new_pid
                        self.restarted_at[action.target] = time.time()
                        result.update(result="ok", detail=detail, new_pid=new_pid)
                        self._post_restart(action, result)
                elif action.kind == "defer":
                    path = self._write_alert(action, name=f"guardian_deferred_{action.target}")
                    result.update(
                        result=events.DEFERRED,
                        detail=action.reason.split("; restart deferred: ", 1)[-1],
                        defer=action.detail.get("defer", ""),
                        gate=action.detail.get("gate"),
                        file=os.path.basename(path),
                    )
                    ctx.log.write(f"DEFERRED: restart of {action.target}: {action.reason}")
                elif action.kind == "breaker_open":
                    path = self._write_alert(action, name=f"guardian_breaker_{action.target}")
                    result.update(
                        result="blocked",
                        detail=f"breaker open; wrote {os.path.basename(path)}",
                        file=os.path.basename(path),
                        breaker=action.detail.get("breaker"),
                    )
                    ctx.log.write(f"CRITICAL: breaker open for {action.target}: {action.reason}")
                elif action.kind == "alert":
                    path = self._write_alert(action)
                    result.update(result="ok", detail=f"wrote {os.path.basename(path)}", file=os.path.basename(path))
                else:
                    result.update(result="skipped", detail=f"unknown action kind {action.kind}")
            except (ManagerError, OSError) as exc:
                result.update(result="failed", detail=str(exc))
                ctx.log.write(f"ERROR: {action.kind} {action.target} failed: {exc}")
            result["duration"] = round(time.monotonic() - started, 3)
            ctx.write_journal()
            ctx.emit(events.action(result))
        return restarted

    def _hook(self, service: str, name: str, result: Dict[str, Any]) -> Optional[HookRun]:
        """Run the service's ``name`` hook (if it has one) and keep its answer in the action's record."""
        safety = self.safety.get(service)
        hook = safety.hook(name) if safety is not None else None
        if hook is None:
            return None
        self.ctx.phase(name.replace("_", "-"))
        done = run_hook(hook, app_dir=self.ctx.app_dir, identity=self.identity, watch=self.ctx.watch)
        result[name] = done.to_dict()
        self.ctx.write_journal()
        self.ctx.log.write(f"{name} {service}: {'ok' if done.ok else 'FAILED'} ({done.why()})")
        return done

    def _safe_now(self, action: PlannedAction, result: Dict[str, Any]) -> bool:
        """Right before the restart: safe_to_restart once more (orders may have opened since the
        plan), then pre_restart. Either saying no defers the restart, with its words as the reason."""
        ctx = self.ctx
        if not ctx.job.override_unsafe:
            asked = self._hook(action.target, "safe_to_restart", result)
            if asked is not None and not asked.ok:
                why = f"safe_to_restart said no just before the restart: {asked.why()}"
                return self._defer(action, result, "unsafe", why)
        pre = self._hook(action.target, "pre_restart", result)
        if pre is not None and not pre.ok:
            return self._defer(action, result, "pre-restart", f"pre_restart failed: {pre.why()}")
        return True

    def _defer(self, action: PlannedAction, result: Dict[str, Any], kind: str, why: str) -> bool:
        path = self._write_alert(
            PlannedAction(action.kind, action.target, f"{action.reason}; restart deferred: {why}"),
            name=f"guardian_deferred_{action.target}",
        )
        result.update(result=events.DEFERRED, detail=why, defer=kind, file=os.path.basename(path))
        self.ctx.log.write(f"DEFERRED: restart of {action.target}: {why}")
        return False

    def _post_restart(self, action: PlannedAction, result: Dict[str, Any]) -> None:
        """After the new pid: post_restart (e.g. reconcile). A failure leaves the restart done but
        the host not healed (``unstable``)."""
        post = self._hook(action.target, "post_restart", result)
        if post is not None and not post.ok:
            problem = f"post_restart for {action.target} failed: {post.why()}"
            self.ctx.record.setdefault("unstable", []).append(
                {"service": action.target, "problem": problem, "down": False}
            )
            result["detail"] += f"; {problem}"

    def _restart(
        self, action: PlannedAction, result: Dict[str, Any], before: ServiceState
    ) -> Tuple[Optional[int], str]:
        """Restart through the manager and wait for a new pid. The commands actually run
        (``commands_before``, ``command``), and the way the manager was reached (``via``), go into
        the action's record before they run."""
        ctx = self.ctx
        spec = self.services[action.target]
        prelude = self.manager.restart_prelude(spec, before)
        if prelude:
            result["commands_before"] = [c.to_dict() for c in prelude]
        first = ""
        for step in prelude:  # e.g. systemctl reset-failed, for a unit at its start limit
            done = execute(step)
            shown = " ".join(step.argv)
            if done.exit_code != 0:
                raise ManagerError(f"{shown} failed (exit {done.exit_code}): {done.output.strip()}")
            ctx.log.write(f"Before restarting {action.target}: ran {shown}")
            first += f"ran {shown}; "

        def record(command: Command) -> None:
            shown = command.to_dict()
            if shown == result.get("command"):
                return
            result.pop("command_error", None)
            result.pop("via_reason", None)
            result.update(command=shown, **self.manager.route())
            ctx.write_journal()  # not the command the journal named (a fall-back): it says so first

        answered = run_command(self.manager, lambda: self.manager.restart_command(spec, before), record)
        if answered is None:  # pragma: no cover (every manager has a restart command)
            raise ManagerError(f"{self.manager.kind} has no restart command for {action.target}")
        answer = self.manager.restart_answer(spec, answered)
        answer = " / ".join(line.strip() for line in answer.splitlines() if line.strip())
        ctx.log.write(f"Restarting {action.target} via {self.manager.kind}: {answer}")
        deadline = time.monotonic() + ctx.settings.restart_timeout
        state = before
        # Managers' restarts usually return once the process is up: look at once, then back off
        # (a pid file or a socket call is cheap, a supervisorctl call costs a third of a CPU-second).
        pause = POLL_FIRST
        while True:
            state = self.status(spec)
            if state.running and state.pid is not None and state.pid != before.pid:
                facts = self.manager.restart_facts(spec, before, state)
                result.update(facts)
                note = "".join(f"; {v['note']}" for v in facts.values() if isinstance(v, dict) and v.get("note"))
                return state.pid, f"{first}{answer}; pid {before.pid} -> {state.pid}{note}"
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(pause, left))  # no stop inside an action: the restart is confirmed (or times out)
            pause = min(pause * 2, POLL_MAX)
        raise ManagerError(
            f"{action.target} did not come back with a new pid within the restart timeout "
            f"(before: {before.state} pid {before.pid}; now: {state.state} pid {state.pid})"
        )

    def status(self, spec: ServiceSpec) -> ServiceState:
        """The service's state: from its pid file when that names a live process running the
        configured program (a few syscalls), else from the process manager (supervisord's socket:
        one request; a ``supervisorctl`` call costs about a third of a CPU-second)."""
        if not self.manager.authoritative and spec.program and spec.pidfile and os.path.basename(spec.pidfile):
            quick = pidfile_status(spec)
            if quick.running:
                return ServiceState(True, quick.pid, "RUNNING (pid file)", quick.raw)
        try:
            return read_status(self.manager, spec)
        except ManagerError as exc:
            return ServiceState(False, None, "unknown", str(exc))

    def confirm(self, service: str, new_pid: Optional[int], *, first: bool = True) -> str:
        """At each verification pass: the restarted service still runs with the pid its restart
        gave it. Returns what went wrong ("" when it holds): it exited, or its manager restarted it."""
        ctx = self.ctx
        state = self.status(self.services[service])
        ok = state.running and state.pid == new_pid
        problem = ""
        if not ok:
            since = time.time() - self.restarted_at.get(service, time.time())
            if state.running and state.pid is not None:
                problem = (
                    f"{service} was restarted again by its process manager ({self.manager.kind}) {since:.0f} s "
                    f"after Guardian's restart: it died (pid {new_pid} -> {state.pid})"
                )
            else:
                problem = f"{service} exited {since:.0f} s after restart (pid {new_pid}; now {state.state})"
        if first or not ok:
            for action in ctx.record["actions"]:
                if action["kind"] == "restart" and action["target"] == service and action["result"] in ("ok", "failed"):
                    action["confirmed"] = ok
                    action["state_after_settle" if first else "state_when_lost"] = state.to_dict()
                    if not ok and action["result"] == "ok":
                        action["result"] = "failed"
                        action["detail"] += f"; did not stay up: {problem}"
            ctx.emit(events.confirm(service, ok, state.pid))
            ctx.log.write(f"{service} {'confirmed running' if ok else 'NOT confirmed: ' + problem} (pid {state.pid})")
        return problem

    def mark_unstable(self, service: str, problem: str) -> None:
        """A restarted service that runs but does not work (its heartbeat stands still)."""
        for action in self.ctx.record["actions"]:
            if action["kind"] == "restart" and action["target"] == service and action["result"] == "ok":
                action["result"] = "failed"
                action["detail"] += f"; {problem}"
        self.ctx.write_journal()

    def _write_alert(self, action: PlannedAction, *, name: Optional[str] = None) -> str:
        ctx = self.ctx
        stamp = time.strftime("%Y%m%d_%H%M%S")
        base = f"{name or action.target}_alert_{stamp}"
        text = (
            f"CRITICAL ALERT: {name or action.target}\n"
            f"Host: {ctx.record['host']} ({hostname()})\n"
            f"Time: {now_iso()}\n"
            f"Run: {ctx.run_id} ({ctx.record['runner']})\n"
            f"Reason: {action.reason}\n"
        )
        for n in range(100):
            name = f"{base}.txt" if n == 0 else f"{base}_{n}.txt"
            path = ctx.log_path(name)  # inside the logs/ directory opened at the start, never a link
            if path is None:
                raise OSError(f"{ctx.logs_dir} is not usable: no alert file written")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            ctx.log.write(f"CRITICAL: wrote alert {name}")
            ctx.created_files.append(name)
            return path
        raise OSError(f"could not create a unique alert file for {base}")
