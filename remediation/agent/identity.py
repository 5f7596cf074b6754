"""Who the health check (and, later, hooks) runs as: ``run_as``.

A root runner runs the app's own code (its health check) as the app's user, so that code never
gets root: the process gets that user's uid and primary gid, no supplementary groups, and a
clean environment (nothing of root's, nor of the SSH session's). Restarts keep the privilege
the process manager needs. ``run_as`` is a user name or a numeric uid; empty means the owner of
the app dir when the runner is root (and no change otherwise); ``root`` keeps root.
Standard library only; resolving is read-only.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

from .records import record


class IdentityError(ValueError):
    """``run_as`` names no user this host knows."""


@record(frozen=True)
class Identity:
    """A user to run code as."""

    uid: int
    gid: int
    name: str
    home: str

    def describe(self) -> str:
        return f"{self.name} (uid {self.uid}, gid {self.gid})"


def _lookup(spec: str, fallback_gid: int) -> Identity:
    import pwd

    try:
        entry = pwd.getpwuid(int(spec)) if spec.isdigit() else pwd.getpwnam(spec)
    except KeyError:
        if spec.isdigit():  # a uid with no passwd entry (a container's bot user)
            # its group: the app dir's, never root's (65534: nogroup)
            return Identity(int(spec), fallback_gid if fallback_gid > 0 else 65534, spec, "/")
        raise IdentityError(f"run_as {spec!r}: no such user on this host") from None
    return Identity(entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_dir or "/")


def resolve_run_as(setting: str, app_dir: str, *, euid: Optional[int] = None) -> Optional[Identity]:
    """The identity the check runs as, or None to run it as the runner itself."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        return None  # only root can change who runs the check; a non-root runner is that user
    if setting == "root":
        return None
    if setting:
        identity = _lookup(setting, fallback_gid=int(setting) if setting.isdigit() else 0)
    else:
        try:
            st = os.stat(app_dir)
        except OSError:
            return None  # no app dir: the run reports that itself
        identity = _lookup(str(st.st_uid), fallback_gid=st.st_gid)
    return None if identity.uid == 0 else identity


def clean_environment(identity: Optional[Identity], cwd: str) -> Dict[str, str]:
    """The check's environment: the runner's own when it stays as is, else a fresh one."""
    if identity is None:
        return {**os.environ, "PYTHONUNBUFFERED": "1"}
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": identity.home,
        "USER": identity.name,
        "LOGNAME": identity.name,
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PWD": cwd,
        "PYTHONUNBUFFERED": "1",
    }
