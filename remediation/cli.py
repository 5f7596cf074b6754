"""Guardian's tasks: the Invoke collection behind ``invoke ...`` (via tasks.py) and ``guardian ...``.

Tasks only parse flags, call the package and turn errors into clear messages and exit codes:
0 every host ok, 2 a host still degraded/unhealthy/unexpected/busy/failed, 4 a host unreachable
or its key rejected, 3 nothing ran because the command or inventory is wrong, 130 interrupted.
Flags left out take their value from ``guardian.yaml`` in the current directory, if it sets
one (see :mod:`remediation.config`), else the built-in default.
"""

from __future__ import annotations

import functools
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from invoke.collection import Collection
from invoke.exceptions import Exit
from invoke.program import Program
from invoke.tasks import task

from . import jobs
from .agent import VERSION
from .agent.outcomes import EXIT_INTERRUPTED, EXIT_USAGE
from .config import CONFIG_FILE, load_config
from .errors import GuardianError
from .execution.bundle import bundle_digest
from .reporting.report import LAST_RUN_FILE

F = TypeVar("F", bound=Callable[..., Any])
USAGE_ERROR = EXIT_USAGE
WEBHOOK_ENV = "GUARDIAN_WEBHOOK_URL"

HELP = {
    "hosts": "group, host, glob or list: 'prod', 'prod,!h03', 'lab:h0*', 'local', '@last-failed'",
    "inventory": f"inventory file or directory (repeatable; default: {CONFIG_FILE}'s, else inventory/)",
    "rules": f"extra failure-signature rules file layered on the defaults (repeatable; default: {CONFIG_FILE}'s)",
    "dry_run": "run the check and show each host's plan with reasons; change nothing",
    "forks": "hosts worked on at once (default 32)",
    "check": "health-check script to run instead of pre_market_health_check.py",
    "settle": "seconds to wait for stabilisation before re-checking (default 5)",
    "check_timeout": "seconds before a hanging health check is killed (default 60)",
    "host_deadline": "seconds one host may take in all (default 300)",
    "accept_new_host_keys": "trust and record SSH host keys not in known_hosts (changed keys: still refused)",
    "ssh_config": f"ssh_config file for Host aliases ('' for none; default: {CONFIG_FILE}'s, else ~/.ssh/config)",
    "reports": f"report folder (default: {CONFIG_FILE}'s, else reports/)",
    "json": "print the machine-readable report on stdout instead of the recap",
    "force": "act even when one signature hits more than --blast-radius % of hosts (a common-cause incident), "
    "and restart inside the services' quiet windows",
    "blast_radius": "percent of selected hosts one signature may hit before it is an incident (default 50)",
    "webhook": f"Slack-compatible webhook for alerts (default ${WEBHOOK_ENV}); never logged",
}
_CONNECT = ("hosts", "inventory", "forks", "accept_new_host_keys", "ssh_config", "reports", "json")


def _guard(func: F) -> F:
    """Turn Guardian errors into a one-line message and exit code 3 (Ctrl-C: 130), never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            code = func(*args, **kwargs)
        except GuardianError as exc:
            raise Exit(f"guardian: {exc}", code=USAGE_ERROR) from None
        except KeyboardInterrupt:
            # Outside a fleet run (loading the inventory, writing the HTML): nothing was started,
            # but the exit code is still the documented one. Invoke would make it 1.
            raise Exit("guardian: interrupted", code=EXIT_INTERRUPTED) from None
        if code:
            raise Exit(code=code)
        return None

    return wrapper  # type: ignore[return-value]


def _num(value: Any) -> float | None:
    """Invoke passes untyped optional flags as strings; convert and complain clearly."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise GuardianError(f"expected a number, got {value!r}") from None


def parse_duration(text: str) -> float:
    """'90s', '30m', '2h', '1d' (or plain seconds) -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match:
        raise GuardianError(f"--for {text!r}: expected a duration like 30m, 2h or 1d")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _flags(values: dict[str, Any]) -> dict[str, Any]:
    """A task's own flags (its locals), ready for :func:`_request`."""
    flags = {k: v for k, v in values.items() if k != "c"}
    if "forks" in flags:
        flags["forks"] = int(flags["forks"])
    if "only" in flags:
        flags["only"] = [item.strip() for item in str(flags["only"]).split(",") if item.strip()]
    if "for_" in flags:
        flags["hold_seconds"] = parse_duration(flags.pop("for_"))
    if "reason" in flags:
        flags["hold_reason"] = flags.pop("reason")
    return flags


