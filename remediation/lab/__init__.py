"""Lab fleet: isolated namespace droplets running real OpenSSH servers, for end-to-end tests.

The names are loaded on first use, so ``invoke --list`` (which imports the lab's tasks) does not
pay for the whole lab module."""

from __future__ import annotations

from typing import Any

__all__ = ["HostStatus", "Lab", "LabError", "LabHost"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import fleet

        return getattr(fleet, name)
    raise AttributeError(name)
