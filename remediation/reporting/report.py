"""Report data: what happened on each host and in the whole run, apart from its rendering.

A run's folder is ``reports/<run-id>/``: ``report.json`` (machine-readable), ``summary.txt``
(for people) and one folder per host with the files collected from it. ``report.json`` is
written atomically (temp file, fsync, rename) when the run starts (every host pending) and at the
end; in between, each host's record is appended to ``report.journal.jsonl`` beside it as the host
finishes (one line, fsynced), so that a run is not rewritten whole after every host (quadratic
in hosts) and yet nothing finished is lost if the controller dies: :meth:`ReportStore.load`
rebuilds such a run's report from its report.json and its journal. The final write removes the
journal. Readers therefore never see a half-written report, and an interrupted run still leaves
a truthful one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from ..agent import VERSION
from ..agent.outcomes import EXIT_INTERRUPTED, EXIT_OK, EXIT_SILENT, exit_code_for
from ..errors import ReportError
from .records import SCHEMA_VERSION, HostRecord, IncidentRecord, RunRecord

_SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
#: Beside report.json while a run goes: one JSON line per finished host (see the module's doc).
JOURNAL = "report.journal.jsonl"


def new_run_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(2)}"


@dataclass
class CollectedFile:
    """A file brought home from a host."""

    name: str
    path: str  # relative to the run folder
    size: int  # size on the host
    collected_bytes: int
    sha256: str
    truncated: bool


@dataclass
class HostReport:
    """Everything about one host in one run.

    The controller fills it in as the host's events arrive, and keeps each record (a check, the
    plan, an action, ...) as the runner sent it, unknown keys included. :meth:`to_dict` is its
    typed form, :class:`records.HostRecord` (what ``report.json`` holds and the views read);
    the records' shapes are written there, once.
    """

    host: str
    address: str
    transport: str
    outcome: str = "pending"
    reason: str = ""
    started_at: str = ""
    duration: float = 0.0
    phases: list[dict[str, Any]] = field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    locks: list[dict[str, Any]] = field(default_factory=list)
    files: list[CollectedFile] = field(default_factory=list)
    busy_holder: dict[str, Any] | None = None
    runner: str = "laptop"
    remote_version: str = ""
    runner_code: str = ""  # "installed" or "streamed": which code the runner ran (agent/installed.py)
    runner_cpu: float | None = None  # CPU-s the runner and its children (the check...) used on the host
    warnings: list[str] = field(default_factory=list)
    preflight: list[dict[str, Any]] = field(default_factory=list)  # deploy
    changes: list[dict[str, Any]] = field(default_factory=list)  # deploy
    cron_runs: list[dict[str, Any]] = field(default_factory=list)  # journals of cron runs on the host
    guards: dict[str, Any] = field(default_factory=dict)  # breaker states, hold
    self_heal: dict[str, Any] = field(default_factory=dict)  # missed cron runs (reporting.selfheal)
    deferred: list[dict[str, Any]] = field(default_factory=list)  # restarts put off, with the next try
    verify: dict[str, Any] | None = None  # the verification passes after recovery
    unstable: list[dict[str, Any]] = field(default_factory=list)  # why a recovered host is not stable

    @property
    def matched_signatures(self) -> list[str]:
        names: list[str] = []
        for match in (self.before or {}).get("matches", []):
            if match["signature"] not in names:
                names.append(match["signature"])
        return names

    def to_dict(self) -> HostRecord:
        """The host's record. Not a deep copy (``dataclasses.asdict`` was most of the
        controller's CPU per host: every report write and view copied every check output): the
        record shares the runner's records with this HostReport, so read it, never change it."""
        data: dict[str, Any] = {name: getattr(self, name) for name in _HOST_FIELDS}
        data["files"] = [asdict(f) for f in self.files]
        data["matched_signatures"] = self.matched_signatures
        return cast(HostRecord, data)


_HOST_FIELDS = tuple(f.name for f in fields(HostReport) if f.name != "files")


