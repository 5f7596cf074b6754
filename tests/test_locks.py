"""Lock files on a real filesystem: only provably stale locks go; symlinks and live locks stay."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remediation.agent.locks import LockDirError, judge, probe_locks, remove_lock


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def sweep(lock_dir: Path, max_age: float = 3600) -> dict[str, str]:
    """Judge and remove stale locks like the runner does; returns name -> what happened."""
    result = {}
    for info in probe_locks(str(lock_dir)):
        verdict = judge(info, now=time.time(), max_age=max_age)
        result[info.name] = remove_lock(str(lock_dir), info) if verdict.stale else f"kept: {verdict.reason}"
    return result


def test_stale_removed_live_and_held_kept(tmp_path: Path) -> None:
    (tmp_path / "metadata.lock").write_text(f"{dead_pid()}\n")
    (tmp_path / "mine.lock").write_text(f"{os.getpid()}\n")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.flock(f, fcntl.LOCK_EX);"
            " print('ok', flush=True); time.sleep(60)",
            str(tmp_path / "held.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        (tmp_path / "held.lock").write_text(f"{dead_pid()}\n")  # dead pid, but flock is held
        (tmp_path / "notes.txt").write_text("not a lock")
        outcome = sweep(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert outcome["metadata.lock"] == "removed"
    assert outcome["mine.lock"].startswith("kept: held by live pid")
    assert outcome["held.lock"].startswith("kept: a live process holds")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held.lock", "mine.lock", "notes.txt"]


def test_symlinked_lock_is_never_followed_or_removed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text(f"{dead_pid()}\n")
    lock_dir = tmp_path / "state"
    lock_dir.mkdir()
    (lock_dir / "evil.lock").symlink_to(outside)
    outcome = sweep(lock_dir)
    assert outcome["evil.lock"].startswith("kept: is a symlink")
    assert outside.exists() and (lock_dir / "evil.lock").is_symlink()


def test_symlinked_lock_dir_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.lock").write_text(f"{dead_pid()}\n")
    (tmp_path / "state").symlink_to(real)
    with pytest.raises(LockDirError):
        probe_locks(str(tmp_path / "state"))
    assert (real / "a.lock").exists()


def test_lock_rewritten_after_judgement_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    path.write_text(f"{dead_pid()}\n")
    (info,) = probe_locks(str(tmp_path))
    assert judge(info, now=time.time(), max_age=3600).stale
    path.unlink()
    path.write_text(f"{os.getpid()}\n")
    assert "left alone" in remove_lock(str(tmp_path), info)
    assert path.exists()


def test_old_lock_without_pid_is_stale_only_when_old(tmp_path: Path) -> None:
    (tmp_path / "old.lock").write_text("")
    (tmp_path / "new.lock").write_text("")
    past = time.time() - 7200
    os.utime(tmp_path / "old.lock", (past, past))
    outcome = sweep(tmp_path, max_age=3600)
    assert outcome["old.lock"] == "removed"
    assert outcome["new.lock"].startswith("kept")


def test_flock_probe_sees_held_inode(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_text("")
    with open(path) as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        (info,) = probe_locks(str(tmp_path))
        assert info.held
