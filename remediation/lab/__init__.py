"""Lab fleet: isolated namespace droplets running real OpenSSH servers, for end-to-end tests.

``fleet`` (the Lab: up, down, status, exec) over ``procs`` (PIDs, namespaces), ``network``
(bridge, namespaces, private links), ``hostfiles`` (what each host and its clients get) and
``faults``; ``hostinit`` is PID 1 inside a host (or, on a systemd host, prepares the container
real systemd boots in); ``sysd`` powers systemd hosts off and removes their cgroups; ``tasks``
are ``invoke lab.*``.

The names are loaded on first use, so ``invoke --list`` (which imports the lab's tasks) does not
pay for the whole lab module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real types for type checkers; at run time they load on first use
    from .fleet import Lab
    from .model import HostStatus, LabError, LabHost

__all__ = ["HostStatus", "Lab", "LabError", "LabHost"]


def __getattr__(name: str) -> Any:
    if name == "Lab":
        from .fleet import Lab

        return Lab
    if name in __all__:
        from . import model

        return getattr(model, name)
    raise AttributeError(name)
