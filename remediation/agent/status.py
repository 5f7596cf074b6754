"""``invoke status`` on the host: is Guardian still healing this droplet by itself? Read-only: no
check runs and nothing on the host changes.

It reports the cron runs' journals, what deploy installed (its manifest: schedules, version) with
the host's zone and clock (the controller works out from these whether a scheduled run was
missed), the restart budget and the hold, and whether the runner, its config, the logrotate rule
and the crontab block still are what deploy would write now: deploy's own comparison, run as a
``--check`` dry run, so "drifted" means exactly what the next deploy would change.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

from . import RUNNER_FILE, VERSION, events, records
from .collect import cron_runs, deployment
from .config import DeployFields
from .context import RunContext, hostname, now_iso
from .guards import breaker_states, read_hold
from .outcomes import RUNNER_EXIT_NOT_OK, RUNNER_EXIT_OK


def drift(ctx: RunContext) -> Dict[str, Any]:
    """What deploy would change on this host now (a ``--check`` dry run of the same Installer)."""
    from .deploy import Installer  # deploy's machinery: loaded only by the runs that need it

    deploy = records.replace(ctx.config.deploy or DeployFields(), drift_check=True, remove=False)
    config = records.replace(ctx.config, deploy=deploy).with_job(dry_run=True, action="deploy")
    return Installer(config, lambda event: None).run()


def describe_drift(changes: List[Dict[str, Any]]) -> str:
    shown = [f"{c['item']} {c['action']}" + (f" ({c['detail']})" if c.get("detail") else "") for c in changes[:4]]
    more = f" and {len(changes) - 4} more" if len(changes) > 4 else ""
    return "; ".join(shown) + more


def report_status(ctx: RunContext) -> int:
    """Emit the host's status as one result; returns the runner's exit code (0: in sync)."""
    ctx.emit(events.start(hostname=hostname(), version=VERSION, dry_run=True))
    settings = ctx.settings
    now = time.time()
    record: Dict[str, Any] = ctx.record
    record.update(
        host=ctx.host,
        run_id=ctx.run_id,
        runner=settings.runner,
        version=VERSION,
        started_at=now_iso(ctx.started),
        actions=[],
        cron_runs=cron_runs(ctx),
        self_heal=deployment(ctx),
    )
    breakers = breaker_states(
        ctx.state_dir,
        settings.services,
        now=now,
        max_restarts=settings.restart_budget_max,
        window=settings.restart_budget_window,
    )
    record["breakers"] = {k: v.to_dict() for k, v in breakers.items() if v.recent}
    hold = read_hold(ctx.state_dir, now=now)
    if hold is not None:
        record["hold"] = hold.to_dict()
    ctx.phase("drift")
    checked = drift(ctx)
    changes = [c for c in checked.get("changes", []) if c.get("action") != "unchanged"]
    record.update(changes=changes, preflight=checked.get("preflight", []))
    record.setdefault("warnings", []).extend(checked.get("warnings", []))
    if checked["outcome"] in ("preflight-failed", "failed"):
        outcome, reason = checked["outcome"], str(checked.get("reason", ""))
    elif not changes:
        outcome, reason = "in-sync", "runner, config, logrotate rule and crontab block as deploy writes them"
    elif any(c["item"].endswith(RUNNER_FILE) and c["action"] == "create" for c in changes):
        outcome, reason = "not-deployed", "Guardian is not installed here: run `invoke deploy`"
    else:
        outcome, reason = "drifted", describe_drift(changes)
    record.update(outcome=outcome, reason=reason, finished_at=now_iso(), duration=round(time.time() - ctx.started, 3))
    ctx.emit(events.result(record))
    return RUNNER_EXIT_OK if outcome == "in-sync" else RUNNER_EXIT_NOT_OK