def _request(
    hosts: str,
    *,
    inventory: list[str] | None = None,
    rules: list[str] | None = None,
    reports: str | None = None,
    ssh_config: str | None = None,
    json: bool = False,
    settle: Any = None,
    check_timeout: Any = None,
    host_deadline: Any = None,
    webhook: str | None = None,
    blast_radius: Any = None,
    max_fail_percent: Any = None,
    **options: Any,
) -> jobs.FleetRequest:
    config = load_config()
    request = jobs.FleetRequest(
        hosts=hosts,
        inventory=config.inventory_paths(inventory),
        rules=config.rules_paths(rules),
        reports=config.reports_dir(reports),
        ssh_config=config.ssh_config_file(ssh_config),
        overrides={
            "settle_seconds": _num(settle),
            "check_timeout": _num(check_timeout),
            "host_deadline": _num(host_deadline),
        },
        json_output=json,
        webhook=webhook or os.environ.get(WEBHOOK_ENV) or None,
        max_fail_percent=_num(max_fail_percent),
        last_run_file=LAST_RUN_FILE,
        report_keep=config.report_keep,
        **options,
    )
    if blast_radius is not None:
        request.blast_percent = float(_num(blast_radius) or 0)
    return request


@task(help=HELP, iterable=["inventory", "rules"], auto_shortflags=False)
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
    ssh_config: str | None = None,
    reports: str | None = None,
    json: bool = False,
    force: bool = False,
    blast_radius: float | None = None,
    webhook: str | None = None,
) -> int:
    """Check, heal, verify and collect on every selected host; one central report."""
    return jobs.premarket(_request(**_flags(locals())))


@task(
    help={
        **{k: v for k, v in HELP.items() if k != "check"},
        "only": "comma list of steps: locks, uw, sip (or signature names); default: all",
        "serial": "recover in batches of N hosts or P% (e.g. 2 or 25%), verifying each batch first",
        "max_fail_percent": "start no new batch once more than P% of hosts failed or were unreachable",
        "yes": "do not ask for confirmation on protected groups",
        "reset_breaker": "forget each host's restart history (close open breakers) first",
        "force_unsafe": "restart even where a service's safe_to_restart says no (implies --force; asks first "
        "unless --yes)",
    },
    iterable=["inventory", "rules"],
    auto_shortflags=False,
)
@_guard
def recover(
    c: Any,
    hosts: str,
    only: str = "",
    serial: str | None = None,
    max_fail_percent: float | None = None,
    yes: bool = False,
    reset_breaker: bool = False,
    inventory: list[str] | None = None,
    rules: list[str] | None = None,
    dry_run: bool = False,
    forks: int = 32,
    settle: float | None = None,
    check_timeout: float | None = None,
    host_deadline: float | None = None,
    accept_new_host_keys: bool = False,
    ssh_config: str | None = None,
    reports: str | None = None,
    json: bool = False,
    force: bool = False,
    force_unsafe: bool = False,
    blast_radius: float | None = None,
    webhook: str | None = None,
) -> int:
    """Run the recovery sequence whatever the check says: rolling, budgeted, blast-radius guarded."""
    return jobs.recover(_request(**_flags(locals())))


@task(
    help={key: HELP[key] for key in _CONNECT}
    | {
        "dry_run": "show per host what would change (crontab diff, files, modes); change nothing",
        "remove": "take Guardian's crontab block and installed files out again",
        "fix_permissions": "make what root runs or reads root's (chmod go-w; files chowned to root); "
        "with --dry-run, show what it would change",
        "check": "drift check: per host, does everything match what deploy would write now? "
        "Changes nothing; exit 2 when a host drifted",
    },
    iterable=["inventory"],
    auto_shortflags=False,
)
@_guard
def deploy(
    c: Any,
    hosts: str,
    inventory: list[str] | None = None,
    dry_run: bool = False,
    remove: bool = False,
    fix_permissions: bool = False,
    check: bool = False,
    forks: int = 32,
    accept_new_host_keys: bool = False,
    ssh_config: str | None = None,
    reports: str | None = None,
    json: bool = False,
) -> int:
    """Install the on-host runner, crontab block, permissions and log rotation, so hosts heal themselves."""
    flags = _flags(locals())
    flags["drift_check"] = flags.pop("check")  # --check here is the drift check, not a check script
    return jobs.deploy(_request(**flags))


@task(
    help={key: HELP[key] for key in _CONNECT} | {"webhook": HELP["webhook"]},
    iterable=["inventory"],
    auto_shortflags=False,
)
@_guard
def status(
    c: Any,
    hosts: str,
    inventory: list[str] | None = None,
    forks: int = 32,
    accept_new_host_keys: bool = False,
    ssh_config: str | None = None,
    reports: str | None = None,
    json: bool = False,
    webhook: str | None = None,
) -> int:
    """Is each host still healing itself? Last cron run, next due, drift, breaker, hold; no check run."""
    return jobs.status(_request(**_flags(locals())))


