"""Guardian's tasks: the Invoke collection behind ``invoke ...`` (via tasks.py) and ``guardian ...``.

Tasks only parse flags, call the package and turn errors into clear messages and exit codes:
0 all healthy/healed, 2 a host still degraded/unhealthy/unexpected, 4 a host unreachable,
3 nothing ran because the command or inventory is wrong, 130 interrupted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from invoke.collection import Collection
from invoke.exceptions import Exit
from invoke.program import Program
from invoke.tasks import task

from . import jobs
from .agent import VERSION
from .errors import GuardianError

F = TypeVar("F", bound=Callable[..., Any])
USAGE_ERROR = 3

_FLEET_HELP = {
    "hosts": "group, host, glob or list: 'prod', 'prod,!h03', 'lab:h0*', 'local'",
    "inventory": "inventory file or directory (repeatable; default: inventory/)",
    "rules": "extra failure-signature rules file layered on the defaults (repeatable)",
    "dry_run": "run the check and show each host's plan with reasons; change nothing",
    "forks": "hosts worked on at once (default 32)",
    "check": "health-check script to run instead of pre_market_health_check.py",
    "settle": "seconds to wait for stabilisation before re-checking (default 5)",
    "check_timeout": "seconds before a hanging health check is killed (default 60)",
    "host_deadline": "seconds one host may take in all (default 300)",
    "accept_new_host_keys": "trust and record SSH host keys not in known_hosts (changed keys: still refused)",
    "ssh_config": "ssh_config file whose Host aliases to honour (default ~/.ssh/config; '' for none)",
    "reports": "report folder (default reports/)",
    "json": "print the machine-readable report on stdout instead of the recap",
}


def _guard(func: F) -> F:
    """Turn Guardian errors into a one-line message and exit code 3, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            code = func(*args, **kwargs)
        except GuardianError as exc:
            raise Exit(f"guardian: {exc}", code=USAGE_ERROR) from None
        if code:
            raise Exit(code=code)
        return None

    return wrapper  # type: ignore[return-value]


def _request(
    hosts: str,
    inventory: list[str],
    rules: list[str],
    dry_run: bool,
    forks: int,
    check: str | None,
    settle: float | None,
    check_timeout: float | None,
    host_deadline: float | None,
    accept_new_host_keys: bool,
    ssh_config: str | None,
    reports: str,
    json: bool,
) -> jobs.FleetRequest:
    return jobs.FleetRequest(
        hosts=hosts,
        inventory=[Path(p) for p in inventory] or [jobs.DEFAULT_INVENTORY],
        rules=[Path(p) for p in rules],
        reports=Path(reports),
        dry_run=dry_run,
        forks=forks,
        check=check,
        accept_new_host_keys=accept_new_host_keys,
        ssh_config=ssh_config or None,
        overrides={
            "settle_seconds": settle,
            "check_timeout": check_timeout,
            "host_deadline": host_deadline,
        },
        json_output=json,
    )


@task(help=_FLEET_HELP, iterable=["inventory", "rules"])
@_guard
def premarket(
    c: Any,
    hosts: str,
    inventory: list[str] | None = None,
    rules: list[str] | None = None,
    dry_run: bool = False,
    forks: int = 32,
    check: str | None = None,
    settle: float | None = None,
    check_timeout: float | None = None,
    host_deadline: float | None = None,
    accept_new_host_keys: bool = False,
    ssh_config: str = "~/.ssh/config",
    reports: str = "reports",
    json: bool = False,
) -> int:
    """Check, heal, verify and collect on every selected host; one central report."""
    request = _request(
        hosts,
        inventory or [],
        rules or [],
        dry_run,
        forks,
        check,
        _num(settle),
        _num(check_timeout),
        _num(host_deadline),
        accept_new_host_keys,
        ssh_config,
        reports,
        json,
    )
    return jobs.premarket(request)


_DEPLOY_HELP = {
    key: _FLEET_HELP[key]
    for key in ("hosts", "inventory", "forks", "accept_new_host_keys", "ssh_config", "reports", "json")
}


@task(
    help={
        **_DEPLOY_HELP,
        "dry_run": "show per host what would change (crontab diff, files, modes); change nothing",
        "remove": "take Guardian's crontab block and installed files out again",
    },
    iterable=["inventory"],
)
@_guard
def deploy(
    c: Any,
    hosts: str,
    inventory: list[str] | None = None,
    dry_run: bool = False,
    remove: bool = False,
    forks: int = 32,
    accept_new_host_keys: bool = False,
    ssh_config: str = "~/.ssh/config",
    reports: str = "reports",
    json: bool = False,
) -> int:
    """Install the on-host runner, crontab block, permissions and log rotation, so hosts heal themselves."""
    request = _request(
        hosts,
        inventory or [],
        [],
        dry_run,
        forks,
        None,
        None,
        None,
        None,
        accept_new_host_keys,
        ssh_config,
        reports,
        json,
    )
    request.remove = remove
    return jobs.deploy(request)


@task(help=_DEPLOY_HELP, iterable=["inventory"])
@_guard
def collect(
    c: Any,
    hosts: str,
    inventory: list[str] | None = None,
    forks: int = 32,
    accept_new_host_keys: bool = False,
    ssh_config: str = "~/.ssh/config",
    reports: str = "reports",
    json: bool = False,
) -> int:
    """Bring home each host's logs, alert files and cron-run journals without running any check."""
    request = _request(
        hosts,
        inventory or [],
        [],
        False,
        forks,
        None,
        None,
        None,
        None,
        accept_new_host_keys,
        ssh_config,
        reports,
        json,
    )
    return jobs.collect(request)


@task(
    help={
        "run": "run id (default: the latest run)",
        "host": "show one host in detail",
        "reports": "report folder",
    }
)
@_guard
def report(c: Any, run: str | None = None, host: str | None = None, reports: str = "reports") -> int:
    """Show the latest run's recap, or one host's timeline, output tail and collected files."""
    return jobs.show_report(Path(reports), run_id=run, host=host)


def _num(value: Any) -> float | None:
    """Invoke passes untyped optional flags as strings; convert and complain clearly."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise GuardianError(f"expected a number of seconds, got {value!r}") from None


def build_namespace() -> Collection:
    from . import labtasks

    namespace = Collection(premarket, deploy, collect, report)
    namespace.add_collection(labtasks.lab)
    return namespace


namespace = build_namespace()


def main() -> None:
    """Entry point of the ``guardian`` console script: the same tasks as ``invoke``."""
    Program(namespace=namespace, version=VERSION, name="Guardian", binary="guardian").run()
