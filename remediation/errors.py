"""Guardian's exception tree. Every message is written for the operator reading it at 9:14.

Per-host failures during a fleet run are values in the report (see ``report.HostReport``); these
exceptions are for what stops a command before any host is touched (a bad inventory) and for the
transport boundary, where paramiko and socket errors are wrapped.
"""

from __future__ import annotations


class GuardianError(Exception):
    """Root of every error Guardian raises on purpose."""


class InventoryError(GuardianError):
    """An inventory or rules file is malformed: names the file, line and key."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None, key: str = "") -> None:
        where = path
        if line is not None:
            where += f":{line}"
        if key:
            where += f" (key {key})" if where else f"key {key}"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.line = line
        self.key = key
        self.detail = message


class ConfigError(InventoryError):
    """``guardian.yaml`` is malformed (an unknown key, a value of the wrong type): names the
    file, line and key."""


class HostSelectionError(GuardianError):
    """A ``--hosts`` pattern names nothing that exists."""


class ConnectError(GuardianError):
    """A host could not be reached (refused, timed out, no banner, authentication failed)."""


class HostKeyError(ConnectError):
    """The host's SSH key is unknown or changed: refused, and no command was run."""


class ReportError(GuardianError):
    """A report could not be written or read (disk full, missing run)."""