@task(help={key: HELP[key] for key in _CONNECT}, iterable=["inventory"], auto_shortflags=False)
@_guard
def collect(
    c: Any,
    hosts: str,
    inventory: list[str] | None = None,
    forks: int = 32,
    accept_new_host_keys: bool = False,
    ssh_config: str | None = None,
    reports: str | None = None,
    json: bool = False,
) -> int:
    """Bring home each host's logs, alert files and cron-run journals without running any check."""
    return jobs.collect(_request(**_flags(locals())))


@task(
    help={key: HELP[key] for key in _CONNECT}
    | {
        "for_": "how long: 30m, 2h, 1d (the hold expires on its own)",
        "reason": "why (shown in every report while the hold lasts)",
    },
    iterable=["inventory"],
    auto_shortflags=False,
)
@_guard
def hold(
    c: Any,
    hosts: str,
    for_: str = "",
    reason: str = "",
    inventory: list[str] | None = None,
    forks: int = 32,
    accept_new_host_keys: bool = False,
    ssh_config: str | None = None,
    reports: str | None = None,
    json: bool = False,
) -> int:
    """Put hosts on maintenance hold: premarket, recover and cron skip them until it expires."""
    if not reason.strip():
        raise GuardianError("--reason is required: say why the hosts are held")
    return jobs.hold(_request(**_flags(locals())))


@task(help={key: HELP[key] for key in _CONNECT}, iterable=["inventory"], auto_shortflags=False)
@_guard
def release(
    c: Any,
    hosts: str,
    inventory: list[str] | None = None,
    forks: int = 32,
    accept_new_host_keys: bool = False,
    ssh_config: str | None = None,
    reports: str | None = None,
    json: bool = False,
) -> int:
    """Lift a maintenance hold now."""
    return jobs.release(_request(**_flags(locals())))


@task(
    help={key: HELP[key] for key in ("hosts", "inventory", "ssh_config")}, iterable=["inventory"], auto_shortflags=False
)
@_guard
def inventory(c: Any, hosts: str, inventory: list[str] | None = None, ssh_config: str | None = None) -> int:
    """List the hosts a pattern selects, each setting's effective value and where it came from."""
    return jobs.show_inventory(_request(hosts, inventory=inventory, ssh_config=ssh_config))


@task(
    help={
        "run": "run id (default: the latest run)",
        "host": "show one host in detail (with --history: that host's runs)",
        "history": "the fleet's outcomes across runs, cron runs included; flapping hosts flagged",
        "json": "print the run's report.json (docs/report.schema.json) instead of the recap",
        "reports": f"report folder (default: the last run's from this directory, else {CONFIG_FILE}'s, else reports/)",
        "prune": f"delete the oldest runs beyond {CONFIG_FILE}'s report_keep (default 200) now",
    }
)
@_guard
def report(
    c: Any,
    run: str | None = None,
    host: str | None = None,
    history: bool = False,
    reports: str | None = None,
    json: bool = False,
    prune: bool = False,
) -> int:
    """Show a run's recap (the last one started here), one host's timeline and files, or the history."""
    return jobs.show_report(
        Path(reports) if reports is not None else None,
        run_id=run,
        host=host,
        history=history,
        json_output=json,
        config=load_config(),
        last_run_file=LAST_RUN_FILE,
        prune=prune,
    )


def build_namespace() -> Collection:
    from .lab import tasks as labtasks

    namespace = Collection(premarket, recover, deploy, collect, status, hold, release, report, inventory)
    namespace.add_collection(labtasks.lab)
    return namespace


namespace = build_namespace()


def program() -> Program:
    """The ``guardian`` program: the same tasks as ``invoke``. ``--version`` names the agent
    bundle's digest too, as the on-host runner's ``--version`` does, so the two can be compared."""
    return Program(
        namespace=namespace, version=f"{VERSION} (bundle {bundle_digest()})", name="Guardian", binary="guardian"
    )


def main() -> None:
    """Entry point of the ``guardian`` console script."""
    try:
        program().run()
    except KeyboardInterrupt:
        # Between the task and the exit (Invoke printing the task's Exit): the documented code,
        # never Python's death by SIGINT.
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        # The command is over and its report written. A Ctrl-C from here on (while the process
        # exits: threads joined, the interpreter finalized, which puts SIGINT back to its default
        # and would end the process by the signal) must not change the exit code it chose.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
