"""Per-host settings: the defaults, and a validator for every key an inventory may set.

Settings layer in this order, later winning: these defaults, an inventory file's ``vars``, group
``vars`` (parents before children), host entries, then command-line flags. Every value that can
reach a command on a host is validated here, so a hostile inventory is rejected, not executed.
"""

from __future__ import annotations

import copy
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from ..agent.config import DEFAULT_SCHEDULES, DEFAULT_SERVICES, runner_defaults
from ..agent.cronblock import ScheduleError, check_cron_safe, validate_schedule
from ..agent.cronexpr import zone
from ..agent.managers import MANAGERS
from ..agent.safety import DEFAULT_TIMEOUTS, HOOKS
from ..agent.signatures import RuleError, validate_name
from ..agent.windows import WindowError, parse_windows

DEFAULTS: dict[str, Any] = {
    "transport": "ssh",
    "port": None,  # None: as ssh would (ssh_config's Port, else 22)
    "user": None,  # None: as ssh would (ssh_config's User, else the local user)
    "key": None,
    "jump": None,
    "known_hosts": "~/.ssh/known_hosts",
    # app_dir, python, manager, services, check, lock_*, restart_*, collect_max_bytes, alert_keep, ...:
    # the on-host runner's settings, whose one definition (with its default) is agent/config.py.
    **runner_defaults(),
    "connect_timeout": 10.0,
    "host_deadline": 300.0,
    "protected": False,
    # how long after a scheduled time a cron run may start before the host counts as silent
    "self_heal_grace": 300.0,
    # a healthchecks.io-compatible ping URL for cron's runs (a secret: kept 0600 on the host)
    "ping_url": None,
    # deploy: what cron runs on the host
    "schedules": copy.deepcopy(DEFAULT_SCHEDULES),
    "scheduler": "cron",  # or "systemd-timer": the schedules as systemd timers instead of cron lines
}

#: Settings whose value is a secret: never printed (``invoke inventory``), logged or reported.
SECRET_SETTINGS = frozenset({"ping_url"})

_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.:_-]{0,252})$")
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_PROGRAM = re.compile(r"^[A-Za-z0-9_./+@-]{1,200}$")
_OPTION_KEYS = {
    "supervisorctl": "program",
    "supervisor_conf": "path",
    "supervisor_rpc": "bool",
    "process_compose": "program",
    "process_compose_port": "port",
    "process_compose_socket": "path",
    "restart_signal": "signal",
}


