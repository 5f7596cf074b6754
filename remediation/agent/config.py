"""The runner's contract: every setting and job field it reads, with its one default, as types.

The controller builds a :class:`RunnerConfig` from a host's inventory settings and the job, sends
it as plain JSON (``to_dict``), and the runner reads it back (``from_dict``), refusing any key it
does not know. It comes in three parts:

- :class:`HostSettings`: what every run on the host needs, whoever starts it. ``invoke deploy``
  writes exactly this to cron's ``config.json``, so nothing that belongs to one run can leak there;
- :class:`JobFields`: what this one run is asked to do (dry run, force, gate, hold, ...);
- :class:`DeployFields`: what ``invoke deploy`` installs (only for ``action: deploy``).

The inventory's defaults for the runner's settings (``remediation.inventory.settings.DEFAULTS``)
are taken from here (:func:`runner_defaults`), so the two sides cannot drift apart.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type, TypeVar, Union, get_type_hints

from . import records
from .records import field

#: Logical services the seed knows, and how each manager finds them by default.
DEFAULT_SERVICES: Dict[str, Dict[str, Any]] = {
    "uw-daemon": {"name": "uw-daemon", "program": "uw_flow_daemon.py", "pidfile": "state/uw_flow_daemon.pid"},
    "trading-bot": {"name": "trading-bot", "program": "main.py", "pidfile": "state/main.pid"},
}

#: What cron runs on the host, for deploy (UTC on the seed's droplets: 14:15 UTC = 9:15 ET).
DEFAULT_SCHEDULES: List[Dict[str, Any]] = [
    {
        "name": "pre_market",
        "schedule": "15 14 * * 1-5",
        "check": "pre_market_health_check.py",
        "log": "logs/pre_market.log",
        "optional": False,  # a host without this script fails deploy's pre-flight
    },
    {
        "name": "friday_eow_audit",
        "schedule": "30 20 * * 5",
        "check": "friday_eow_audit.py",
        "log": "logs/friday_eow_audit.log",
        "optional": True,  # a host without this script deploys without the audit (a warning)
    },
]

#: Job keys that deploys before this contract also wrote into cron's config.json. A runner reading
#: such a file ignores them (cron's job comes from its command line); any other unknown key is an
#: error. They held the job defaults, so ignoring them changes nothing.
LEGACY_CRON_KEYS = (
    "suppress",
    "reset_breaker",
    "hold_seconds",
    "hold_reason",
    "hold_by",
    "defer",
    "gate",
    "gate_timeout",
)

#: The secrets a host may hold (in <install dir>/secrets.json, mode 0600): cron's runs read them.
SECRET_KEYS = ("ping_url",)

#: Field metadata of the settings whose value (and default) is an inventory setting's.
_INVENTORY = "inventory"
_SETTING = {_INVENTORY: True}

T = TypeVar("T")


def _copy(value: T) -> T:
    return copy.deepcopy(value)


class RunnerConfigError(ValueError):
    """The runner's config has a key the runner does not know, or a value of the wrong type."""


