"""What a run tells the monitoring people already run, at its start and end: Prometheus textfile
metrics (every premarket/recover run, cron's included) and dead man's switch pings (cron's runs,
when the host has a ping URL).

Only cron's runs ping: the switch answers "is this droplet still healing itself with no laptop
involved?", and a laptop run is watched by its operator. The ping URL is a secret that reaches
the host only in ``<install dir>/secrets.json`` (mode 0600, written by deploy from what the
controller sent on stdin), never on a command line, in a log or in a report.
"""

from __future__ import annotations

import json
import os
import stat
import time
from typing import Any, Dict, Optional, Tuple

from . import BUNDLE_DIGEST
from .context import RunContext
from .metrics import metrics_dir, render_metrics, write_metrics
from .outcomes import RUNNER_OK, runner_exit_code


def read_secrets(path: str) -> Tuple[Dict[str, str], Optional[str]]:
    """cron's secrets from ``path`` (absent: none) and a warning when the file is unreadable or
    readable by others (its secrets are used anyway: refusing would only silence the pings)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, f"secrets not read from {path}: {exc.strerror or exc}"
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        with os.fdopen(fd, encoding="utf-8") as fh:
            data: Any = json.load(fh)
    except (OSError, ValueError) as exc:
        return {}, f"secrets not read from {path}: {exc}"
    if not isinstance(data, dict):
        return {}, f"secrets not read from {path}: it holds no JSON object"
    warning = None
    if mode & 0o077:
        warning = f"{path} is readable by others (mode {mode:04o}): run `invoke deploy` or chmod 600 it"
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}, warning


def ping_start(ctx: RunContext) -> None:
    """``/start`` for a cron run with a ping URL (so the service measures the run's duration)."""
    url = ctx.secrets.get("ping_url", "")
    if url and ctx.settings.runner == "cron" and not ctx.dry_run:
        from .ping import send_ping  # never raises  # urllib: loaded only by the runs that ping

        problem = send_ping(url, "start", f"{ctx.host} {ctx.run_id} starting")
        if problem:
            ctx.warn(problem)


#: Pinged as a success although the runner exits 2: the host is looked after (a hold the operator
#: set, or another Guardian run holding the lock), so the dead man's switch must not fire.
PING_OK = RUNNER_OK | {"held", "busy"}


def at_finish(ctx: RunContext, record: Dict[str, Any]) -> None:
    """Write the metrics of the finished run and ping its end with an exit status (0 is a
    success for healthchecks.io, anything else a failure). Problems become the run's warnings,
    never a failed run. Called before the run's journal is written for the last time."""
    if ctx.dry_run:
        return
    text = render_metrics(record, now=time.time(), bundle=BUNDLE_DIGEST)
    problem = write_metrics(metrics_dir(ctx.app_dir, ctx.guardian_dir, ctx.settings.metrics_dir), text)
    if problem:
        ctx.warn(problem)
    url = ctx.secrets.get("ping_url", "")
    if url and ctx.settings.runner == "cron":
        from .ping import send_ping

        exit_code = 0 if record.get("outcome") in PING_OK else runner_exit_code(str(record.get("outcome")))
        body = f"{ctx.host} {ctx.run_id}: {record.get('outcome')}" + (
            f" - {record.get('reason')}" if record.get("reason") else ""
        )
        problem = send_ping(url, exit_code, body)
        if problem:
            ctx.warn(problem)
