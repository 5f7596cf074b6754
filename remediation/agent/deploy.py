"""Install Guardian on a host so it heals itself from cron: the runner (a launcher and the agent
package compiled for the host's python, see :mod:`installed`), its config, a logrotate rule, file
permissions and a marked crontab block. Runs on the host, streamed by ``invoke deploy``.

Every item is compared with what is there first, so a second deploy changes nothing and
``--dry-run`` shows exactly what a real deploy would change. A failing pre-flight changes nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from . import BUNDLE_DIGEST, JOURNAL_DIR, MANIFEST_FILE, RUNNER_FILE, SECRETS_FILE, STATE_SUBDIR, VERSION, events
from .bootstrap import launcher, own_sources
from .config import DeployFields, RunnerConfig
from .context import guardian_dir
from .cronblock import (
    ScheduleError,
    block_lines,
    check_cron_safe,
    render_block,
    replace_block,
    validate_schedule,
)
from .emit import Emit
from .identity import IdentityError, resolve_run_as
from .installed import RUNNER_DIR, desired_tree, runner_tree, tree_changes, tree_dirs
from .managers import Manager, ManagerError, ServiceSpec, make_manager, probe, read_status
from .metrics import METRICS_FILE, metrics_dir
from .systemd import unit_preflight
from .timers import TimerDeploy, render_units
from .trust import TrustProblem, refusal, root_reads, untrusted

RUNNER_NAME = RUNNER_FILE
CONFIG_NAME = "config.json"
LOGROTATE_NAME = "logrotate.conf"
LOGROTATE_STATE = "logrotate.state"  # written by logrotate for Guardian's rule, from the cron line
#: What deploy installed, for the controller's missed-run detection and ``invoke status``: the
#: schedules cron runs, the runner's version and bundle digest. Its mtime is when it last changed.
MANIFEST_NAME = MANIFEST_FILE
#: cron's secrets (the ping URL), mode 0600, never shown in a diff or a report.
SECRETS_NAME = SECRETS_FILE


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def logrotate_rule(app_dir: str, patterns: List[str]) -> str:
    paths = " ".join(os.path.join(app_dir, "logs", p) for p in patterns)
    return (
        "# Guardian's logs, rotated by the daily logrotate line in Guardian's crontab block.\n"
        f"{paths} {{\n"
        "    weekly\n    rotate 8\n    maxsize 50M\n    compress\n    delaycompress\n"
        "    missingok\n    notifempty\n    create 0640\n}\n"
    )


def script_problem(path: str) -> Optional[str]:
    """What keeps cron from running the check script at ``path``, or None when it can.

    Returns:
        A phrase that follows the path: "is missing", "is not a regular file (a directory)", ...
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return "is missing (a symlink to a file that does not exist)"
        return "is missing"
    except OSError as exc:
        return f"cannot be checked: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a device, pipe or socket"
        return f"is not a regular file ({kind})"
    if not os.access(path, os.R_OK):
        return f"is not readable by uid {os.getuid()}"
    return None


def runner_argv(python: str, install_dir: str, check: str) -> List[str]:
    """How a schedule (a cron line or a timer's service) runs the installed runner for ``check``."""
    runner = os.path.join(install_dir, RUNNER_NAME)
    config = os.path.join(install_dir, CONFIG_NAME)
    # Isolated and without site, as the controller starts it: no PYTHON* variable a crontab line
    # above the block sets reaches root's python, and no site-packages .pth costs start-up time.
    return [python, "-I", "-S", runner, "--config", config, "--runner", "cron", "--format", "text", "--check", check]


def logrotate_argv(install_dir: str) -> List[str]:
    """Guardian's own log rotation, with its own state file (no system directory is touched)."""
    return ["logrotate", "-s", os.path.join(install_dir, LOGROTATE_STATE), os.path.join(install_dir, LOGROTATE_NAME)]