@records.record(frozen=True)
class HostSettings:
    """What every run on a host needs, whoever starts it: exactly what cron's config.json holds."""

    host: Optional[str] = None  # the host's inventory name; None: this machine's hostname
    runner: str = "laptop"  # who runs it: "laptop" (streamed by the controller) or "cron" (deployed)
    signatures: List[Dict[str, Any]] = field(default_factory=list)  # the failure signatures, as rules data
    app_dir: str = field(default="~/stock-bot", metadata=_SETTING)
    python: str = field(default="python3", metadata=_SETTING)
    manager: str = field(default="supervisor", metadata=_SETTING)
    manager_options: Dict[str, Any] = field(default_factory=dict, metadata=_SETTING)
    # Each service: name, program, pidfile; and for a safe restart (see safety): safe_to_restart,
    # pre_restart, post_restart ({run: [argv], timeout}), heartbeat, heartbeat_max_age.
    services: Dict[str, Dict[str, Any]] = field(default_factory=lambda: _copy(DEFAULT_SERVICES), metadata=_SETTING)
    check: str = field(default="pre_market_health_check.py", metadata=_SETTING)
    check_args: List[str] = field(default_factory=list, metadata=_SETTING)
    check_timeout: float = field(default=60.0, metadata=_SETTING)
    settle_seconds: float = field(default=5.0, metadata=_SETTING)
    lock_dir: str = field(default="state", metadata=_SETTING)
    lock_max_age: float = field(default=3600.0, metadata=_SETTING)
    lock_wait: float = field(default=5.0, metadata=_SETTING)
    restart_timeout: float = field(default=20.0, metadata=_SETTING)
    # Healed means stable: after the settle, the check must pass this many times in a row over
    # this many seconds, each restarted service keeping its pid (and moving its heartbeat).
    verify_passes: int = field(default=2, metadata=_SETTING)
    verify_window: float = field(default=5.0, metadata=_SETTING)
    # When a restart needs --force: [{services, days, start, end, tz, name}] (see windows).
    quiet_windows: List[Dict[str, Any]] = field(default_factory=list, metadata=_SETTING)
    collect_max_bytes: int = field(default=1 << 20, metadata=_SETTING)
    alert_keep: int = field(default=20, metadata=_SETTING)
    # The restart budget (circuit breaker): at most this many restarts of one service within
    # this many seconds, then the breaker opens.
    restart_budget_max: int = field(default=3, metadata=_SETTING)
    restart_budget_window: float = field(default=1800.0, metadata=_SETTING)
    # Where every run writes guardian.prom for node_exporter's textfile collector; relative to
    # the app dir; "": <app>/.guardian/metrics.
    metrics_dir: str = field(default="", metadata=_SETTING)
    # Guardian's own files on the host: runner, config, manifest, secrets, state/ (relative to
    # the app dir, or absolute). Root trusts what is in it, so it must be root's (see trust).
    guardian_dir: str = field(default=".guardian", metadata=_SETTING)
    # Who the health check runs as when the runner is root: "" the app dir's owner, "root", a
    # user name or a numeric uid (see identity).
    run_as: str = field(default="", metadata=_SETTING)
    # What a host keeps at most, so its disk use is bounded: run journals, and Guardian's alert
    # files (0: keep everything).
    journal_retain: int = field(default=500, metadata=_SETTING)
    alert_retain: int = field(default=200, metadata=_SETTING)
    journal_keep: int = 20  # how many cron-run journals a run brings home

    def __post_init__(self) -> None:
        # A service's value is typed Any (its hooks are lists or mappings, see safety): the
        # parts every run reads are checked here, the hooks when a run uses them.
        for service, spec in self.services.items():
            if not isinstance(spec, dict):
                raise RunnerConfigError(f"runner config services.{service}: expected a mapping, got {spec!r}")
            for key in ("name", "program", "pidfile", "heartbeat"):
                if key in spec and not isinstance(spec[key], str):
                    raise RunnerConfigError(f"runner config services.{service}.{key}: expected str, got {spec[key]!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostSettings:
        return _build(cls, data, "")

    @classmethod
    def from_cron_config(cls, data: Mapping[str, Any]) -> HostSettings:
        """Read cron's config.json, also as an older deploy wrote it (see ``LEGACY_CRON_KEYS``)."""
        return cls.from_dict({k: v for k, v in data.items() if k not in LEGACY_CRON_KEYS})

    def to_dict(self) -> Dict[str, Any]:
        return _fields(self)


@records.record(frozen=True)
class JobFields:
    """What one run is asked to do. Never written to the host: cron's runs take the defaults."""

    action: str = "run"  # "run" (premarket/recover), "collect", "status", "hold", "release" or "deploy"
    run_id: Optional[str] = None  # None: the runner makes one up (cron)
    dry_run: bool = False
    force: bool = False  # recover whatever the check says (invoke recover)
    override_windows: bool = False  # --force: restart inside a quiet window (cron never sets it)
    override_unsafe: bool = False  # --force-unsafe: restart although safe_to_restart says no
    only: List[str] = field(default_factory=list)  # limit recovery to these steps: "locks", signature names
    suppress: Dict[str, str] = field(default_factory=dict)  # signature -> why not to act (common cause)
    reset_breaker: bool = False
    hold_seconds: float = 0.0
    hold_reason: str = ""
    hold_by: str = ""
    defer: bool = False  # survey: check, then stop before acting (blast-radius guard)
    gate: bool = False  # survey in one session: check, then wait for the controller's go/no-go
    gate_timeout: float = 300.0  # how long to wait at the gate (the controller sends the host deadline)
    control: bool = False  # read control lines (gate answer, stop) on stdin
    collect: bool = True  # send logs, alerts and cron journals home at the end
    # The first control line on stdin carries this run's secrets (deploy's ping URL), so that no
    # secret is ever on the runner's command line, which `ps` shows to every user of the host.
    secrets_on_stdin: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobFields:
        return _build(cls, data, "")

    def to_dict(self) -> Dict[str, Any]:
        return _fields(self)


@records.record(frozen=True)
class DeployFields:
    """What ``invoke deploy`` installs on the host."""

    remove: bool = False  # deploy --remove
    schedules: List[Dict[str, Any]] = field(default_factory=lambda: _copy(DEFAULT_SCHEDULES))
    runner_source: str = ""  # the script to install as guardian-runner.py; "": the deploying runner's own
    cron_config: HostSettings = field(default_factory=HostSettings)  # config.json: the runner's settings, nothing more
    logrotate_patterns: List[str] = field(default_factory=lambda: ["guardian*.log"])
    scheduler: str = "cron"  # what runs the schedules: "cron" (the crontab block) or "systemd-timer"
    fix_permissions: bool = False  # deploy --fix-permissions: make what root trusts root's (shown by --dry-run)
    drift_check: bool = False  # deploy --check: a dry run whose outcome says "drifted" when anything differs
    # Written to <install dir>/secrets.json (mode 0600) for cron's runs: the ping URL. Never on the
    # command line: the controller sends them on stdin (see JobFields.secrets_on_stdin, split_secrets).
    secrets: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeployFields:
        return _build(cls, data, "")

    def to_dict(self) -> Dict[str, Any]:
        return _fields(self)


_PARTS: Tuple[Tuple[str, Type[Any]], ...] = (("settings", HostSettings), ("job", JobFields), ("deploy", DeployFields))


@records.record(frozen=True)
class RunnerConfig:
    """Everything the on-host runner is started with. On the wire it is one flat JSON object."""

    settings: HostSettings = field(default_factory=HostSettings)
    job: JobFields = field(default_factory=JobFields)
    deploy: Optional[DeployFields] = None  # only for action "deploy"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunnerConfig:
        """Split a flat config into its parts; a key no part declares is a :class:`RunnerConfigError`."""
        if not isinstance(data, Mapping):
            raise RunnerConfigError(f"the runner config must be a JSON object, got {type(data).__name__}")
        parts: Dict[str, Dict[str, Any]] = {name: {} for name, _ in _PARTS}
        owner = {f.name: name for name, part in _PARTS for f in records.fields(part)}
        for key, value in data.items():
            if key not in owner:
                raise RunnerConfigError(f"unknown runner config key {key!r}; known keys: {', '.join(sorted(owner))}")
            parts[owner[key]][key] = value
        job = JobFields.from_dict(parts["job"])
        deploy = DeployFields.from_dict(parts["deploy"]) if parts["deploy"] or job.action == "deploy" else None
        return cls(HostSettings.from_dict(parts["settings"]), job, deploy)

    def to_dict(self) -> Dict[str, Any]:
        flat = {**self.settings.to_dict(), **self.job.to_dict()}
        if self.deploy is not None:
            flat.update(self.deploy.to_dict())
        return flat

    def with_settings(self, **changes: Any) -> RunnerConfig:
        return records.replace(self, settings=records.replace(self.settings, **changes))

    def with_job(self, **changes: Any) -> RunnerConfig:
        return records.replace(self, job=records.replace(self.job, **changes))

    def split_secrets(self) -> Tuple[RunnerConfig, Dict[str, str]]:
        """This config without its secrets (safe for a command line), and the secrets, which the
        controller sends as the first control line; the runner puts them back (:meth:`with_secrets`)."""
        if self.deploy is None or not self.deploy.secrets:
            return self, {}
        public = records.replace(self, deploy=records.replace(self.deploy, secrets={}))
        return public.with_job(secrets_on_stdin=True), dict(self.deploy.secrets)

    def with_secrets(self, secrets: Mapping[str, Any]) -> RunnerConfig:
        """The config with the secrets that came on stdin (validated like the rest)."""
        if self.deploy is None:
            return self
        values = _convert("secrets", dict(secrets), Dict[str, str])
        unknown = sorted(set(values) - set(SECRET_KEYS))
        if unknown:
            raise RunnerConfigError(f"unknown secret {unknown[0]!r}; known secrets: {', '.join(SECRET_KEYS)}")
        return records.replace(self, deploy=records.replace(self.deploy, secrets=values))


def inventory_settings() -> Tuple[str, ...]:
    """The names of the HostSettings that come from a host's inventory settings."""
    return tuple(f.name for f in records.fields(HostSettings) if f.metadata.get(_INVENTORY))


def runner_defaults() -> Dict[str, Any]:
    """Each inventory setting the runner reads with its default (fresh copies)."""
    defaults = HostSettings()
    return {name: copy.deepcopy(getattr(defaults, name)) for name in inventory_settings()}


# -- reading plain data into the types ---------------------------------------------------------

_HINTS: Dict[type, Dict[str, Any]] = {}


def _hints(cls: type) -> Dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _build(cls: Type[T], data: Mapping[str, Any], prefix: str) -> T:
    if not isinstance(data, Mapping):
        raise RunnerConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    names = [f.name for f in records.fields(cls)]
    values = {}
    for key, value in data.items():
        if key not in hints:
            raise RunnerConfigError(
                f"unknown key {prefix + str(key)!r} in {cls.__name__}; known keys: {', '.join(names)}"
            )
        values[key] = _convert(f"{prefix}{key}", value, hints[key])
    return cls(**values)


def _convert(key: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the field's type (and copied); a mismatch is a RunnerConfigError."""
    origin = getattr(hint, "__origin__", None)
    args: Tuple[Any, ...] = getattr(hint, "__args__", ())
    if hint is Any:
        return copy.deepcopy(value)
    if origin is Union:  # Optional[X]
        if value is None:
            return None
        return _convert(key, value, next(a for a in args if a is not type(None)))
    if records.is_record(hint):
        return _build(hint, value, f"{key}.")
    if origin is list:
        if not isinstance(value, list):
            raise RunnerConfigError(f"runner config {key}: expected a list, got {value!r}")
        return [_convert(f"{key}[{i}]", item, args[0]) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise RunnerConfigError(f"runner config {key}: expected a mapping with string keys, got {value!r}")
        return {k: _convert(f"{key}.{k}", v, args[1]) for k, v in value.items()}
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(hint)
    if ok is None:
        raise RunnerConfigError(f"runner config {key}: no reader for type {hint!r}")  # a field with a new type
    if not ok:
        raise RunnerConfigError(f"runner config {key}: expected {hint.__name__}, got {value!r}")
    return float(value) if hint is float else value


def _fields(obj: Any) -> Dict[str, Any]:
    return {f.name: _plain(getattr(obj, f.name)) for f in records.fields(obj)}


def _plain(obj: Any) -> Any:
    """A record as plain JSON data (nested records too), sharing nothing with ``obj``."""
    if records.is_record(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in records.fields(obj)}
    return copy.deepcopy(obj)
