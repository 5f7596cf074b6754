"""What every step of one run on this host shares: its config, the host's paths, the run's record
with its journal and log, the emitter and the watch on the controller.

The steps (``sequence``, ``apply``, ``gate``, ``collect``, ``maintenance``) each take a
:class:`RunContext`; none of them reads the config any other way.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional

from . import JOURNAL_DIR, STATE_SUBDIR, VERSION, events
from .config import RunnerConfig
from .emit import Emit
from .journal import HostLog, Journal
from .watch import ControllerWatch


def now_iso(ts: Optional[float] = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def guardian_dir(app_dir: str, setting: str) -> str:
    """Where Guardian keeps its files on this host (the ``guardian_dir`` setting, resolved)."""
    return os.path.normpath(os.path.join(app_dir, os.path.expanduser(setting or ".guardian")))


def hostname() -> str:
    return os.uname().nodename  # what socket.gethostname() returns, without importing socket


class RunContext:
    """One run on this host, driven by a validated config (plain data, typed)."""

    def __init__(self, config: RunnerConfig, emit: Emit, watch: Optional[ControllerWatch] = None) -> None:
        self.config = config
        self.settings = config.settings
        self.job = config.job
        self.emit = emit
        self.dry_run = config.job.dry_run
        self.app_dir = os.path.abspath(os.path.expanduser(self.settings.app_dir))
        self.logs_dir = os.path.join(self.app_dir, "logs")
        self.lock_dir = os.path.join(self.app_dir, self.settings.lock_dir)
        self.guardian_dir = guardian_dir(self.app_dir, self.settings.guardian_dir)
        self.state_dir = os.path.join(self.guardian_dir, STATE_SUBDIR)
        self.journal_dir = os.path.join(self.state_dir, JOURNAL_DIR)
        check = self.settings.check
        self.check_path = check if os.path.isabs(check) else os.path.join(self.app_dir, check)
        self.check_stem = os.path.splitext(os.path.basename(check))[0]
        self.host = self.settings.host or hostname()
        self.started = time.time()
        self.run_id = self.job.run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.record: Dict[str, Any] = {}
        self.log = HostLog(None)
        self.journal = Journal(self.journal_dir, self.run_id, enabled=not self.dry_run)
        self.created_files: List[str] = []
        self.secrets: Dict[str, str] = {}  # cron's, from secrets.json (the ping URL); never logged
        self.installed_files: List[str] = []  # cron's: the runner, config.json and secrets.json it read
        self.logs_fd = -1  # the app's logs/ directory, once opened (open_logs)
        self.watch = watch or ControllerWatch()
        #: The wall clock the run's time-of-day decisions read (quiet windows, the next try).
        self.clock: Callable[[], float] = time.time

    def phase(self, name: str) -> None:
        self.emit(events.phase(name))

    def announce(self) -> None:
        """The start event: the runner is up on this host."""
        self.emit(events.start(hostname=hostname(), version=VERSION, dry_run=self.dry_run))

    def warn(self, text: str) -> None:
        self.record.setdefault("warnings", []).append(text)

    def write_journal(self) -> None:
        self.journal.write(self.record)

    def open_logs(self) -> None:
        """Open the app's ``logs/`` once, refusing a symlink: Guardian's logs and alert files are
        then created inside that very directory (:meth:`log_path`), even if the app's user (who
        owns it) swaps ``logs`` for a link to, say, /etc/logrotate.d while the run goes on."""
        if self.dry_run or self.logs_fd >= 0:
            return
        try:
            self.logs_fd = os.open(self.logs_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            self.warn(f"{self.logs_dir} not used ({exc.strerror}; a symlink is never followed): no logs written")

    def log_path(self, name: str) -> Optional[str]:
        """Where a log of the run goes in ``logs/``: a path through the directory opened by
        :meth:`open_logs` (``/proc/self/fd/N/name``); None on a dry run, which writes nothing,
        or when that directory could not be opened."""
        if self.dry_run or self.logs_fd < 0:
            return None
        return f"/proc/self/fd/{self.logs_fd}/{name}"
