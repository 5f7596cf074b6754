"""Fan a job out over many hosts: a bounded pool, a deadline per host, no barrier across hosts.

Every selected host ends with an outcome in the RunReport, whatever happens to the others; the
report is saved after each host finishes and once more at the end, also on Ctrl-C.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from .hostrun import HostRun, JobOptions, Progress
from .inventory import HostSpec, Inventory
from .report import HostReport, ReportStore, RunReport
from .transport import ConnectOptions

DEFAULT_FORKS = 32


def _iso(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


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
) -> RunReport:
    """Run ``job`` on every host and return the run's report (also saved in ``store``)."""
    report = RunReport(run_id=job.run_id, command=job.command, started_at=_iso(), options=dict(options or {}))
    placeholders = {
        h.name: HostReport(h.name, "local" if h.is_local else h.address, "local" if h.is_local else "ssh")
        for h in hosts
    }
    report.hosts = [placeholders[h.name] for h in hosts]
    save_lock = threading.Lock()

    def save(final: bool = False) -> None:
        with save_lock:
            if final:
                report.finished_at = _iso()
                report.exit_code = report.compute_exit_code()
                report.complete = True
            store.save(report, summary=summarize(report) if summarize and final else None)

    save()
    runs = {h.name: HostRun(h, inventory, job, connect, store, progress or (lambda host, phase: None)) for h in hosts}
    pool = ThreadPoolExecutor(max_workers=max(1, min(forks, len(hosts) or 1)), thread_name_prefix="guardian-host")
    futures: dict[Future[HostReport], str] = {pool.submit(run.run): name for name, run in runs.items()}
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                _place(report, future.result())
                save()
    except KeyboardInterrupt:
        report.interrupted = True
        for future in pending:
            future.cancel()
        for run in runs.values():
            run.interrupt()
        for future, name in futures.items():
            if future.cancelled():
                host_report = placeholders[name]
                host_report.outcome = "interrupted"
                host_report.reason = "interrupted before this host started"
            elif future.done():
                _place(report, future.result())
            else:
                host_report = runs[name].report
                host_report.outcome = "interrupted"
                host_report.reason = "interrupted (Ctrl-C) while running; the host's session was closed"
                _place(report, host_report)
    finally:
        pool.shutdown(wait=not report.interrupted, cancel_futures=True)
        save(final=True)
    return report


def _place(report: RunReport, host_report: HostReport) -> None:
    for index, existing in enumerate(report.hosts):
        if existing.host == host_report.host:
            report.hosts[index] = host_report
            return
    report.hosts.append(host_report)
