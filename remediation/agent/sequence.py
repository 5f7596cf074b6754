"""The per-host sequence, run on the host: lock, check, classify, plan, act, settle, verify, log,
collect. The controller streams this program over one SSH session; cron runs it as is.

Everything the run does is in its record (``RunContext.record``), which is also its journal on
the host and, at the end, its ``result`` event. Nothing here talks to the network.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from . import VERSION, events
from .checkrun import CheckRun, run_check
from .collect import cron_runs, deployment, send_files
from .config import RunnerConfigError
from .context import RunContext, hostname, now_iso
from .guards import BreakerState, breaker_states, read_hold, reset_breakers
from .hostlock import HostBusy, HostLock
from .identity import Identity, IdentityError, resolve_run_as
from .journal import HostLog, adopt_legacy_state, prune
from .locks import LockDirError, LockVerdict, judge, probe_locks
from .plan import CheckState, Plan, RestartGate, check_state, decide, final_outcome, outcome_reason, restart_gate
from .safety import SafetyConfigError, ServiceSafety, heartbeat_mtime, run_hook, safety_of
from .signatures import load_signatures
from .telemetry import at_finish, ping_start
from .trust import refusal, root_reads, untrusted
from .watch import ControllerGone, StopRequested

if TYPE_CHECKING:  # pragma: no cover
    from .apply import Recovery

#: The process managers a host may name (``managers.MANAGERS`` implements each; a test keeps the
#: two equal). Checked here so that a healthy run need not load the managers at all.
MANAGER_KINDS = ("process-compose", "signal", "supervisor", "systemd")


def runner_cpu() -> float:
    """What this run has cost the host so far: the runner and every child it waited for (the
    check, hooks, manager commands), user + system CPU-s since it started, from getrusage
    (microseconds; ``os.times`` counts in clock ticks, 10 ms)."""
    import resource  # only here, at the end: 0.3 ms of import

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 4)


class Runner:
    """One Guardian run on this host (premarket or recover), from its context."""

    def __init__(self, ctx: RunContext) -> None:
        settings = ctx.settings
        self.ctx = ctx
        self.signatures = load_signatures(settings.signatures)
        if settings.manager not in MANAGER_KINDS:
            raise RunnerConfigError(
                f"unknown process manager {settings.manager!r}; expected one of {', '.join(MANAGER_KINDS)}"
            )
        self.identity: Optional[Identity] = None  # who the check runs as (None: this runner)
        self.trusted = False  # Guardian's directory passed the trust check
        self.service_names = sorted(settings.services)
        try:
            self.safety: Dict[str, ServiceSafety] = {
                name: safety_of(name, spec) for name, spec in settings.services.items()
            }
        except SafetyConfigError as exc:
            raise RunnerConfigError(str(exc)) from None
        self._recovery: Optional[Recovery] = None

    @property
    def recovery(self) -> Recovery:
        """The plan's actions and the manager that restarts services, loaded when a plan has
        actions: a healthy host's run never imports the managers, their commands or xmlrpc."""
        if self._recovery is None:
            from .apply import Recovery
            from .managers import ServiceSpec, make_manager

            ctx, settings = self.ctx, self.ctx.settings
            services = {
                name: ServiceSpec(
                    service=name,
                    name=str(spec.get("name", name)),
                    program=str(spec.get("program", "")),
                    pidfile=os.path.join(ctx.app_dir, str(spec.get("pidfile", ""))),
                )
                for name, spec in settings.services.items()
            }
            self._recovery = Recovery(
                ctx, make_manager(settings.manager, settings.manager_options), services, self.safety, self.identity
            )
        return self._recovery

    def run(self) -> Dict[str, Any]:
        ctx = self.ctx
        record = ctx.record
        record.update(
            {
                "host": ctx.host,
                "hostname": hostname(),
                "run_id": ctx.run_id,
                "runner": ctx.settings.runner,
                "version": VERSION,
                "dry_run": ctx.dry_run,
                "started_at": now_iso(ctx.started),
                "app_dir": ctx.app_dir,
                "manager": ctx.settings.manager,
                "check": os.path.basename(ctx.check_path),
                "actions": [],
                "files": [],
            }
        )
        ctx.emit(events.start(hostname=record["hostname"], version=record["version"], dry_run=record["dry_run"]))
        if not os.path.isdir(ctx.app_dir):
            return self.finish("unexpected", f"app dir {ctx.app_dir} does not exist")
        try:
            self.identity = resolve_run_as(ctx.settings.run_as, ctx.app_dir)
        except IdentityError as exc:
            return self.finish("unexpected", str(exc))
        as_runner = self.identity is None  # the check and the hooks run with this runner's privilege
        problems = untrusted(
            root_reads(
                guardian_dir=ctx.guardian_dir,
                check_path=ctx.check_path if as_runner else None,
                files=ctx.installed_files,
                programs=self.hook_files() if as_runner else (),
            ),
            owners=(os.getuid(),),
        )
        if problems:
            # Before anything is written or run: not the journal, the metrics, the check.
            record["untrusted"] = [p.describe() for p in problems]
            return self.finish("untrusted", refusal(problems, ctx.guardian_dir))
        self.trusted = True  # from here on Guardian's own directory may be written
        ping_start(ctx)
        if not ctx.dry_run:
            os.makedirs(ctx.logs_dir, mode=0o750, exist_ok=True)
            ctx.open_logs()
            os.makedirs(ctx.state_dir, mode=0o700, exist_ok=True)
            ctx.log = HostLog(ctx.log_path("guardian.log"))
            for warning in adopt_legacy_state(ctx.lock_dir, ctx.state_dir, ctx.journal_dir, ctx.log):
                ctx.warn(warning)
        holder = {
            "runner": record["runner"],
            "pid": os.getpid(),
            "run_id": ctx.run_id,
            "since": ctx.started,
            "since_iso": now_iso(ctx.started),
        }
        ctx.phase("lock")
        try:
            with HostLock(ctx.state_dir, holder=holder, wait=ctx.settings.lock_wait, dry_run=ctx.dry_run):
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
            ctx.log.write(f"Stopping: {exc}; the host lock is released")
            return self.finish("interrupted", reason, emit=isinstance(exc, StopRequested))

    def _locked_sequence(self) -> Dict[str, Any]:
        ctx, job = self.ctx, self.ctx.job
        record = ctx.record
        ctx.write_journal()  # from here on the host's record of this run survives any stop
        hold = read_hold(ctx.state_dir, now=time.time())
        if hold is not None:
            record["hold"] = hold.to_dict()
            return self.finish(
                "held", f"maintenance hold until {hold.to_dict()['until_iso']} by {hold.by or '?'}: {hold.reason}"
            )
        if job.reset_breaker:
            if ctx.dry_run:
                ctx.warn("would reset the restart budget (breaker)")
            elif reset_breakers(ctx.state_dir):
                ctx.log.write("Restart budget reset by the operator (--reset-breaker)")
        check_name = os.path.basename(ctx.check_path)
        ctx.log.write(f"Guardian {VERSION} run {ctx.run_id} ({record['runner']}) starting: {check_name}")
        ctx.phase("check")
        first = self._check(ctx.log_path(f"guardian_{ctx.check_stem}_output.log"))
        before = check_state(first.exit_code, timed_out=first.timed_out, error=first.error)
        record["before"] = {**first.to_dict(), "state": before.state, "reason": before.reason, **self._as_user()}
        ctx.emit(events.check("before", record["before"]))
        ctx.log.write(f"{check_name} exit code {first.exit_code} -> {before.state}")
        if first.timed_out or first.error:
            ctx.log.write(f"ERROR: {before.reason}")
        verdicts = self._lock_verdicts()
        record["locks"] = [
            {"name": v.lock.name, "stale": v.stale, "reason": v.reason, "pid": v.lock.pid} for v in verdicts
        ]
        breakers = self._breakers()
        record["breakers"] = {k: v.to_dict() for k, v in breakers.items() if v.recent}

        def make_plan(suppress: Dict[str, str], gates: Optional[Dict[str, RestartGate]] = None) -> Plan:
            return decide(
                before,
                first.matches,
                verdicts,
                self.signatures,
                self.service_names,
                settle_seconds=ctx.settings.settle_seconds,
                force=job.force,
                only=list(job.only),
                suppress=suppress,
                breakers=breakers,
                gates=gates,
            )

        plan = make_plan(dict(job.suppress))
        if plan.recover and job.defer and not ctx.dry_run:
            # Survey for the blast-radius guard: the controller decides, then runs us again to act.
            record["plan"] = self._plan_record(plan)
            ctx.emit(events.plan(record["plan"]))
            return self.finish("surveyed", "checked; recovery waits for the fleet-wide incident check")
        # Safe to act: each restart's quiet windows and safe_to_restart, asked once, before the
        # plan (a dry run shows the answers); the restart asks safe_to_restart again right before.
        gates = self._gates(plan)
        if gates:
            plan = make_plan(dict(job.suppress), gates)
        record["plan"] = self._plan_record(plan)
        ctx.emit(events.plan(record["plan"]))
        after: Optional[CheckState] = None
        if plan.recover and job.gate and not ctx.dry_run:
            # Blast-radius guard in one session: hold here (lock kept, nothing changed) until the
            # controller has seen enough of the fleet to say which signatures are an incident.
            from .gate import await_gate  # only a host with something to act on waits at the gate

            plan = make_plan(await_gate(ctx, first.matches), gates)
            record["plan"] = self._plan_record(plan)
            ctx.emit(events.plan(record["plan"]))
        if plan.recover and not ctx.dry_run:
            after = self._recover(plan, verdicts)
        elif plan.recover:
            for step in record["plan"]["actions"]:
                ctx.emit(events.planned(step))
        deferred = self._deferred(plan)
        unstable = [str(p["problem"]) for p in record.get("unstable", [])]
        outcome = final_outcome(
            before,
            after,
            dry_run=ctx.dry_run,
            held_back=plan.held_back,
            deferred=bool(deferred),
            unstable=unstable,
            service_down=any(p.get("down") for p in record.get("unstable", [])),
        )
        failed = [f"{a['kind']} {a['target']}" for a in record.get("actions", []) if a.get("result") == "failed"]
        reason = outcome_reason(outcome, after, plan, failed, unstable=unstable, deferred=deferred)
        return self.finish(outcome, reason)

    def _plan_record(self, plan: Plan) -> Dict[str, Any]:
        """The plan as recorded: each action with the command it runs (a plan with no action
        needs no manager to describe it)."""
        return self.recovery.plan_record(plan) if plan.actions else plan.to_dict()

    def _check(self, log_path: Optional[str]) -> CheckRun:
        ctx = self.ctx
        python = ctx.settings.python or sys.executable or "python3"
        argv = [python, ctx.check_path, *[str(a) for a in ctx.settings.check_args]]
        return run_check(
            argv,
            cwd=ctx.app_dir,
            timeout=ctx.settings.check_timeout,
            signatures=self.signatures,
            log_path=None if ctx.dry_run else log_path,
            watch=ctx.watch,
            identity=self.identity,
        )

    def _as_user(self) -> Dict[str, str]:
        """Who ran the check, for its record, when not this runner itself (run_as)."""
        return {"user": self.identity.describe()} if self.identity is not None else {}

    def _lock_verdicts(self) -> List[LockVerdict]:
        ctx = self.ctx
        if not os.path.lexists(ctx.lock_dir):
            # Never created: a mistyped lock_dir must not pass for a folder with no stale locks.
            ctx.warn(
                f"lock dir {ctx.lock_dir} does not exist: no locks inspected or cleared (check the lock_dir setting)"
            )
            return []
        try:
            locks = probe_locks(ctx.lock_dir)
        except LockDirError as exc:
            ctx.warn(f"locks not inspected: {exc}")
            return []
        return [judge(lock, now=time.time(), max_age=ctx.settings.lock_max_age) for lock in locks]

    def _breakers(self) -> Dict[str, BreakerState]:
        settings = self.ctx.settings
        return breaker_states(
            self.ctx.state_dir,
            self.service_names,
            now=time.time(),
            max_restarts=settings.restart_budget_max,
            window=settings.restart_budget_window,
        )

    def hook_files(self) -> List[str]:
        """The files the services' hooks execute (for the trust check)."""
        app_dir = self.ctx.app_dir
        return [f for safety in self.safety.values() for hook in safety.hooks.values() for f in hook.files(app_dir)]

    def _gates(self, plan: Plan) -> Dict[str, RestartGate]:
        """For each restart the plan would do: its quiet window now and what safe_to_restart says
        (asked in a dry run too: it only reads). Nothing for a plan that restarts nothing."""
        ctx, job = self.ctx, self.ctx.job
        targets = [a.target for a in plan.actions if a.kind == "restart"]
        if not targets:
            return {}
        from .windows import WindowError, judge, parse_windows

        try:
            windows = parse_windows(ctx.settings.quiet_windows)
        except WindowError as exc:
            raise RunnerConfigError(f"quiet_windows {exc.key}: {exc}") from None
        now = dt.datetime.fromtimestamp(ctx.clock(), dt.timezone.utc)
        gates: Dict[str, RestartGate] = {}
        for service in targets:
            mine = [w for w in windows if w.applies_to(service)]
            verdict = judge(service, mine, now).to_dict() if mine else None
            hook = self.safety[service].hook("safe_to_restart")
            answer = None
            if hook is not None:
                ctx.phase("safe-to-restart")
                done = run_hook(hook, app_dir=ctx.app_dir, identity=self.identity, watch=ctx.watch)
                answer = done.to_dict()
                ctx.log.write(f"safe_to_restart {service}: {'go' if done.ok else 'NOT SAFE'} ({done.why()})")
            gates[service] = restart_gate(
                service,
                verdict,
                answer,
                override_windows=job.override_windows,
                override_unsafe=job.override_unsafe,
            )
        ctx.record["gates"] = {
            name: {"deferred": g.deferred, "kind": g.kind, "reason": g.reason, "notes": list(g.notes), **g.detail}
            for name, g in gates.items()
        }
        return gates

    def _deferred(self, plan: Plan) -> List[str]:
        """Each restart put off (by the plan, or at the last moment by safe_to_restart or a failing
        pre_restart), with when Guardian tries again; kept in the record's ``deferred``."""
        ctx = self.ctx
        if ctx.dry_run:
            steps = [
                {"target": a.target, "defer": a.detail.get("defer", ""), "reason": a.reason, "gate": a.detail["gate"]}
                for a in plan.actions
                if a.kind == "defer"
            ]
        else:
            steps = [a for a in ctx.record.get("actions", []) if a.get("result") == events.DEFERRED]
        entries: List[Dict[str, Any]] = []
        lines: List[str] = []
        for step in steps:
            gate = step.get("gate") or {}
            until = (gate.get("window") or {}).get("until") if step.get("defer") == "quiet-window" else None
            why = str(step.get("detail") or step.get("reason") or "").split("restart deferred: ", 1)[-1]
            entry = {"service": step["target"], "kind": step.get("defer", ""), "reason": why, **self._next_try(until)}
            entries.append(entry)
            lines.append(f"{entry['service']} restart deferred: {why}; next try: {entry['retry']}")
        if entries:
            ctx.record["deferred"] = entries
        return lines

    def _next_try(self, until: Optional[str]) -> Dict[str, Any]:
        """When Guardian will try again: the next scheduled run of this check (after the quiet
        window, for a window), else the next run anyone starts."""
        ctx = self.ctx
        from .collect import next_scheduled_run
        from .missed import parse_iso

        start = parse_iso(until) if until else None
        after = start or dt.datetime.fromtimestamp(ctx.clock(), dt.timezone.utc)
        fire = next_scheduled_run(ctx, after)
        ended = f" (the quiet window ends {until})" if until else ""
        if fire is None:
            anyone = f"the next premarket or recover run{ended}; no schedule of this check is deployed here"
            return {"retry_at": until, "retry": anyone}
        at = fire.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"retry_at": at, "retry": f"the scheduled run at {at}{ended}"}

    def _recover(self, plan: Plan, verdicts: List[LockVerdict]) -> Optional[CheckState]:
        """Apply the plan, wait for things to settle, then verify that the host is healed and stays
        so. None when nothing was changed that a check could see (every restart deferred)."""
        ctx = self.ctx
        restarted = self.recovery.apply(plan, verdicts)
        done = [a for a in ctx.record["actions"] if a.get("kind") in ("remove_lock", "restart")]
        deferred = any(a.get("result") == events.DEFERRED for a in ctx.record["actions"])
        if deferred and not any(a.get("result") in ("ok", "failed") for a in done):
            ctx.log.write("Nothing changed (every restart deferred): no re-verification")
            return None
        settle = plan.settle_seconds
        ctx.phase("settle")
        ctx.log.write(f"Waiting {settle:g}s for stabilization")
        ctx.watch.sleep(max(0.0, settle))
        return self._verify(restarted)

    def _verify(self, restarted: Dict[str, Optional[int]]) -> CheckState:
        """Healed means stable: the check passes ``verify_passes`` times in a row over
        ``verify_window`` seconds, each restarted service keeps the pid its restart gave it, and a
        configured heartbeat file moves. The first failure ends verification."""
        ctx, settings = self.ctx, self.ctx.settings
        passes = max(1, settings.verify_passes)
        interval = settings.verify_window / (passes - 1) if passes > 1 else 0.0
        ctx.phase("verify")
        verify: Dict[str, Any] = {"passes_wanted": passes, "window": settings.verify_window, "passes": []}
        ctx.record["verify"] = verify
        unstable: List[Dict[str, Any]] = ctx.record.setdefault("unstable", [])
        beats: Dict[str, Optional[float]] = {}
        first_pass = time.monotonic()
        after = CheckState("unexpected", "not verified")
        for n in range(passes):
            if n:
                ctx.watch.sleep(interval)
            ctx.log.write("Re-verifying" if passes == 1 else f"Re-verifying ({n + 1}/{passes})")
            retry = self._check(ctx.log_path(f"guardian_retry_{ctx.check_stem}.log"))
            after = check_state(retry.exit_code, timed_out=retry.timed_out, error=retry.error)
            ctx.record["after"] = {**retry.to_dict(), "state": after.state, "reason": after.reason, **self._as_user()}
            verify["passes"].append(
                {"pass": n + 1, "at": now_iso(), "exit_code": retry.exit_code, "state": after.state}
            )
            ctx.emit(events.check("after", ctx.record["after"]))
            ctx.log.write(f"Re-verification exit code {retry.exit_code} -> {after.state}")
            for service, new_pid in restarted.items():
                problem = self.recovery.confirm(service, new_pid, first=n == 0)
                if problem and not any(p["service"] == service for p in unstable):
                    unstable.append({"service": service, "problem": problem, "down": True})
                if n == 0:
                    beats[service] = self._beat(service)
                    first_pass = time.monotonic()
            if after.state != "healthy" or unstable:
                break
        else:
            self._await_heartbeats(restarted, beats, unstable, since=first_pass)
        verify["stable"] = after.state == "healthy" and not unstable
        ctx.write_journal()
        return after

    def _beat(self, service: str) -> Optional[float]:
        heartbeat = self.safety[service].heartbeat
        return heartbeat_mtime(self.ctx.app_dir, heartbeat) if heartbeat else None

    def _await_heartbeats(
        self,
        restarted: Dict[str, Optional[int]],
        first: Dict[str, Optional[float]],
        unstable: List[Dict[str, Any]],
        *,
        since: float,
    ) -> None:
        """Each restarted service with a heartbeat must move it after the first verification
        pass (at monotonic ``since``): waited for up to its ``heartbeat_max_age`` from then; a pid
        that lives on with a heartbeat standing still is a hung daemon, not a healed one."""
        ctx = self.ctx
        waiting = {s: first.get(s) for s in restarted if self.safety[s].heartbeat}
        if not waiting:
            return
        deadline = {s: since + self.safety[s].heartbeat_max_age for s in waiting}
        while waiting:
            for service in list(waiting):
                now_beat = self._beat(service)
                if now_beat is not None and (waiting[service] is None or now_beat > waiting[service]):  # type: ignore[operator]
                    ctx.log.write(f"{service} heartbeat {self.safety[service].heartbeat} moves")
                    del waiting[service]
                elif time.monotonic() >= deadline[service]:
                    safety = self.safety[service]
                    seen = "missing" if now_beat is None else f"last written {time.time() - now_beat:.0f} s ago"
                    problem = (
                        f"{service} heartbeat {safety.heartbeat} did not move for {safety.heartbeat_max_age:g} s "
                        f"after its restart ({seen}) while pid {restarted[service]} runs: hung"
                    )
                    unstable.append({"service": service, "problem": problem, "down": True})
                    self.recovery.mark_unstable(service, problem)
                    ctx.log.write(f"ERROR: {problem}")
                    del waiting[service]
            if waiting:
                ctx.watch.sleep(0.25)

    def finish(self, outcome: str, reason: str, *, emit: bool = True) -> Dict[str, Any]:
        ctx = self.ctx
        record = ctx.record
        if ctx.log.error:
            ctx.warn(ctx.log.error)
        record.update(
            outcome=outcome,
            reason=reason,
            finished_at=now_iso(),
            duration=round(time.time() - ctx.started, 3),
        )
        ctx.log.write(f"Run {ctx.run_id} finished: {outcome}{' - ' + reason if reason else ''}")
        trusted = self.trusted  # an unchecked or untrusted Guardian dir gets nothing written into it
        if trusted and not ctx.dry_run and outcome != "busy":  # busy: another run holds the lock
            pruned = prune(ctx.journal_dir, keep=ctx.settings.journal_retain)
            pruned += prune(ctx.logs_dir, keep=ctx.settings.alert_retain, alerts=True)
            if pruned:
                ctx.log.write(f"Pruned {len(pruned)} old journal and alert file(s) (journal_retain, alert_retain)")
        if trusted and os.path.isdir(ctx.app_dir):
            at_finish(ctx, record)  # metrics and the end ping, whose problems the journal keeps
        if trusted and os.path.isdir(ctx.state_dir):
            ctx.write_journal()
        if not emit:
            return record
        collect = not ctx.dry_run and ctx.job.collect and trusted
        if collect:
            record["cron_runs"] = cron_runs(ctx)
            record["self_heal"] = deployment(ctx)
        record["runner_cpu"] = runner_cpu()
        ctx.emit(events.result(record))
        if collect:
            send_files(ctx)
        return record
