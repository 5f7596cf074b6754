"""Fan a job out over many hosts: a bounded pool, a deadline per host, no barrier across hosts.

Every selected host ends with an outcome in the RunReport, whatever happens to the others; the
report is saved when the run starts, each host's record is appended to the run's journal as it
finishes (nothing finished is lost if the controller dies), and the whole report is saved once
more at the end, also on Ctrl-C.

With the blast-radius guard on, each host is first surveyed and acted on as soon as its
signatures are decided: a signature on more than K% of the hosts is a common-cause incident,
reported once, and its actions are suppressed unless the operator forces them. When every host
has a worker (forks >= hosts) the survey happens inside the host's one session: the runner checks,
announces its signatures at a *gate* and waits, holding the host lock, for the controller's answer
on stdin. With fewer workers than hosts, a host waiting at a gate could starve hosts not yet
started, so the survey is a separate first run instead (the runner defers; a second run acts).

With ``batches`` (rolling recovery) the batches run one after another and no new batch starts
once failures pass ``max_fail_percent``; unreachable hosts count as failures.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from ..agent.outcomes import OK_OUTCOMES
from ..inventory import HostSpec, Inventory
from ..reporting.report import HostReport, ReportStore, RunReport
from .hostrun import HostRun, JobOptions, Progress
from .survey import BlastGuard, host_decision, signature_verdicts
from .transport import ConnectOptions

DEFAULT_FORKS = 32
#: After the first Ctrl-C, how long hosts get to finish the action in hand and report it.
STOP_GRACE = 25.0
#: The survey's outcome for a host that needs acting on.
_SURVEYED = "surveyed"
#: Makes one host's run, called as ``host_run(host, inventory, job, connect, store, progress,
#: on_gate=...)``: HostRun itself, or (in tests) a HostRun whose session is scripted.
HostRunFactory = Callable[..., HostRun]


def start_workers(pool: ThreadPoolExecutor, count: int, timeout: float = 10.0) -> None:
    """Start ``count`` of the pool's threads before any host's work is submitted.

    A pool starts a thread on each ``submit``, and ``Thread.start`` waits until the new thread
    runs: once the first hosts are handshaking (paramiko's crypto holds the GIL), each start
    waited ~30 ms for the GIL, so at 40 hosts the last one began 1.2 s after the first (measured
    with cProfile on the bench lab). Started here, while nothing else runs, they cost ~0.1 ms
    each, and each ``submit`` after is a queue put. Each warm-up task waits at a barrier, so no
    thread is idle (and reused) until all are started."""
    barrier = threading.Barrier(count + 1, timeout=timeout)
    for _ in range(count):
        pool.submit(barrier.wait)
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass  # a thread could not start in time: the pool starts the rest as work comes


def _iso(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


class FleetRun:
    """State of one fleet run: which host is in which phase, and the report being built."""

    def __init__(
        self,
        hosts: Sequence[HostSpec],
        inventory: Inventory | None,
        job: JobOptions,
        *,
        connect: ConnectOptions,
        store: ReportStore,
        forks: int,
        options: dict[str, Any],
        progress: Progress,
        summarize: Callable[[RunReport], str] | None,
        blast: BlastGuard | None,
        batches: list[list[str]] | None,
        max_fail_percent: float | None,
        notify: Callable[[str], None] | None = None,
        stop_grace: float = STOP_GRACE,
        host_run: HostRunFactory = HostRun,
    ) -> None:
        self.hosts = {h.name: h for h in hosts}
        self.host_run = host_run
        self.notify = notify or (lambda message: None)
        self.stop_grace = stop_grace
        self.order = [h.name for h in hosts]
        self.inventory = inventory
        self.job = job
        self.connect = connect
        self.store = store
        self.progress = progress
        self.summarize = summarize
        self.report = RunReport(run_id=job.run_id, command=job.command, started_at=_iso(), options=options)
        self.report.hosts = [
            HostReport(h.name, "local" if h.is_local else h.address, "local" if h.is_local else "ssh") for h in hosts
        ]
        # A rolling recovery (several batches) is its own blast-radius limit: one batch at a time,
        # verified before the next, and later batches are not even surveyed.
        self.survey_on = (
            blast is not None
            and not job.dry_run
            and job.action == "run"
            and len(hosts) >= blast.min_hosts
            and not (batches and len(batches) > 1)
        )
        self.blast = blast or BlastGuard()
        self.batches = batches or [list(self.order)]
        self.max_fail_percent = max_fail_percent
        self.survey: dict[str, list[str] | None] = dict.fromkeys(self.order) if self.survey_on else {}
        self.gated_mode = self.survey_on and forks >= len(hosts)
        self.gated: set[str] = set()  # hosts waiting at (or past) their gate
        self.gate_events: list[tuple[str, list[str], bool]] = []
        self.gate_lock = threading.Lock()
        self.wakeup: Future[None] = Future()
        self.candidates: dict[str, list[str]] = {}  # host -> signatures, awaiting a decision
        self.ready: dict[str, dict[str, str]] = {}  # host -> signatures to suppress, decided
        self.final: set[str] = set()
        self.runs: dict[str, HostRun] = {}
        self.futures: dict[Future[HostReport], tuple[str, str]] = {}
        self.batch_index = 0
        self.batch_started = False
        self.stopped_reason = ""
        self.workers = max(1, min(forks, len(hosts) or 1))
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="guardian-host")
        self.save_lock = threading.Lock()

    # -- bookkeeping ---------------------------------------------------------------------

    def save(self, final: bool = False) -> None:
        with self.save_lock:
            if final:
                self.report.finished_at = _iso()
                self.report.exit_code = self.report.compute_exit_code()
                self.report.complete = True
            self.store.save(self.report, summary=self.summarize(self.report) if self.summarize and final else None)

    def place(self, host_report: HostReport) -> None:
        for index, existing in enumerate(self.report.hosts):
            if existing.host == host_report.host:
                self.report.hosts[index] = host_report
                return

    def finish_host(self, host_report: HostReport) -> None:
        self.final.add(host_report.host)
        self.place(host_report)
        with self.save_lock:
            self.store.record_host(self.report, host_report)  # one line, not the whole report again

    def submit(self, name: str, phase: str, job: JobOptions) -> None:
        run = self.host_run(
            self.hosts[name], self.inventory, job, self.connect, self.store, self.progress, on_gate=self.on_gate
        )
        self.runs[name] = run
        self.futures[self.pool.submit(run.run)] = (name, phase)

    # -- phases --------------------------------------------------------------------------

    def on_gate(self, name: str, signatures: list[str], waiting: bool) -> None:
        """A runner reached its gate (``waiting``), or planned nothing to act on; called from that
        host's output thread: queue it and wake the loop."""
        with self.gate_lock:
            self.gate_events.append((name, signatures, waiting))
            if not self.wakeup.done():
                self.wakeup.set_result(None)

    def drain_gates(self) -> None:
        with self.gate_lock:
            events, self.gate_events = self.gate_events, []
            if self.wakeup.done():
                self.wakeup = Future()
        for name, signatures, waiting in events:
            if name in self.final:
                continue  # its whole run ended first; on_survey has counted it
            self.survey[name] = signatures
            if waiting:
                self.gated.add(name)
                self.candidates[name] = signatures
        if events:
            self.decide()

    def start(self) -> None:
        start_workers(self.pool, self.workers)
        if self.survey_on:
            survey_job = (
                dataclasses.replace(self.job, gate=True)
                if self.gated_mode
                else dataclasses.replace(self.job, defer=True)
            )
            for name in self.order:
                self.submit(name, "survey", survey_job)
        else:
            self.ready = {name: {} for name in self.order}
        self.advance()

    def on_survey(self, name: str, result: HostReport) -> None:
        if self.gated_mode:
            # The host's only run is over: it never reached a gate (healthy, unreachable...), or it
            # acted after its answer. Either way its outcome is final.
            if self.survey[name] is None:
                self.survey[name] = []
            self.candidates.pop(name, None)
            self.finish_host(result)
        elif result.outcome == _SURVEYED:
            self.survey[name] = list(result.matched_signatures)
            self.candidates[name] = list(result.matched_signatures)
        else:
            self.survey[name] = []
            self.finish_host(result)
        self.decide()

    def decide(self) -> None:
        verdicts = signature_verdicts(self.survey, self.blast)
        for name, signatures in list(self.candidates.items()):
            decidable, incident = host_decision(signatures, verdicts)
            if not decidable:
                continue
            del self.candidates[name]
            self.ready[name] = {} if self.blast.force else {sig: self.incident_reason(sig) for sig in incident}
        self.record_incidents(verdicts)
        self.advance()

    def incident_reason(self, signature: str) -> str:
        hits = [h for h, sigs in self.survey.items() if sigs and signature in sigs]
        return (
            f"common-cause incident: {signature} on {len(hits)} of {len(self.survey)} hosts "
            f"(> {self.blast.percent:g}%); not acting on any of them. Re-run with --force to act anyway"
        )

    def record_incidents(self, verdicts: dict[str, str | None]) -> None:
        for signature, verdict in verdicts.items():
            if verdict != "incident":
                continue
            hits = sorted(h for h, sigs in self.survey.items() if sigs and signature in sigs)
            entry = {
                "signature": signature,
                "hosts": hits,
                "selected": len(self.survey),
                "threshold_percent": self.blast.percent,
                "forced": self.blast.force,
            }
            existing = next((i for i in self.report.incidents if i["signature"] == signature), None)
            if existing is None:
                self.report.incidents.append(entry)
            else:
                existing.update(entry)

    def advance(self) -> None:
        """Start phase-2 work that is ready, batch by batch."""
        while self.batch_index < len(self.batches) and not self.stopped_reason:
            batch = self.batches[self.batch_index]
            rolling = len(self.batches) > 1
            if rolling and self.survey_on and any(self.survey[n] is None or n in self.candidates for n in batch):
                return  # a rolling batch starts once all its hosts are decided
            for name in batch:
                if name in self.ready:
                    suppress = self.ready.pop(name)
                    if name in self.gated:
                        gate = self.runs[name].gate
                        if gate is not None:
                            gate.answer(suppress)
                    elif self.gated_mode:
                        continue  # the host's run is still on its way to the gate, or final
                    else:
                        self.submit(name, "act", dataclasses.replace(self.job, suppress=suppress))
            if not rolling:
                return
            if any(n not in self.final for n in batch):
                return  # wait for the batch to finish
            self.check_failures(batch)
            self.batch_index += 1

    def check_failures(self, batch: list[str]) -> None:
        if self.max_fail_percent is None:
            return
        done = [h for h in self.report.hosts if h.host in self.final]
        # a deferred restart was put off on purpose (orders in flight...): not a failed host
        failed = [h.host for h in done if h.outcome not in OK_OUTCOMES and h.outcome != "deferred"]
        percent = len(failed) * 100.0 / len(self.order)
        if percent > self.max_fail_percent and self.batch_index + 1 < len(self.batches):
            self.stopped_reason = (
                f"stopped after batch {self.batch_index + 1} of {len(self.batches)}: {len(failed)} of "
                f"{len(self.order)} hosts failed or unreachable ({percent:.0f}% > --max-fail-percent "
                f"{self.max_fail_percent:g}%): {', '.join(failed)}"
            )
            self.report.stopped_reason = self.stopped_reason
            for later in self.batches[self.batch_index + 1 :]:
                for name in later:
                    if name not in self.final:
                        skipped = HostReport(
                            name,
                            self.hosts[name].address,
                            "ssh",
                            outcome="skipped",
                            reason=f"not started: {self.stopped_reason}",
                        )
                        self.finish_host(skipped)  # later batches were never submitted

    def run(self) -> RunReport:
        self.save()
        try:
            self.start()  # a Ctrl-C while hosts are being started is handled like any other
            while len(self.final) < len(self.order):
                self.drain_gates()
                active = [f for f in self.futures if not f.done()]
                done_now = [f for f in self.futures if f.done()]
                if not done_now and not active:
                    break  # nothing left that could finish the remaining hosts
                if not done_now:
                    waiting: list[Future[Any]] = [*active, self.wakeup]
                    wait(waiting, timeout=0.5, return_when=FIRST_COMPLETED)
                    continue
                for future in done_now:
                    name, phase = self.futures.pop(future)
                    if future.cancelled():
                        continue
                    result = future.result()
                    if phase == "survey":
                        self.on_survey(name, result)
                    else:
                        self.finish_host(result)
                        self.advance()
        except KeyboardInterrupt:
            self.stop()
        finally:
            self.pool.shutdown(wait=not self.report.interrupted, cancel_futures=True)
            for name in self.order:
                if name not in self.final:
                    self.place(
                        HostReport(
                            name,
                            self.hosts[name].address,
                            "ssh",
                            outcome="interrupted" if self.report.interrupted else "failed",
                            reason="interrupted before this host finished"
                            if self.report.interrupted
                            else "Guardian could not schedule this host",
                        )
                    )
            self.save(final=True)
        return self.report

    def stop(self) -> None:
        """Ctrl-C: no new host starts; each running host is asked to stop at its next safe point
        and given ``stop_grace`` seconds to report what it did; a second Ctrl-C, or the end of
        the grace, cuts the sessions that are still open."""
        self.report.interrupted = True
        for future in self.futures:
            future.cancel()
        running = {f: n for f, (n, _) in self.futures.items() if not f.done() and not f.cancelled()}
        if running:
            self.notify(
                f"Ctrl-C: asking {len(running)} running host(s) to stop at their next safe point and report "
                f"what they did (up to {self.stop_grace:g}s); press Ctrl-C again to cut them off now"
            )
            for name in running.values():
                self.runs[name].request_stop("the operator pressed Ctrl-C on the controller")
            deadline = time.monotonic() + self.stop_grace
            try:
                while running and time.monotonic() < deadline:
                    done, _ = wait(list(running), timeout=min(0.5, max(0.0, deadline - time.monotonic())))
                    for future in done:
                        name = running.pop(future)
                        self.futures.pop(future, None)
                        result = future.result()
                        if result.outcome == _SURVEYED:  # a survey that ended before acting
                            result.outcome = "interrupted"
                            result.reason = "checked, then interrupted (Ctrl-C) before acting; nothing changed"
                        self.finish_host(result)
            except KeyboardInterrupt:
                self.notify("Ctrl-C again: cutting the remaining sessions")
        self.interrupt()

    def interrupt(self) -> None:
        """Cut every session still open; their hosts end ``interrupted``."""
        self.report.interrupted = True
        for future in self.futures:
            future.cancel()
        for name, run in self.runs.items():
            run.interrupt()
            if name in self.final or not run.report.started_at:
                continue  # a run that never started: run() reports it, as not finished
            self.place(run.report)
            self.final.add(name)


def run_fleet(
    hosts: Sequence[HostSpec],
    inventory: Inventory | None,
    job: JobOptions,
    *,
    connect: ConnectOptions,
    store: ReportStore,
    forks: int = DEFAULT_FORKS,
    options: dict[str, Any] | None = None,
    progress: Progress | None = None,
    summarize: Callable[[RunReport], str] | None = None,
    blast: BlastGuard | None = None,
    batches: list[list[str]] | None = None,
    max_fail_percent: float | None = None,
    notify: Callable[[str], None] | None = None,
    stop_grace: float = STOP_GRACE,
    host_run: HostRunFactory = HostRun,
) -> RunReport:
    """Run ``job`` on every host and return the run's report (also saved in ``store``).
    ``host_run`` makes each host's run (see :data:`HostRunFactory`)."""
    return FleetRun(
        hosts,
        inventory,
        job,
        connect=connect,
        store=store,
        forks=forks,
        options=dict(options or {}),
        progress=progress or (lambda host, phase: None),
        summarize=summarize,
        blast=blast,
        batches=batches,
        max_fail_percent=max_fail_percent,
        notify=notify,
        stop_grace=stop_grace,
        host_run=host_run,
    ).run()
