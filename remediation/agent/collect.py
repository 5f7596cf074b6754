"""Bringing files home: the seed's logs, the newest alert files and cron runs' journals, each as
a ``file`` event carrying the tail of the file (bounded by ``collect_max_bytes``)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import stat
import time
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from . import MANIFEST_FILE, VERSION, events
from .context import RunContext, hostname, now_iso
from .journal import cron_journals

ALERT_GLOB_SUFFIX = ".txt"


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


def log_names(ctx: RunContext) -> List[str]:
    """The seed's three logs of this check, then the newest ``alert_keep`` alert files."""
    names = [
        "guardian.log",
        f"guardian_{ctx.check_stem}_output.log",
        f"guardian_retry_{ctx.check_stem}.log",
    ]
    alerts = []
    try:
        for entry in os.scandir(ctx.logs_dir):
            if "_alert_" in entry.name and entry.name.endswith(ALERT_GLOB_SUFFIX):
                alerts.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
    except OSError:
        pass
    names += [n for _, n in sorted(alerts, reverse=True)[: ctx.settings.alert_keep]]
    return names


def cron_runs(ctx: RunContext) -> List[Dict[str, Any]]:
    """Summaries of the newest cron runs on this host, for the report."""
    return [summary for _, summary in cron_journals(ctx.journal_dir, keep=ctx.settings.journal_keep)]


def host_timezone() -> str:
    """The zone cron fires in: what libc reads, ``/etc/localtime`` (its name from where the
    symlink points under ``zoneinfo/``), else ``/etc/timezone`` (Debian's name for it, also when
    localtime is a copied file); ``UTC`` when neither says."""
    target = os.path.realpath("/etc/localtime")
    marker = "/zoneinfo/"
    if marker in target:
        return target.split(marker, 1)[1]
    try:
        with open("/etc/timezone", encoding="utf-8") as fh:
            name = fh.read().strip()
        if name:
            return name
    except OSError:
        pass
    return "UTC"


#: How many journals (newest first) a search for each schedule's last cron run reads at most.
LAST_RUN_SCAN = 200


def last_cron_runs(journal_dir: str, checks: Set[str]) -> Dict[str, str]:
    """When each check's newest cron run started (ISO UTC): a rare schedule (the weekly audit)
    whose run is older than the ``journal_keep`` newest journals a run brings home."""
    found: Dict[str, str] = {}
    for _, summary in cron_journals(journal_dir, keep=LAST_RUN_SCAN):
        check = str(summary.get("check"))
        if check in checks and check not in found and summary.get("started_at"):
            found[check] = str(summary["started_at"])
            if len(found) == len(checks):
                break
    return found


def read_manifest(ctx: RunContext) -> Tuple[Optional[Dict[str, Any]], float, str]:
    """The manifest deploy wrote (``deployed.json``), its mtime, and what was wrong with it."""
    path = os.path.join(ctx.guardian_dir, MANIFEST_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as fh:
            manifest = json.load(fh)
            mtime = os.fstat(fh.fileno()).st_mtime
    except FileNotFoundError:
        return None, 0.0, ""
    except (OSError, ValueError) as exc:
        return None, 0.0, f"{path} unreadable: {exc}"
    if not isinstance(manifest, dict):
        return None, 0.0, f"{path} holds no JSON object"
    return manifest, mtime, ""


def deployment(ctx: RunContext) -> Dict[str, Any]:
    """What the controller needs to tell whether cron still runs Guardian here: the manifest deploy
    wrote (its schedules; when it last changed), the host's zone and its clock now."""
    facts: Dict[str, Any] = {"host_time": round(time.time(), 3), "tz": host_timezone()}
    manifest, mtime, problem = read_manifest(ctx)
    if manifest is None:
        facts["deployed"] = None
        if problem:
            facts["problem"] = problem
        return facts
    facts["deployed"] = {**manifest, "changed_at": now_iso(mtime)}
    checks = {str(s.get("check")) for s in manifest.get("schedules") or [] if isinstance(s, dict)}
    facts["last_runs"] = last_cron_runs(ctx.journal_dir, checks)
    return facts


def next_scheduled_run(ctx: RunContext, after: dt.datetime) -> Optional[dt.datetime]:
    """When cron (or its timer) next runs this run's check here, at or after ``after`` (UTC);
    None when deploy installed no schedule for it."""
    from .cronblock import ScheduleError
    from .cronexpr import CronSchedule, zone

    manifest, _, _ = read_manifest(ctx)
    schedules = [s for s in (manifest or {}).get("schedules") or [] if isinstance(s, dict)]
    mine = [s for s in schedules if s.get("check") == os.path.basename(ctx.check_path)]
    try:
        tz = zone(host_timezone())
        fires = [CronSchedule.parse(str(s.get("schedule"))).next_fire(after, tz) for s in mine]
    except ScheduleError:
        return None
    return min((f for f in fires if f is not None), default=None)


def send_files(ctx: RunContext) -> None:
    max_bytes = ctx.settings.collect_max_bytes
    ctx.phase("collect")
    if os.path.isdir(ctx.logs_dir):
        for item in collect_files(ctx.logs_dir, log_names(ctx), max_bytes=max_bytes):
            ctx.emit(events.file(item))
    names = [name for name, _ in cron_journals(ctx.journal_dir, keep=ctx.settings.journal_keep)]
    for item in collect_files(ctx.journal_dir, names, max_bytes=max_bytes):
        item["name"] = "journal-" + str(item["name"])
        ctx.emit(events.file(item))


def collect_only(ctx: RunContext) -> Dict[str, Any]:
    """``invoke collect``: bring logs, alerts and cron journals home; run no check."""
    ctx.record.update(
        host=ctx.host,
        run_id=ctx.run_id,
        runner=ctx.settings.runner,
        version=VERSION,
        actions=[],
    )
    ctx.emit(events.start(hostname=hostname(), version=VERSION, dry_run=False))
    ctx.record.update(
        outcome="collected",
        reason="",
        started_at=now_iso(ctx.started),
        cron_runs=cron_runs(ctx),
        self_heal=deployment(ctx),
    )
    ctx.emit(events.result(ctx.record))
    send_files(ctx)
    return ctx.record
