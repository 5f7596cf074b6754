"""Whether root may trust a file: the StrictModes rule, for what Guardian executes or reads as
configuration.

Root's cron runs Guardian's runner, which runs the app's health check (and hooks) and reads its
config. If anyone but root (or the crontab's own user) can change one of those files, or any
directory above it, a compromise of that account becomes root on the next cron tick. sshd
refuses keys in such paths for the same reason (``StrictModes``). A path is trusted when it and
every directory up to ``/`` are

- owned by root or by one of the ``owners`` allowed (the crontab's user), and
- not writable by group or others. One exception, for directories only: a root-owned sticky
  directory such as ``/tmp`` (others may add entries there, but cannot rename or replace the
  root-owned entry below it that the path goes through).

Symlinks are followed the way ``open`` would follow them, and each step of the real path is
checked. Read-only: nothing is changed here (see deploy's ``--fix-permissions``).
Standard library only.
"""

from __future__ import annotations

import os
import stat
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set

from .records import record


@record(frozen=True)
class TrustProblem:
    """One path that root must not trust, and why (written for an operator)."""

    path: str
    mode: int
    uid: int
    gid: int
    why: str

    def describe(self) -> str:
        return f"{self.path} ({stat.filemode(self.mode)} uid {self.uid} gid {self.gid}): {self.why}"

    def fix(self) -> str:
        """The command an operator would run to make this path trustworthy."""
        return f"chown root {self.path} && chmod go-w {self.path}"


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _judge(path: str, st: os.stat_result, owners: Sequence[int]) -> Optional[TrustProblem]:
    allowed = {0, *owners}
    if st.st_uid not in allowed:
        return TrustProblem(
            path,
            st.st_mode,
            st.st_uid,
            st.st_gid,
            f"owned by {_owner_name(st.st_uid)}, not by root or the runner's user",
        )
    sticky_root_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX and st.st_uid == 0
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_root_dir:
        who = (
            "group and others"
            if st.st_mode & stat.S_IWGRP and st.st_mode & stat.S_IWOTH
            else ("its group" if st.st_mode & stat.S_IWGRP else "others")
        )
        return TrustProblem(path, st.st_mode, st.st_uid, st.st_gid, f"writable by {who}")
    return None


def _path_and_parents(path: str) -> Iterator[str]:
    """``path``, then each directory above it, up to ``/``."""
    while True:
        yield path
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def _realpath(path: str, parents: Dict[str, str]) -> str:
    """``os.path.realpath(path)``, resolving each parent directory once for many paths in it
    (``parents``: directory -> its real path); the package deploy installs is ~80 files."""
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        return os.path.realpath(path)  # ".." resolves after the symlinks before it, as realpath does
    parent, name = os.path.split(path)
    if parent not in parents:
        parents[parent] = os.path.realpath(parent)
    real = os.path.join(parents[parent], name)
    return os.path.realpath(real) if os.path.islink(real) else real


def trust_problems(
    path: str, *, owners: Iterable[int] = (), seen: Optional[Set[str]] = None, parents: Optional[Dict[str, str]] = None
) -> List[TrustProblem]:
    """Every reason root must not trust ``path`` (empty: trusted). A missing path is a problem too.

    Two chains are judged, each entry once: the path as written (a symlink anywhere on it, such
    as ``app/.guardian -> /opt/x``, is only as safe as its owner and the directory holding it,
    which could swap it for another target), and the real path it leads to now. ``seen`` and
    ``parents`` carry what was judged and resolved already over several paths (:func:`untrusted`).
    """
    allowed = tuple(owners)
    try:
        real = _realpath(path, {} if parents is None else parents)
        os.stat(real)
    except OSError as exc:
        return [TrustProblem(path, 0, -1, -1, f"cannot be checked: {exc.strerror}")]
    problems: List[TrustProblem] = []
    seen = set() if seen is None else seen
    for step in (*_path_and_parents(os.path.abspath(path)), *_path_and_parents(real)):
        if step in seen:
            continue
        seen.add(step)
        try:
            st = os.lstat(step)
        except OSError as exc:
            problems.append(TrustProblem(step, 0, -1, -1, f"cannot be checked: {exc.strerror}"))
            continue
        if not stat.S_ISLNK(st.st_mode):
            problem = _judge(step, st, allowed)
        elif st.st_uid not in {0, *allowed}:  # where it leads is judged on the real chain
            problem = TrustProblem(step, st.st_mode, st.st_uid, st.st_gid, "a symlink owned by another user")
        else:
            problem = None
        if problem:
            problems.append(problem)
    return problems


def untrusted(paths: Iterable[str], *, owners: Iterable[int] = ()) -> List[TrustProblem]:
    """The problems of every path, each directory judged and reported once."""
    reported = set()
    judged: Set[str] = set()
    parents: Dict[str, str] = {}
    found: List[TrustProblem] = []
    allowed = tuple(owners)
    for path in paths:
        for problem in trust_problems(path, owners=allowed, seen=judged, parents=parents):
            if problem.path not in reported:
                reported.add(problem.path)
                found.append(problem)
    return found


def nearest_existing(path: str) -> str:
    """``path``, or its nearest ancestor that exists (what a directory yet to be created would
    inherit: whoever can write there can plant it)."""
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def root_reads(
    *, guardian_dir: str, check_path: Optional[str] = None, files: Sequence[str] = (), programs: Sequence[str] = ()
) -> List[str]:
    """What a run must be able to trust before it acts: Guardian's own directory (its state and,
    for cron, the runner, config and secrets in ``files``), and the health check and the services'
    hooks when they run with the runner's privilege (``check_path``, ``programs``; left out when
    they run as the app's user)."""
    paths = [nearest_existing(guardian_dir), *[f for f in files if os.path.lexists(f)]]
    for program in (check_path, *programs):
        if program is not None and os.path.lexists(program) and program not in paths:
            paths.append(program)
    return paths


def refusal(problems: Sequence[TrustProblem], guardian_dir: str) -> str:
    """The operator's message for a run or deploy that will not trust what it found."""
    listed = "; ".join(p.describe() for p in problems)
    return (
        f"refusing to run as uid {os.geteuid()}: another user could change what it executes or reads: {listed}. "
        "Fix the owner/mode (invoke deploy --fix-permissions shows and makes the changes), run the check "
        f"as the app's user (run_as), or keep Guardian's files ({guardian_dir}) in a directory only root can write "
        "(guardian_dir)"
    )