@dataclass
class RunReport:
    """One Guardian run over a set of hosts."""

    run_id: str
    command: str
    started_at: str
    options: dict[str, Any] = field(default_factory=dict)
    hosts: list[HostReport] = field(default_factory=list)
    finished_at: str = ""
    complete: bool = False
    interrupted: bool = False
    exit_code: int | None = None
    guardian_version: str = VERSION
    incidents: list[dict[str, Any]] = field(default_factory=list)  # common-cause incidents
    stopped_reason: str = ""  # rolling recovery stopped early

    def compute_exit_code(self) -> int:
        """The documented exit code; 130 for a run the operator interrupted (what the process
        itself exits with, so the report and the shell agree)."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        code = exit_code_for([h.outcome for h in self.hosts])
        if code == EXIT_OK and any(h.self_heal.get("silent") for h in self.hosts):
            return EXIT_SILENT  # every host fine now, but one stopped healing itself from cron
        return code

    def to_dict(self) -> RunRecord:
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "command": self.command,
            "guardian_version": self.guardian_version,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "complete": self.complete,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
            "options": self.options,
            "outcomes": {h.host: h.outcome for h in self.hosts},
            "incidents": cast(list[IncidentRecord], self.incidents),
            "stopped_reason": self.stopped_reason,
            "hosts": [h.to_dict() for h in self.hosts],
        }


def host_report_from_dict(data: Mapping[str, Any]) -> HostReport:
    fields = {k: v for k, v in data.items() if k in HostReport.__dataclass_fields__}
    fields["files"] = [CollectedFile(**f) for f in data.get("files", [])]
    return HostReport(**fields)


def run_report_from_dict(data: Mapping[str, Any]) -> RunReport:
    return RunReport(
        run_id=data["run_id"],
        command=data.get("command", "?"),
        started_at=data.get("started_at", ""),
        options=data.get("options", {}),
        hosts=[host_report_from_dict(h) for h in data.get("hosts", [])],
        finished_at=data.get("finished_at", ""),
        complete=bool(data.get("complete")),
        interrupted=bool(data.get("interrupted")),
        exit_code=data.get("exit_code"),
        guardian_version=data.get("guardian_version", ""),
        incidents=list(data.get("incidents", [])),
        stopped_reason=str(data.get("stopped_reason", "")),
    )


def atomic_write(path: Path, data: bytes, *, mode: int = 0o640) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from None


def _run_fields(report: RunReport) -> dict[str, Any]:
    """The run-wide fields that change while hosts finish, carried on every journal line."""
    return {
        "incidents": report.incidents,
        "stopped_reason": report.stopped_reason,
        "interrupted": report.interrupted,
    }


def apply_journal(data: dict[str, Any], lines: list[bytes]) -> dict[str, Any]:
    """``data`` (a report.json) with the host records and run fields of a journal applied, in
    order; a line cut short by a crash (the last one) is ignored."""
    hosts = list(data.get("hosts", []))
    index = {h.get("host"): i for i, h in enumerate(hosts)}
    for line in lines:
        try:
            entry = json.loads(line)
            record, run = entry["host"], entry.get("run", {})
            name = record["host"]
        except (ValueError, KeyError, TypeError):
            continue
        if name in index:
            hosts[index[name]] = record
        else:
            index[name] = len(hosts)
            hosts.append(record)
        data.update({k: v for k, v in run.items() if k in ("incidents", "stopped_reason", "interrupted")})
    data["hosts"] = hosts
    data["outcomes"] = {h.get("host"): h.get("outcome") for h in hosts}
    return data


class ReportStore:
    """The controller's report folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._journals: dict[str, Any] = {}  # run id -> the open journal (binary, append)

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def host_dir(self, run_id: str, host: str) -> Path:
        if not _SAFE_FILE.fullmatch(host):
            raise ReportError(f"unsafe host name for a report folder: {host!r}")
        return self.run_dir(run_id) / host

    def save(self, report: RunReport, *, summary: str | None = None) -> Path:
        """Write the whole report.json (at a run's start and end, or for a one-off change); the
        final one (``report.complete``) also retires the run's journal, which it supersedes."""
        run_dir = self.run_dir(report.run_id)
        path = run_dir / "report.json"
        payload = json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str).encode()
        atomic_write(path, payload + b"\n")
        if summary is not None:
            atomic_write(run_dir / "summary.txt", summary.encode("utf-8"))
        if report.complete:
            self._close_journal(report.run_id, remove=True)
            atomic_write(self.root / "latest", (report.run_id + "\n").encode())
        return path

    def record_host(self, report: RunReport, host: HostReport) -> None:
        """Append ``host``'s finished record (and the run's changing fields) to the run's journal:
        once written, a crash or kill of the controller can no longer take it away (the kernel
        holds it). It is not fsynced: that waited 5 ms per host on the loop that answers the
        hosts' gates, and only a crash of the laptop's own kernel could lose an unsynced line (the
        hosts keep their own journals; ``invoke collect`` brings them home again)."""
        line = json.dumps({"host": host.to_dict(), "run": _run_fields(report)}, default=str).encode() + b"\n"
        try:
            journal = self._journals.get(report.run_id)
            if journal is None:
                path = self.run_dir(report.run_id) / JOURNAL
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
                journal = self._journals[report.run_id] = os.fdopen(fd, "ab")
            journal.write(line)
            journal.flush()
        except OSError as exc:
            raise ReportError(f"cannot write {self.run_dir(report.run_id) / JOURNAL}: {exc.strerror or exc}") from None

    def _close_journal(self, run_id: str, *, remove: bool) -> None:
        journal = self._journals.pop(run_id, None)
        if journal is not None:
            journal.close()
        if remove:
            try:
                (self.run_dir(run_id) / JOURNAL).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise ReportError(f"cannot remove {self.run_dir(run_id) / JOURNAL}: {exc.strerror or exc}") from None

    def save_file(self, run_id: str, host: str, name: str, data: bytes) -> str:
        """Store a collected file under the host's folder; returns its run-relative path.

        Names come from the host and are untrusted: anything but a plain file name is refused,
        and the file is created without following symlinks.
        """
        if not _SAFE_FILE.fullmatch(name):
            raise ReportError(f"refusing to store a collected file with an unsafe name: {name!r}")
        host_dir = self.host_dir(run_id, host)
        host_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        atomic_write(host_dir / name, data)
        return f"{host}/{name}"

    def prune(self, keep: int, *, protect: tuple[str, ...] = ()) -> list[str]:
        """Delete the oldest run folders beyond the newest ``keep`` (0: none), never one named in
        ``protect`` or by ``latest``; only folders that hold a report.json (Guardian's own).
        Returns the run ids removed."""
        if keep <= 0:
            return []
        import shutil

        runs = self.run_ids()
        spared = {*protect}
        try:
            spared.add(self.latest_run_id())
        except ReportError:
            pass
        removed = []
        for run_id in runs[: max(0, len(runs) - keep)]:
            path = self.run_dir(run_id)
            if run_id in spared or path.is_symlink() or self._in_progress(path):
                continue
            try:
                shutil.rmtree(path)
                removed.append(run_id)
            except OSError:
                continue
        return removed

    @staticmethod
    def _in_progress(run_dir: Path) -> bool:
        """A run another command may still be writing: not complete, and written to lately."""
        report = run_dir / "report.json"
        try:
            fresh = time.time() - report.stat().st_mtime < 86400
            return fresh and not json.loads(report.read_text(encoding="utf-8")).get("complete")
        except (OSError, ValueError, AttributeError):
            return False

    def save_last_failed(self, hosts: list[str]) -> None:
        """The retry file: hosts of the last run that failed or were unreachable (``@last-failed``)."""
        atomic_write(self.root / "last-failed", "".join(f"{h}\n" for h in hosts).encode())

    def last_failed(self) -> list[str]:
        try:
            return [line.strip() for line in (self.root / "last-failed").read_text().splitlines() if line.strip()]
        except OSError:
            return []

    def latest_run_id(self) -> str:
        try:
            return (self.root / "latest").read_text().strip()
        except OSError:
            runs = self.run_ids()
            if not runs:
                raise ReportError(f"no reports in {self.root}; run `invoke premarket` first") from None
            return runs[-1]

    def run_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "report.json").is_file())

    def load(self, run_id: str | None = None) -> RunReport:
        run_id = run_id or self.latest_run_id()
        path = self.run_dir(run_id) / "report.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            try:  # a run still going, or one whose controller died: its finished hosts are here
                data = apply_journal(data, (self.run_dir(run_id) / JOURNAL).read_bytes().splitlines())
            except FileNotFoundError:
                pass
            return run_report_from_dict(data)
        except FileNotFoundError:
            known = ", ".join(self.run_ids()[-5:]) or "none"
            raise ReportError(f"no report for run {run_id!r} in {self.root} (latest: {known})") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ReportError(f"{path} is not a valid Guardian report: {exc}") from None


