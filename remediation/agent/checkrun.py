"""Run the health check with a timeout, streaming its output to a log and the signature scanner.

The output may be tens of MB or never end: it is written to the on-host log as it arrives, only
a bounded tail is kept in memory, and lines are matched as they stream, so a flood neither
exhausts memory nor hides a signature printed early.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from typing import Any, Dict, List, Optional

from .identity import Identity, clean_environment
from .records import record
from .signatures import MAX_LINE_CHARS, Signature, SignatureMatch, SignatureScanner
from .watch import ControllerWatch

TAIL_BYTES = 64 * 1024


@record
class CheckRun:
    """One run of the health check."""

    argv: List[str]
    exit_code: Optional[int]
    timed_out: bool
    error: str
    duration: float
    output_bytes: int
    tail: str
    matches: List[SignatureMatch]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "argv": self.argv,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "error": self.error,
            "duration": round(self.duration, 3),
            "output_bytes": self.output_bytes,
            "tail": self.tail,
            "matches": [m.to_dict() for m in self.matches],
        }


def run_check(
    argv: List[str],
    *,
    cwd: str,
    timeout: float,
    signatures: List[Signature],
    log_path: Optional[str],
    watch: Optional[ControllerWatch] = None,
    identity: Optional[Identity] = None,
    what: str = "health check",
) -> CheckRun:
    """Run ``argv`` in ``cwd`` (as ``identity``: its uid and gid, no supplementary groups, a clean
    environment); kill its whole process group if it outlives ``timeout``. ``what`` names it in
    errors; only the health check (``argv``: python, script) must be a file that exists."""
    started = time.monotonic()
    scanner = SignatureScanner(signatures)
    if what == "health check" and not os.path.isfile(argv[1] if len(argv) > 1 else argv[0]):
        missing = argv[1] if len(argv) > 1 else argv[0]
        return CheckRun(argv, None, False, f"health check not found: {missing}", 0.0, 0, "", [])
    log_fd = -1
    if log_path:
        try:
            log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
        except OSError:
            log_fd = -1  # a symlinked or unwritable output log is never followed; the check still runs
    _prepare_prctl()
    as_user: Dict[str, Any] = {}
    if identity is not None:  # Python 3.9's Popen: setgroups([]), setgid, then setuid in the child
        as_user = {"user": identity.uid, "group": identity.gid, "extra_groups": []}
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env=clean_environment(identity, cwd),
            **as_user,
        )
    except OSError as exc:
        if log_fd >= 0:
            os.close(log_fd)
        return CheckRun(argv, None, False, f"cannot start {what}: {exc}", 0.0, 0, "", [])
    assert proc.stdout is not None
    out_fd = proc.stdout.fileno()
    tail = bytearray()
    partial = b""
    total = 0
    timed_out = False
    deadline = started + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([out_fd], [], [], min(remaining, 0.5))
            if watch is not None and watch.gone():
                _kill_group(proc)
                watch.check()  # raises ControllerGone, or StopRequested while the controller listens
            if not ready:
                continue
            chunk = os.read(out_fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if log_fd >= 0:
                os.write(log_fd, chunk)
            tail += chunk
            if len(tail) > TAIL_BYTES:
                del tail[: len(tail) - TAIL_BYTES]
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()
            if len(partial) > MAX_LINE_CHARS * 4:
                partial = partial[: MAX_LINE_CHARS * 4]
            for line in lines:
                scanner.feed_line(line.decode("utf-8", errors="replace"))
        if partial:
            scanner.feed_line(partial.decode("utf-8", errors="replace"))
        if timed_out:
            _kill_group(proc)
            exit_code: Optional[int] = None
        else:
            try:
                exit_code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                exit_code = None
    finally:
        proc.stdout.close()
        if log_fd >= 0:
            if timed_out:
                os.write(log_fd, f"\n[guardian] check killed after {timeout:.0f}s timeout\n".encode())
            os.close(log_fd)
    return CheckRun(
        argv=argv,
        exit_code=exit_code,
        timed_out=timed_out,
        error="",
        duration=time.monotonic() - started,
        output_bytes=total,
        tail=bytes(tail).decode("utf-8", errors="replace"),
        matches=scanner.matched(),
    )


_PRCTL: List[Any] = []


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGKILL it if the runner dies (even by SIGKILL), so a killed
    runner never leaves an orphaned, hanging health check behind. It runs after the child took
    the app user's identity (run_as: which also clears this setting), so it imports nothing: that
    user may not be able to read the runner's libraries. :func:`_prepare_prctl` loads libc first."""
    if _PRCTL:
        _PRCTL[0](1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _prepare_prctl() -> None:
    """Load libc's ``prctl`` in the runner, before any child is forked."""
    if _PRCTL:
        return
    try:
        import ctypes

        _PRCTL.append(ctypes.CDLL(None, use_errno=True).prctl)
    except (OSError, AttributeError, ImportError):
        _PRCTL.append(lambda *args: 0)  # no prctl here: the check is still killed on the timeout


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """End the check and everything it started: the process group we created for it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=2)
            return
        except subprocess.TimeoutExpired:
            continue
