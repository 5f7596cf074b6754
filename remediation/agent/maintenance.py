"""``invoke hold`` / ``invoke release`` on the host: put or lift a maintenance hold, which every
later run (laptop or cron) honours until it expires (see ``guards``)."""

from __future__ import annotations

import os
import time
from typing import Any, Dict

from . import events
from .context import RunContext
from .guards import Hold, release_hold, write_hold
from .journal import HostLog
from .trust import refusal, root_reads, untrusted


def change_hold(ctx: RunContext, action: str) -> int:
    """Hold (``action == "hold"``) or release this host; returns the runner's exit code."""
    ctx.announce()
    if os.path.isdir(ctx.logs_dir):
        ctx.open_logs()
    job = ctx.job
    now = time.time()
    record: Dict[str, Any] = {"host": ctx.settings.host, "run_id": ctx.run_id, "actions": []}
    problems = untrusted(root_reads(guardian_dir=ctx.guardian_dir), owners=(os.getuid(),))
    if problems:  # the hold lives in Guardian's state: not written where another user can swap it
        record.update(outcome="untrusted", reason=refusal(problems, ctx.guardian_dir))
        ctx.emit(events.result(record))
        return 2
    if action == "hold":
        hold = Hold(now + job.hold_seconds, job.hold_reason, job.hold_by, now)
        if not ctx.dry_run:
            os.makedirs(ctx.state_dir, mode=0o700, exist_ok=True)
            write_hold(ctx.state_dir, hold)
            HostLog(ctx.log_path("guardian.log")).write(
                f"Maintenance hold until {hold.to_dict()['until_iso']} by {hold.by}: {hold.reason}"
            )
        record.update(
            outcome="held", reason=f"held until {hold.to_dict()['until_iso']}: {hold.reason}", hold=hold.to_dict()
        )
    else:
        existed = False if ctx.dry_run else release_hold(ctx.state_dir)
        if existed:
            HostLog(ctx.log_path("guardian.log")).write("Maintenance hold released")
        record.update(outcome="released", reason="hold released" if existed else "no hold was set")
    ctx.emit(events.result(record))
    return 0