class SettingError(ValueError):
    """A setting's value is invalid; ``key`` is its dotted path below the setting."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise SettingError(f"expected {what} (a non-empty string), got {value!r}")
    if any(ch in value for ch in "\0\n\r"):
        raise SettingError(f"{what} must not contain newlines or NUL bytes")
    return value


def _path(value: Any) -> str:
    return _str(value, "a path")


def _opt_path(value: Any) -> str | None:
    return None if value is None else _path(value)


def _program(value: Any) -> str:
    text = _str(value, "a program name or path")
    if not _PROGRAM.fullmatch(text):
        raise SettingError(f"{text!r} is not a plain program name or path (no spaces or shell characters)")
    return text


def _hostname(value: Any) -> str:
    text = _str(value, "a host name or address")
    if not _HOSTNAME.fullmatch(text):
        raise SettingError(f"{text!r} is not a valid host name or IP address")
    return text


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise SettingError(f"expected a port number 1-65535, got {value!r}")
    return value


def _user(value: Any) -> str:
    text = _str(value, "a user name")
    if not _USER.fullmatch(text):
        raise SettingError(f"{text!r} is not a valid user name")
    return text


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value > 86400:
        raise SettingError(f"expected a number of seconds between 0 and 86400, got {value!r}")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingError(f"expected a whole number >= 0, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingError(f"expected true or false, got {value!r}")
    return value


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise SettingError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check


def _args(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise SettingError(f"expected a list of arguments, got {value!r}")
    return [_str(v, "an argument") for v in value]


def _manager_options(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SettingError(f"expected a mapping, got {value!r}")
    result: dict[str, Any] = {}
    for key, raw in value.items():
        kind = _OPTION_KEYS.get(key)
        try:
            if kind is None:
                raise SettingError(f"unknown manager option; expected one of {', '.join(sorted(_OPTION_KEYS))}")
            if kind == "program":
                result[key] = _program(raw)
            elif kind == "path":
                result[key] = _path(raw)
            elif kind == "port":
                result[key] = _port(raw)
            elif kind == "bool":
                result[key] = _bool(raw)
            else:
                result[key] = _choice("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR2")(raw)
        except SettingError as exc:
            raise SettingError(str(exc), key=key) from None
    return result


#: The keys of a service entry: where the manager finds it, and what makes its restart safe.
_SERVICE_KEYS = ("name", "program", "pidfile", *HOOKS, "heartbeat", "heartbeat_max_age")


def _hook(name: str, value: Any) -> dict[str, Any]:
    """A hook as ``{run: [argv], timeout}``, from a list or that mapping."""
    timeout: Any = DEFAULT_TIMEOUTS[name]
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"run", "timeout"})
        if unknown:
            raise SettingError("unknown key; expected run (a list of arguments) and timeout", key=unknown[0])
        timeout = value.get("timeout", timeout)
        value = value.get("run")
    argv = _args(value)
    if not argv:
        raise SettingError("expected a non-empty list of arguments (the program first; no shell)")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise SettingError(f"expected a timeout in seconds between 0 and 3600, got {timeout!r}", key="timeout")
    return {"run": argv, "timeout": float(timeout)}


def _service_key(key: str, raw: Any) -> Any:
    if key in HOOKS:
        return _hook(key, raw)
    if key == "heartbeat":
        return _program(raw)
    if key == "heartbeat_max_age":
        seconds = _seconds(raw)
        if seconds <= 0:
            raise SettingError("expected a number of seconds > 0")
        return seconds
    return _program(raw) if key != "name" else validate_name(raw, key)


def _services(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise SettingError(f"expected a mapping of services, got {value!r}")
    result: dict[str, dict[str, Any]] = {}
    for service, spec in value.items():
        try:
            validate_name(service, "service")
        except RuleError as exc:
            raise SettingError(exc.message, key=str(service)) from None
        base: dict[str, Any] = dict(DEFAULT_SERVICES.get(service, {"name": service, "program": "", "pidfile": ""}))
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise SettingError(f"expected a mapping with {', '.join(_SERVICE_KEYS)}", key=service)
        for key, raw in spec.items():
            if key not in _SERVICE_KEYS:
                raise SettingError(f"unknown key; expected one of {', '.join(_SERVICE_KEYS)}", key=f"{service}.{key}")
            try:
                base[key] = _service_key(key, raw)
            except (SettingError, RuleError) as exc:
                inner = getattr(exc, "key", "")
                raise SettingError(str(exc), key=f"{service}.{key}" + (f".{inner}" if inner else "")) from None
        result[service] = base
    return result


def _quiet_windows(value: Any) -> list[dict[str, Any]]:
    """Each window checked (times, days, a zone this machine knows), kept as the inventory gave it."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise SettingError("expected a list of windows {services, days, start, end, tz}")
    try:
        windows = parse_windows(value)
        for index, window in enumerate(windows):
            try:
                zone(window.tz)
            except ScheduleError as exc:
                raise WindowError(str(exc), f"{index}.tz") from None
    except WindowError as exc:
        raise SettingError(str(exc), key=exc.key) from None
    return [w.to_dict() for w in windows]


def _passes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
        raise SettingError(f"expected how many passing checks in a row make a heal, 1-20, got {value!r}")
    return value


