"""``guardian.yaml``: defaults for the tasks' flags, so a fleet's inventory or report folder is
written down once instead of on every command line.

Guardian reads ``guardian.yaml`` in the current directory, and only there (no search of parent
directories, no per-user file): what a command does depends on the directory it runs in and its
flags, nothing else. Every key is optional::

    inventory: [inventory/, ../fleet/hosts.ini]   # a path or a list of paths   (--inventory)
    rules: rules/extra.yaml                       # a path or a list of paths   (--rules)
    reports: /var/lib/guardian/reports            # a path                       (--reports)
    ssh_config: ~/.ssh/guardian.config            # a path, '' for none          (--ssh-config)
    report_keep: 200                              # runs kept in reports/ (0: all) (report --prune)

A flag given on the command line wins over the file, and the file over the built-in defaults. A
relative path is relative to the file's directory; ``~`` is expanded. An unknown key or a value
of the wrong type stops the command with the file, line and key, before anything runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, InventoryError
from .inventory.yamlfile import KeyPath, LocatedYaml, dotted, load_located

CONFIG_FILE = "guardian.yaml"
DEFAULT_INVENTORY = Path("inventory")
DEFAULT_REPORTS = Path("reports")
#: How many runs the report folder keeps by default (the oldest go after each run).
DEFAULT_REPORT_KEEP = 200
DEFAULT_SSH_CONFIG = "~/.ssh/config"
#: The keys guardian.yaml takes and what each holds (for messages).
CONFIG_KEYS = {
    "inventory": "a path or a list of paths",
    "reports": "a path",
    "rules": "a path or a list of paths",
    "ssh_config": "a path, or '' for none",
    "report_keep": "a whole number of runs to keep (0: keep every run)",
}


@dataclass(frozen=True)
class GuardianConfig:
    """What ``guardian.yaml`` set (``None``: not set there). ``path`` is the file, if any."""

    path: Path | None = None
    inventory: tuple[Path, ...] | None = None
    rules: tuple[Path, ...] | None = None
    reports: Path | None = None
    ssh_config: str | None = None  # "" means: use no ssh_config file
    report_keep: int = DEFAULT_REPORT_KEEP  # runs kept in the report folder; 0: all

    def inventory_paths(self, flag: Sequence[str] | None) -> list[Path]:
        """``--inventory`` if given, else the file's ``inventory``, else ``inventory/``."""
        if flag:
            return [Path(p) for p in flag]
        return list(self.inventory) if self.inventory else [DEFAULT_INVENTORY]

    def rules_paths(self, flag: Sequence[str] | None) -> list[Path]:
        """``--rules`` if given (replacing the file's list), else the file's ``rules``."""
        if flag:
            return [Path(p) for p in flag]
        return list(self.rules or ())

    def reports_dir(self, flag: str | None) -> Path:
        """``--reports`` if given, else the file's ``reports``, else ``reports/``."""
        if flag is not None:
            return Path(flag)
        return self.reports or DEFAULT_REPORTS

    def ssh_config_file(self, flag: str | None) -> str | None:
        """``--ssh-config`` if given, else the file's ``ssh_config``, else ``~/.ssh/config``;
        ``''`` (from either) means none, returned as ``None``."""
        if flag is not None:
            return flag or None
        if self.ssh_config is not None:
            return self.ssh_config or None
        return DEFAULT_SSH_CONFIG

    def source(self, key: str) -> str:
        """Where a setting came from, for messages: ``guardian.yaml`` or ``default``."""
        return str(self.path) if self.path is not None and getattr(self, key) is not None else "default"


def load_config(directory: Path = Path(".")) -> GuardianConfig:
    """Read ``directory/guardian.yaml``; no file means no defaults beyond the built-in ones.

    Raises:
        ConfigError: the file cannot be read, is not YAML, or has an unknown key or a value of
            the wrong type (the message names the file, line and key).
    """
    path = directory / CONFIG_FILE
    if not path.exists():
        return GuardianConfig()
    try:
        doc = load_located(path)
    except InventoryError as exc:
        raise ConfigError(exc.detail, path=exc.path, line=exc.line, key=exc.key) from None
    if doc.data is None:
        return GuardianConfig(path=path)
    if not isinstance(doc.data, dict):
        raise _error(doc, (), f"expected a mapping of settings ({', '.join(CONFIG_KEYS)}), not {_kind(doc.data)}")
    values: dict[str, Any] = {}
    for key, value in doc.data.items():
        if key not in CONFIG_KEYS:
            expected = ", ".join(CONFIG_KEYS)
            raise _error(doc, (key,), f"unknown setting {key!r}; {CONFIG_FILE} takes {expected}")
        if key in ("inventory", "rules"):
            values[key] = tuple(_path(directory, item) for item in _paths(doc, key, value))
        elif key == "report_keep":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _error(doc, (key,), f"expected {CONFIG_KEYS[key]}, got {_kind(value)} {value!r}")
            values[key] = value
        elif key == "reports":
            values[key] = _path(directory, _text(doc, (key,), value, allow_empty=False))
        else:
            text = _text(doc, (key,), value, allow_empty=True)
            values[key] = str(_path(directory, text)) if text else ""
    return GuardianConfig(path=path, **values)


def _paths(doc: LocatedYaml, key: str, value: Any) -> list[str]:
    if isinstance(value, list):
        if not value:
            raise _error(doc, (key,), f"expected {CONFIG_KEYS[key]}, got an empty list")
        return [
            _text(doc, (key, index), item, allow_empty=False, what=CONFIG_KEYS[key]) for index, item in enumerate(value)
        ]
    return [_text(doc, (key,), value, allow_empty=False, what=CONFIG_KEYS[key])]


def _text(doc: LocatedYaml, key_path: KeyPath, value: Any, *, allow_empty: bool, what: str = "") -> str:
    what = what or CONFIG_KEYS[str(key_path[0])]
    if not isinstance(value, str):
        raise _error(doc, key_path, f"expected {what}, got {_kind(value)} {value!r}")
    if not value.strip() and not allow_empty:
        raise _error(doc, key_path, f"expected {what}, got an empty string")
    return value


def _path(directory: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() or directory == Path(".") else directory / path


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _error(doc: LocatedYaml, key_path: KeyPath, message: str) -> ConfigError:
    return ConfigError(message, path=str(doc.path), line=doc.line_of(key_path) or 1, key=dotted(key_path))