def cron_lines(app_dir: str, python: str, install_dir: str, schedules: List[Dict[str, Any]]) -> List[str]:
    """The crontab entries: each schedule runs the installed runner; plus daily log rotation."""
    for value, what in ((app_dir, "app dir"), (python, "python"), (install_dir, "install dir")):
        check_cron_safe(value, what)
    lines = []
    for entry in schedules:
        schedule = validate_schedule(entry["schedule"])
        check = check_cron_safe(entry["check"], "check script")
        log = check_cron_safe(entry["log"], "log file")
        argv = runner_argv(python, install_dir, check)
        lines.append(f"{schedule} cd {_q(app_dir)} && {' '.join(_q(a) for a in argv)} >> {_q(log)} 2>&1")
    rotate = logrotate_argv(install_dir)
    lines.append(f"17 0 * * * {' '.join(_q(a) for a in rotate)} >/dev/null 2>&1")
    return lines


def _q(value: str) -> str:
    import shlex

    return shlex.quote(value)


class Installer:
    """Deploy (or ``--remove``) Guardian on this host, from the runner's config: its settings,
    and the deploy fields (schedules, the runner script, cron's config)."""

    def __init__(self, config: Union[RunnerConfig, Mapping[str, Any]], emit: Emit) -> None:
        if not isinstance(config, RunnerConfig):
            config = RunnerConfig.from_dict({"action": "deploy", **config})
        self.config = config
        self.settings = config.settings
        self.deploy = config.deploy or DeployFields()
        self.emit = emit
        self.dry_run = config.job.dry_run
        self.remove = self.deploy.remove
        self.app_dir = os.path.abspath(os.path.expanduser(self.settings.app_dir))
        self.install_dir = guardian_dir(self.app_dir, self.settings.guardian_dir)
        self.changes: List[Dict[str, Any]] = []
        self.preflight: List[Dict[str, Any]] = []
        self.warnings: List[str] = []
        self.schedules: List[Dict[str, Any]] = []  # the schedules whose cron lines are installed
        self.trust_fixes: List[TrustProblem] = []  # --fix-permissions: what pre-flight found
        self.scheduler = self.deploy.scheduler  # "cron" (the crontab block) or "systemd-timer"
        self.timers = TimerDeploy(self)

    # -- pre-flight ------------------------------------------------------------------------

    def check(self, name: str, ok: bool, detail: str, *, fatal: bool = True) -> None:
        self.preflight.append({"check": name, "ok": ok, "detail": detail, "fatal": fatal})

    def run_preflight(self) -> bool:
        version = sys.version_info
        self.check("python", version >= (3, 9), f"{sys.executable} {version.major}.{version.minor}.{version.micro}")
        self.check("app dir", os.path.isdir(self.app_dir), self.app_dir)
        if not self.remove:
            for entry in self.deploy.schedules:
                self.check_schedule(entry)
            try:
                manager = make_manager(self.settings.manager, self.settings.manager_options)
                self.check(f"process manager {manager.kind}", True, probe(manager))
                if manager.authoritative:  # systemd: every service's unit, as systemd loads it
                    self.check_units(manager)
            except ManagerError as exc:
                self.check(f"process manager {self.settings.manager}", False, str(exc))
            if self.scheduler == "systemd-timer":
                self.timers.preflight()
            elif self.scheduler != "cron":
                self.check("scheduler", False, f"unknown scheduler {self.scheduler!r}: cron or systemd-timer")
            logrotate = shutil.which("logrotate")
            self.check(
                "logrotate",
                logrotate is not None,
                logrotate or "not installed: the rule is installed but will not run until logrotate is",
                fatal=False,
            )
            self.check_trust()
        crontab = shutil.which("crontab")
        # Timers need no cron; a crontab is then only read to take an earlier cron deploy's block out.
        self.check(
            "crontab",
            crontab is not None,
            crontab or "the crontab command is not installed",
            fatal=self.scheduler == "cron",
        )
        self.emit(events.preflight(self.preflight))
        return all(c["ok"] or not c["fatal"] for c in self.preflight)

    def check_trust(self) -> None:
        """Root will run the runner from the install dir, read its config there, run python and
        (unless run_as drops to the app's user) the scheduled check scripts: none of it, nor any
        directory above it, may be writable by another user (sshd's StrictModes rule)."""
        try:
            identity = resolve_run_as(self.settings.run_as, self.app_dir)
        except IdentityError as exc:
            self.check("run_as", False, str(exc))
            return
        # The install dir, and what it holds already: cron's runner reads every one of them as root.
        paths = root_reads(guardian_dir=self.install_dir, files=self.trusted_paths())
        python = shutil.which(self.settings.python)
        if python:
            paths.append(os.path.realpath(python))
        if identity is None:
            for entry in self.schedules:
                script = str(entry["check"])
                paths.append(script if os.path.isabs(script) else os.path.join(self.app_dir, script))
        problems = untrusted(paths, owners=(os.getuid(),))
        who = f"checks run as {identity.describe()}" if identity else "checks run as this user"
        if not problems:
            self.check("trust", True, f"root-safe: {self.install_dir}, python; {who}")
            return
        unfixable = [p for p in problems if not self.fixable(p)]
        if self.deploy.fix_permissions and not unfixable:
            self.trust_fixes = problems
            shown = "; ".join(p.describe() for p in problems)
            self.check("trust", True, f"--fix-permissions will fix: {shown}")
            return
        detail = refusal(unfixable or problems, self.install_dir)
        if self.deploy.fix_permissions:
            detail = "--fix-permissions cannot fix these without taking them from their owner: " + detail
        self.check("trust", False, detail)

    @staticmethod
    def fixable(problem: TrustProblem) -> bool:
        """A mode can be tightened, and a regular file given to root; never a directory another
        user owns (such as the bot's app dir, which it must keep writing to), a symlink (a chmod
        would change whatever it points at) or a path that could not be checked."""
        if problem.uid < 0 or stat.S_ISLNK(problem.mode) or problem.why.startswith("a symlink"):
            return False
        return problem.why.startswith("writable by") or stat.S_ISREG(problem.mode)

    def apply_trust_fixes(self) -> None:
        for problem in self.trust_fixes:
            if os.path.islink(problem.path):  # swapped for a link since pre-flight: never through it
                raise OSError(f"{problem.path} became a symlink; not changing it")
            if not problem.why.startswith("writable by"):
                self.record(problem.path, "chown", f"uid {problem.uid} -> {os.getuid()} ({problem.why})")
                if not self.dry_run:
                    os.chown(problem.path, os.getuid(), -1, follow_symlinks=False)
            wanted = stat.S_IMODE(problem.mode) & ~(stat.S_IWGRP | stat.S_IWOTH)
            if wanted != stat.S_IMODE(problem.mode):
                self.record(problem.path, "chmod", f"{stat.S_IMODE(problem.mode):04o} -> {wanted:04o} (go-w)")
                if not self.dry_run:
                    os.chmod(problem.path, wanted)

    def check_schedule(self, entry: Dict[str, Any]) -> None:
        """A schedule whose script cron cannot run is refused, or skipped when it is optional
        (its cron line is not installed, and the deploy report carries a warning)."""
        script = str(entry["check"])
        path = script if os.path.isabs(script) else os.path.join(self.app_dir, script)
        problem = script_problem(path)
        if problem is None:
            self.check(f"check script {script}", True, path)
            self.schedules.append(entry)
        elif entry.get("optional"):
            detail = f"{path} {problem}; optional schedule skipped, its cron line not installed"
            self.check(f"check script {script}", False, detail, fatal=False)
            self.warnings.append(f"schedule {entry['name']}: {detail}")
        else:
            self.check(
                f"check script {script}",
                False,
                f"{path} {problem} (schedule {entry['name']} is required: install the script, "
                "point its `check` elsewhere, or mark the schedule `optional: true`)",
            )

    def check_units(self, manager: Manager) -> None:
        """Each service's unit as systemd has it loaded: a missing or broken unit fails pre-flight,
        a masked one is a warning (Guardian will refuse to restart it until it is unmasked)."""
        for service, spec in sorted(self.settings.services.items()):
            name = str(spec.get("name", service))
            try:
                state = read_status(manager, ServiceSpec(service, name, "", ""))
                ok, fatal, detail = unit_preflight(state.props, name)
            except ManagerError as exc:
                ok, fatal, detail = False, True, str(exc)
            self.check(f"unit {name}", ok, detail, fatal=fatal)
            if not ok and not fatal:
                self.warnings.append(f"unit {name}: {detail}")

    def timer_units(self) -> Dict[str, str]:
        """The timer and service unit files (``scheduler: systemd-timer``)."""
        python, install_dir = self.settings.python, self.install_dir
        return render_units(
            app_dir=self.app_dir,
            schedules=self.schedules,
            runner_argv=lambda check: runner_argv(python, install_dir, check),
            logrotate_argv=logrotate_argv(install_dir),
        )

    def cron_entries(self) -> List[str]:
        """The lines of the crontab block: the schedules that passed pre-flight, and logrotate."""
        return cron_lines(self.app_dir, self.settings.python, self.install_dir, self.schedules)

    # -- desired state ---------------------------------------------------------------------

    def installed_paths(self) -> List[str]:
        """Guardian's own files in the install dir: the runner, cron's config, the logrotate rule,
        the manifest, cron's secrets (what root reads there; the installed package is apart:
        :func:`installed.runner_tree`)."""
        names = (RUNNER_NAME, CONFIG_NAME, LOGROTATE_NAME, MANIFEST_NAME, SECRETS_NAME)
        return [os.path.join(self.install_dir, name) for name in names]

    def trusted_paths(self) -> List[str]:
        """Everything root reads or executes in the install dir, as it is on the host now."""
        files = self.installed_paths()
        return files + [p for p in runner_tree(self.install_dir) if p not in files]

    def manifest(self) -> Dict[str, Any]:
        """What this deploy installs, as ``deployed.json`` holds it (no time stamp in it, so a
        second deploy leaves it unchanged; its mtime says when the schedules last changed)."""
        return {
            "version": VERSION,
            "bundle": BUNDLE_DIGEST,
            "scheduler": self.scheduler,
            "schedules": [
                {"name": str(e["name"]), "schedule": str(e["schedule"]), "check": os.path.basename(str(e["check"]))}
                for e in self.schedules
            ],
        }

    def desired_files(self) -> List[Dict[str, Any]]:
        # The launcher cron starts runs the package ensure_runner_tree installs: this very code
        # (unless the config names another script).
        runner_source = (self.deploy.runner_source or launcher(own_sources()[1], VERSION)).encode()
        cron_config = json.dumps(self.deploy.cron_config.to_dict(), indent=2, sort_keys=True).encode() + b"\n"
        rule = logrotate_rule(self.app_dir, self.deploy.logrotate_patterns).encode()
        manifest = json.dumps(self.manifest(), indent=2, sort_keys=True).encode() + b"\n"
        files: List[Dict[str, Any]] = [
            {
                "path": os.path.join(self.install_dir, RUNNER_NAME),
                "data": runner_source,
                "mode": 0o750,
                "diff": False,
            },
            {
                "path": os.path.join(self.install_dir, CONFIG_NAME),
                "data": cron_config,
                "mode": 0o640,
                "diff": True,
            },
            {
                "path": os.path.join(self.install_dir, LOGROTATE_NAME),
                "data": rule,
                "mode": 0o640,
                "diff": True,
            },
            {
                "path": os.path.join(self.install_dir, MANIFEST_NAME),
                "data": manifest,
                "mode": 0o640,
                "diff": True,
            },
        ]
        if self.deploy.secrets:
            secrets = json.dumps(self.deploy.secrets, indent=2, sort_keys=True).encode() + b"\n"
            files.append(
                {
                    "path": os.path.join(self.install_dir, SECRETS_NAME),
                    "data": secrets,
                    "mode": 0o600,
                    "diff": False,
                    "secret": True,
                }
            )
        return files

    def record(self, item: str, action: str, detail: str = "", diff: str = "") -> None:
        if item.startswith(self.app_dir + os.sep):
            item = os.path.relpath(item, self.app_dir)
        change = {"item": item, "action": action, "detail": detail}
        if diff:
            change["diff"] = diff
        self.changes.append(change)
        self.emit(events.change(change))

    # -- apply -----------------------------------------------------------------------------

    def run(self) -> Dict[str, Any]:
        self.emit(events.start(version=VERSION, dry_run=self.dry_run))
        self.emit(events.phase("preflight"))
        if not self.run_preflight():
            failed = [c for c in self.preflight if not c["ok"] and c["fatal"]]
            return self.finish("preflight-failed", "; ".join(f"{c['check']}: {c['detail']}" for c in failed))
        self.emit(events.phase("remove" if self.remove else "install"))
        try:
            has_crontab = shutil.which("crontab") is not None
            current_cron = self.read_crontab() if has_crontab else ""
            timers = self.scheduler == "systemd-timer"
            if self.remove:
                new_cron = replace_block(current_cron, None)
                self.timers.remove()  # whichever scheduler an earlier deploy used
                for path in self.installed_paths():
                    self.remove_file(path)
                self.remove_file(os.path.join(self.install_dir, LOGROTATE_STATE))
                self.remove_runner_tree()
                # No stale metrics left for node_exporter to serve as if Guardian still ran.
                metrics = metrics_dir(self.app_dir, self.install_dir, self.settings.metrics_dir)
                self.remove_file(os.path.join(metrics, METRICS_FILE))
                self.remove_install_dir()
            else:
                # One scheduler at a time: switching takes the other one's entries out.
                new_cron = replace_block(current_cron, None if timers else render_block(self.cron_entries()))
                self.apply_trust_fixes()
                self.ensure_dir(self.install_dir, 0o750)
                self.ensure_dir(os.path.join(self.app_dir, "logs"), 0o750)  # cron appends to logs/*.log
                for entry in self.schedules:
                    self.ensure_cron_log(str(entry["log"]))
                self.ensure_runner_tree()  # before the launcher that runs it
                for item in self.desired_files():
                    self.ensure_file(
                        str(item["path"]),
                        bytes(item["data"]),
                        int(item["mode"]),
                        diff=bool(item["diff"]),
                        secret=bool(item.get("secret")),
                    )
                if not self.deploy.secrets:
                    self.remove_file(os.path.join(self.install_dir, SECRETS_NAME))  # pings turned off
                self.check_logrotate()
                self.tighten_permissions()
                if timers:
                    self.timers.install(self.timer_units())
                else:
                    self.timers.remove()
            if has_crontab:
                self.ensure_crontab(current_cron, new_cron)
        except (OSError, ValueError, ScheduleError, subprocess.SubprocessError) as exc:
            return self.finish("failed", str(exc))
        changed = [c for c in self.changes if c["action"] != "unchanged"]
        if self.dry_run:
            outcome = ("drifted" if self.deploy.drift_check else "would-change") if changed else "unchanged"
        elif self.remove:
            outcome = "removed" if changed else "unchanged"
        else:
            outcome = "changed" if changed else "unchanged"
        return self.finish(outcome, f"{len(changed)} change(s)" if changed else "nothing to change")

    def finish(self, outcome: str, reason: str) -> Dict[str, Any]:
        record = {
            "outcome": outcome,
            "reason": reason,
            "changes": self.changes,
            "preflight": self.preflight,
            "warnings": self.warnings,
            "runner_version": VERSION,
        }
        self.emit(events.result(record))
        return record

    def ensure_dir(self, path: str, mode: int) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.record(path, "create", f"directory, mode {mode:04o}")
            if not self.dry_run:
                os.mkdir(path, mode)
                os.chmod(path, mode)
            return
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise OSError(f"{path} exists and is not a directory; refusing to touch it")
        self._ensure_mode(path, st.st_mode, mode)

    def ensure_file(self, path: str, data: bytes, mode: int, *, diff: bool, secret: bool = False) -> None:
        try:
            with open(path, "rb") as fh:
                old: Optional[bytes] = fh.read()
            st: Optional[os.stat_result] = os.lstat(path)
        except FileNotFoundError:
            old, st = None, None
        if old == data and st is not None:
            self._ensure_mode(path, st.st_mode, mode)
            return
        detail = f"{len(data)} bytes, mode {mode:04o}" + ("" if secret else f", sha {_sha(data)}")
        text_diff = ""
        if secret:
            detail += " (secret: content not shown)"
        elif diff:
            text_diff = "".join(
                difflib.unified_diff(
                    (old or b"").decode("utf-8", "replace").splitlines(True),
                    data.decode("utf-8", "replace").splitlines(True),
                    fromfile=f"{path} (on host)",
                    tofile=f"{path} (deploy)",
                )
            )
        elif old is not None:
            detail += f" (was sha {_sha(old)})"
        self.record(path, "create" if old is None else "update", detail, text_diff)
        if not self.dry_run:
            self.write(path, data, mode)

    @staticmethod
    def write(path: str, data: bytes, mode: int) -> None:
        """Replace ``path`` atomically with ``data`` (a temporary file beside it, renamed over it)."""
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".guardian-", suffix=".tmp")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def ensure_runner_tree(self) -> None:
        """The installed package: the sources this runner carries, each compiled by this python,
        and the record naming the bundle, written last. One item in the report, however many of
        its files differ (``--check`` names them)."""
        sources, digest = own_sources()
        top = tree_dirs(self.install_dir)[0]
        for directory in tree_dirs(self.install_dir):
            self.ensure_dir(directory, 0o750)
        files = desired_tree(self.install_dir, sources, digest, VERSION)
        writes, stale = tree_changes(files)
        what = f"{len(sources)} modules compiled for {sys.implementation.cache_tag}, bundle {digest}"
        if not writes and not stale:
            self.record(top, "unchanged", what)
            return
        named = [os.path.relpath(str(f["path"]), top) for f in writes] + [os.path.relpath(p, top) for p in stale]
        shown = ", ".join(named[:4]) + (f" and {len(named) - 4} more" if len(named) > 4 else "")
        counts = f"{len(writes)} file(s) to write" + (f", {len(stale)} to remove" if stale else "")
        fresh = len(writes) == len(files) and not stale
        self.record(top, "create" if fresh else "update", f"{what}: {counts} ({shown})")
        if self.dry_run:
            return
        for path in stale:
            os.unlink(path)
        for entry in writes:
            self.write(str(entry["path"]), bytes(entry["data"]), int(entry["mode"]))

    def remove_runner_tree(self) -> None:
        """``--remove``: the installed package, its directories once empty (never another's files)."""
        top, *_ = dirs = tree_dirs(self.install_dir)
        if not os.path.lexists(top):
            return
        if os.path.islink(top) or not os.path.isdir(top):
            raise OSError(f"{top} exists and is not a directory; refusing to touch it")
        files = [p for p in runner_tree(self.install_dir) if p not in dirs and os.path.dirname(p) in dirs]
        self.record(top, "remove", f"{len(files)} file(s)")
        if self.dry_run:
            return
        for path in files:
            if os.path.islink(path) or not os.path.isdir(path):
                os.unlink(path)
        for directory in reversed(dirs):
            if os.path.isdir(directory) and not os.listdir(directory):
                os.rmdir(directory)

    def _ensure_mode(self, path: str, current: int, wanted: int) -> None:
        if stat.S_IMODE(current) == wanted:
            self.record(path, "unchanged")
            return
        self.record(path, "chmod", f"{stat.S_IMODE(current):04o} -> {wanted:04o}")
        if not self.dry_run:
            os.chmod(path, wanted)

    def ensure_cron_log(self, log: str) -> None:
        """Create a schedule's log (empty, mode 0640) before cron's ``>>`` does: cron would create
        it with its umask (0644, readable by all), and every later check would find it drifted."""
        path = log if os.path.isabs(log) else os.path.join(self.app_dir, log)
        if os.path.lexists(path) or not path.startswith(self.app_dir + os.sep):
            return  # an existing log's mode is tightened with the others; one outside the app is the operator's
        self.record(path, "create", "empty log for cron to append to, mode 0640")
        if not self.dry_run:
            os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
            os.fchmod(fd, 0o640)
            os.close(fd)

    def remove_file(self, path: str) -> None:
        if os.path.lexists(path):
            self.record(path, "remove")
            if not self.dry_run:
                os.unlink(path)

    def remove_install_dir(self) -> None:
        """Take the install dir out once Guardian's own files are gone from it; never when it
        holds anything else (the rest is listed in the report) or is not a plain directory."""
        try:
            st = os.lstat(self.install_dir)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            return
        ours = {RUNNER_NAME, RUNNER_DIR, CONFIG_NAME, LOGROTATE_NAME, LOGROTATE_STATE, MANIFEST_NAME, SECRETS_NAME}
        left = sorted(name for name in os.listdir(self.install_dir) if not (self.dry_run and name in ours))
        if left:
            shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
            self.record(self.install_dir, "unchanged", f"kept: it still holds {shown}")
            return
        self.record(self.install_dir, "remove", "empty directory")
        if not self.dry_run:
            os.rmdir(self.install_dir)

    def tighten_permissions(self) -> None:
        """Logs not world-readable; Guardian's state (journal, lock) private to the owner."""
        logs = os.path.join(self.app_dir, "logs")
        state = os.path.join(self.install_dir, STATE_SUBDIR)
        targets: List[Tuple[str, Callable[[int], int]]] = []
        if os.path.isdir(logs):
            targets.append((logs, lambda m: m & ~0o007))
            for name in sorted(os.listdir(logs)):
                if name.startswith("guardian") or "_alert_" in name or name.endswith(".log"):
                    targets.append((os.path.join(logs, name), lambda m: m & ~0o007))
        journal = os.path.join(state, JOURNAL_DIR)
        if os.path.isdir(journal):
            targets.append((journal, lambda m: 0o700))
            targets += [(os.path.join(journal, n), lambda m: 0o600) for n in sorted(os.listdir(journal))]
        flock = os.path.join(state, ".guardian.flock")
        if os.path.exists(flock):
            targets.append((flock, lambda m: 0o600))
        for path, rule in targets:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            wanted = rule(stat.S_IMODE(st.st_mode))
            if wanted != stat.S_IMODE(st.st_mode):
                self._ensure_mode(path, st.st_mode, wanted)

    def check_logrotate(self) -> None:
        logrotate = shutil.which("logrotate")
        if logrotate is None:
            return
        rule = logrotate_rule(self.app_dir, self.deploy.logrotate_patterns)
        fd, path = tempfile.mkstemp(prefix="guardian-logrotate-", suffix=".conf")
        state = path + ".state"
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(rule)
            os.chmod(path, 0o640)
            proc = subprocess.run([logrotate, "-d", "-s", state, path], capture_output=True, text=True, timeout=30)
        finally:
            for leftover in (path, state):
                if os.path.exists(leftover):
                    os.unlink(leftover)
        errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error")]
        if proc.returncode != 0 or errors:
            raise ValueError(f"logrotate -d rejects the rule: {'; '.join(errors) or proc.returncode}")

    def read_crontab(self) -> str:
        proc = subprocess.run(["crontab", "-l"], capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            if "no crontab" in proc.stderr.lower():
                return ""
            raise OSError(f"crontab -l failed: {proc.stderr.strip()}")
        return proc.stdout

    def ensure_crontab(self, current: str, new: str) -> None:
        if new == current:
            self.record("crontab", "unchanged", f"{len(block_lines(current))} line(s) in the Guardian block")
            return
        diff = "".join(
            difflib.unified_diff(
                current.splitlines(True),
                new.splitlines(True),
                fromfile="crontab (on host)",
                tofile="crontab (deploy)",
            )
        )
        if self.remove:
            detail = "Guardian block removed"
        elif block_lines(current):
            detail = "Guardian block rewritten (it differed: edited by hand, or an older deploy)"
        else:
            detail = "Guardian block installed (it was missing)"
        self.record("crontab", "update", detail, diff)
        if not self.dry_run:
            proc = subprocess.run(["crontab", "-"], input=new, capture_output=True, text=True, timeout=30)
            if proc.returncode != 0:
                raise OSError(f"crontab - failed: {proc.stderr.strip()}")