#: In the directory a command runs in: which reports folder and run the last command there wrote,
#: so that ``invoke report`` after ``premarket --reports DIR`` shows that run, not an older one.
LAST_RUN_FILE = Path(".guardian-last-run.json")


@dataclass(frozen=True)
class LastRun:
    """The run the last fleet command started from this directory wrote, and where."""

    reports: Path
    run_id: str
    command: str = ""
    started_at: str = ""


def remember_last_run(pointer: Path, reports: Path, report: RunReport) -> None:
    """Record ``report``'s folder in ``pointer`` (atomically; the folder as an absolute path)."""
    data = {
        "reports": str(reports.expanduser().resolve()),
        "run_id": report.run_id,
        "command": report.command,
        "started_at": report.started_at,
    }
    atomic_write(pointer, (json.dumps(data, indent=2) + "\n").encode(), mode=0o644)


def recall_last_run(pointer: Path) -> LastRun | None:
    """The run ``pointer`` names, or None when there is none or it is unreadable: a missing,
    damaged or hand-edited pointer never stops ``invoke report``, it is just not used."""
    try:
        data = json.loads(pointer.read_text(encoding="utf-8"))
        return LastRun(
            reports=Path(str(data["reports"])),
            run_id=str(data["run_id"]),
            command=str(data.get("command", "")),
            started_at=str(data.get("started_at", "")),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