def _ping_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    # Never echo the value: it is a secret.
    if not isinstance(value, str):
        raise SettingError(f"expected an http(s) URL, e.g. https://hc-ping.com/<uuid>, got {type(value).__name__}")
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in value):
        raise SettingError("a URL has no spaces or control characters (value not shown: it is a secret)")
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise SettingError("not a valid URL (value not shown: it is a secret)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError("expected an http:// or https:// URL with a host (value not shown: it is a secret)")
    return value


def _run_as(value: Any) -> str:
    """ "" (the app dir's owner), "root", a user name or a numeric uid."""
    if value in (None, ""):
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    text = _str(value, "a user name or a numeric uid")
    if not (text.isdigit() or _USER.fullmatch(text)):
        raise SettingError(f"expected a user name or a numeric uid, got {text!r}")
    return text


def _relative_dir(value: Any) -> str:
    """A directory, relative to the app dir or absolute; "" for the default."""
    return "" if value in (None, "") else _path(value)


def _schedules(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise SettingError("expected a list of {name, schedule, check, log, optional}")
    result: list[dict[str, Any]] = []
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise SettingError("expected a mapping with name, schedule, check, log and optional", key=str(index))
        unknown = sorted(set(entry) - {"name", "schedule", "check", "log", "optional"})
        if unknown:
            raise SettingError(
                "unknown key; expected name, schedule, check, log, optional", key=f"{index}.{unknown[0]}"
            )
        try:
            name = validate_name(entry.get("name"), "name")
            schedule = validate_schedule(entry.get("schedule", ""))
            check = check_cron_safe(_path(entry.get("check")), "check script")
            log = check_cron_safe(_path(entry.get("log", f"logs/{name}.log")), "log file")
        except (RuleError, ScheduleError, SettingError) as exc:
            raise SettingError(str(exc), key=str(index)) from None
        optional = entry.get("optional", False)
        if not isinstance(optional, bool):
            raise SettingError(
                f"expected true or false (true: a host without the script skips this schedule), got {optional!r}",
                key=f"{index}.optional",
            )
        result.append({"name": name, "schedule": schedule, "check": check, "log": log, "optional": optional})
    return result


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "transport": _choice("ssh", "local"),
    "address": _hostname,
    "port": lambda v: None if v is None else _port(v),
    "user": lambda v: None if v is None else _user(v),
    "key": _opt_path,
    "jump": lambda v: None if v is None else _str(v, "a host name from the inventory or user@host:port"),
    "known_hosts": _path,
    "app_dir": _path,
    "python": _program,
    "manager": _choice(*sorted(MANAGERS)),
    "manager_options": _manager_options,
    "services": _services,
    "check": _path,
    "check_args": _args,
    "check_timeout": _seconds,
    "settle_seconds": _seconds,
    "lock_dir": _path,
    "lock_max_age": _seconds,
    "lock_wait": _seconds,
    "restart_timeout": _seconds,
    "verify_passes": _passes,
    "verify_window": _seconds,
    "quiet_windows": _quiet_windows,
    "connect_timeout": _seconds,
    "host_deadline": _seconds,
    "collect_max_bytes": _count,
    "alert_keep": _count,
    "protected": _bool,
    "schedules": _schedules,
    "scheduler": _choice("cron", "systemd-timer"),
    "restart_budget_max": _count,
    "restart_budget_window": _seconds,
    "metrics_dir": _relative_dir,
    "guardian_dir": lambda v: check_cron_safe(_path(v), "guardian_dir"),
    "run_as": _run_as,
    "journal_retain": _count,
    "alert_retain": _count,
    "self_heal_grace": _seconds,
    "ping_url": _ping_url,
}


def validate_setting(key: str, value: Any) -> Any:
    """Return the validated value of setting ``key``; raises SettingError."""
    try:
        validator = VALIDATORS[key]
    except KeyError:
        raise SettingError(f"unknown setting; known settings: {', '.join(sorted(VALIDATORS))}") from None
    return validator(value)


def merge_settings(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Layer ``override`` on ``base``; ``services`` and ``manager_options`` merge per key."""
    merged = dict(base)
    for key, value in override.items():
        if key in ("services", "manager_options") and isinstance(value, Mapping):
            inner = dict(merged.get(key) or {})
            inner.update(value)
            merged[key] = inner
        else:
            merged[key] = value
    return merged
