"""What a run leaves on the host: ``logs/guardian.log`` in the seed's format, and the run's journal.

The journal (``.guardian/state/journal/<run-id>.json``) is the host's own record of a run. It is
rewritten atomically at each step: when the run starts (``outcome: running``), before and after
every action, and at the end, so it survives the controller or the runner dying at any moment.
The next run brings cron runs' journals home (:func:`cron_journals`).
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any, Dict, List, Optional, Tuple

from .atomic import write_atomic

#: Where Guardian < 0.2 kept its state: inside the app's lock dir.
LEGACY_STATE_FILES = ("guardian-breaker.json", "guardian-hold.json")
LEGACY_JOURNAL_DIR = "guardian-journal"


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
            self.error = f"logs/{os.path.basename(self.path)} not written: {exc.strerror}"
            return
        try:
            os.write(fd, (line + "\n").encode("utf-8", errors="replace"))
        finally:
            os.close(fd)


class Journal:
    """One run's journal file. Disabled on a dry run, which writes nothing on the host."""

    def __init__(self, directory: str, run_id: str, *, enabled: bool) -> None:
        self.directory = directory
        self.path = os.path.join(directory, f"{run_id}.json")
        self.enabled = enabled
        self.error = ""

    def write(self, record: Dict[str, Any]) -> None:
        """Rewrite the journal with ``record`` (its files aside); a run that has not finished says
        ``outcome: running``. A failure is added to the record's warnings, once, and the run goes on."""
        if not self.enabled or self.error:
            return
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            data = {k: v for k, v in record.items() if k != "files"}
            data.setdefault("outcome", "running")
            write_atomic(self.path, json.dumps(data, sort_keys=True))
        except OSError as exc:
            self.error = f"journal not written: {exc}"
            record.setdefault("warnings", []).append(self.error)


def cron_journals(journal_dir: str, *, keep: int) -> List[Tuple[str, Dict[str, Any]]]:
    """The newest ``keep`` cron-run journals in ``journal_dir`` (file name, summary), newest first."""
    found: List[Tuple[str, Dict[str, Any]]] = []
    try:
        entries = sorted(os.listdir(journal_dir), reverse=True)
    except OSError:
        return []
    for name in entries:
        if not name.endswith(".json") or len(found) >= keep:
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
            "check": str(data.get("check") or _argv_check(data)),
            "actions": [
                {k: a.get(k) for k in ("kind", "target", "result", "detail", "reason", "at")}
                for a in data.get("actions", [])
            ],
        }
        found.append((name, summary))
    return found


#: Guardian's own alert files (``<name>_alert_<YYYYmmdd_HHMMSS>[_N].txt``): the only ones it prunes.
_ALERT_NAME = re.compile(r"^[A-Za-z0-9_.-]+_alert_\d{8}_\d{6}(_\d+)?\.txt$")


def prune(directory: str, *, keep: int, alerts: bool = False) -> List[str]:
    """Delete all but the newest ``keep`` run journals (``*.json``, by name: run ids start with
    their time) or, with ``alerts``, Guardian's alert files (by mtime) in ``directory``. Plain
    files only, never through a symlink; ``keep`` 0 keeps everything; returns what was deleted.
    Call under the host lock."""
    if keep <= 0:
        return []
    try:
        entries = [e for e in os.scandir(directory) if e.is_file(follow_symlinks=False)]
    except OSError:
        return []

    def mtime(entry: os.DirEntry[str]) -> float:
        try:
            return entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            return 0.0  # gone meanwhile: its unlink below fails quietly

    if alerts:
        mine = sorted((e for e in entries if _ALERT_NAME.match(e.name)), key=lambda e: (mtime(e), e.name))
    else:
        mine = sorted((e for e in entries if e.name.endswith(".json")), key=lambda e: e.name)
    removed = []
    for entry in mine[: max(0, len(mine) - keep)]:
        try:
            os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            continue
    return removed


def _argv_check(data: Dict[str, Any]) -> str:
    """The check a journal of an older runner ran (its argv: python, the script, its args)."""
    argv = (data.get("before") or {}).get("argv") or []
    return os.path.basename(str(argv[1])) if len(argv) > 1 else "?"


def adopt_legacy_state(lock_dir: str, state_dir: str, journal_dir: str, log: HostLog) -> List[str]:
    """Move a restart budget, hold and cron journals that an older Guardian kept in the app's
    lock dir into the state dir, so an upgrade forgets no hold and resets no budget.

    Returns:
        Warnings for what could not be moved.
    """
    warnings = []
    for name in LEGACY_STATE_FILES:
        old, new = os.path.join(lock_dir, name), os.path.join(state_dir, name)
        if os.path.isfile(old) and not os.path.islink(old) and not os.path.lexists(new):
            try:
                os.rename(old, new)
                log.write(f"Moved {old} to {new} (Guardian's state now lives in {state_dir})")
            except OSError as exc:
                warnings.append(f"could not move {old} to {new}: {exc.strerror}")
    old_journal = os.path.join(lock_dir, LEGACY_JOURNAL_DIR)
    if os.path.isdir(old_journal) and not os.path.islink(old_journal) and not os.path.lexists(journal_dir):
        try:
            os.rename(old_journal, journal_dir)
        except OSError as exc:
            warnings.append(f"could not move {old_journal}: {exc.strerror}")
    return warnings
