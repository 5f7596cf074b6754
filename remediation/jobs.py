"""The commands behind the tasks: premarket (and recover), report. Tasks only parse flags.

Each function takes plain options, prints through a Rich console and returns the exit code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from .agent.plan import ONLY_CHOICES
from .errors import GuardianError, InventoryError
from .fleet import DEFAULT_FORKS, run_fleet
from .hostrun import JobOptions
from .inventory import HostSpec, Inventory, load_inventory
from .render import ProgressView, host_view, run_view, to_text
from .report import ReportStore, RunReport, new_run_id
from .rules import load_rules, rules_data
from .transport import ConnectOptions

DEFAULT_INVENTORY = Path("inventory")
DEFAULT_REPORTS = Path("reports")


@dataclass
class FleetRequest:
    """Options shared by premarket and recover, as given on the command line."""

    hosts: str
    inventory: Sequence[Path] = (DEFAULT_INVENTORY,)
    rules: Sequence[Path] = ()
    reports: Path = DEFAULT_REPORTS
    dry_run: bool = False
    forks: int = DEFAULT_FORKS
    check: str | None = None
    accept_new_host_keys: bool = False
    ssh_config: str | None = "~/.ssh/config"
    overrides: dict[str, Any] = field(default_factory=dict)
    force: bool = False
    only: Sequence[str] = ()
    json_output: bool = False
    remove: bool = False  # deploy --remove


def select_hosts(request: FleetRequest) -> tuple[Inventory, list[HostSpec]]:
    overrides = {k: v for k, v in request.overrides.items() if v is not None}
    inventory = load_inventory(list(request.inventory), overrides=overrides)
    hosts = inventory.select(request.hosts)
    if not hosts:
        raise InventoryError(f"--hosts {request.hosts!r} selects no host after exclusions")
    return inventory, hosts


def run_job(request: FleetRequest, *, command: str, console: Console, action: str = "run") -> RunReport:
    """Check, heal, verify and collect on every selected host; returns the saved report."""
    for item in request.only:
        if item not in ONLY_CHOICES:
            raise GuardianError(f"--only {item!r}: expected a comma list of {', '.join(ONLY_CHOICES)}")
    if request.forks < 1:
        raise GuardianError("--forks must be at least 1")
    inventory, hosts = select_hosts(request)
    signatures = load_rules(list(request.rules))
    job = JobOptions(
        run_id=new_run_id(),
        command=command,
        dry_run=request.dry_run,
        force=request.force,
        only=tuple(request.only),
        signatures=rules_data(signatures),
        check=request.check,
        action=action,
        remove=request.remove,
    )
    store = ReportStore(request.reports)
    progress = ProgressView(console, [h.name for h in hosts])
    options = {
        "hosts": request.hosts,
        "dry_run": request.dry_run,
        "forks": request.forks,
        "check": request.check,
        "force": request.force,
        "only": list(request.only),
        "inventory": [str(p) for p in request.inventory],
        "rules": [str(p) for p in request.rules],
        "overrides": {k: v for k, v in request.overrides.items() if v is not None},
        "remove": request.remove,
    }
    with progress.running():
        report = run_fleet(
            hosts,
            inventory,
            job,
            connect=ConnectOptions(request.accept_new_host_keys, request.ssh_config),
            store=store,
            forks=request.forks,
            options=options,
            progress=progress.update,
            summarize=lambda r: to_text(run_view(r, str(store.run_dir(r.run_id)))),
        )
    return report


def premarket(
    request: FleetRequest, *, command: str = "premarket", console: Console | None = None, action: str = "run"
) -> int:
    """Run the job and print the recap (or JSON). Returns the documented exit code."""
    console = console or Console()
    quiet = Console(quiet=True) if request.json_output else console
    report = run_job(request, command=command, console=quiet, action=action)
    store = ReportStore(request.reports)
    if request.json_output:
        console.print_json(json.dumps(report.to_dict(), default=str))
    else:
        console.print(run_view(report, str(store.run_dir(report.run_id))))
    return 130 if report.interrupted else int(report.exit_code or 0)


def deploy(request: FleetRequest, *, console: Console | None = None) -> int:
    """Install the runner, its config, logrotate rule, permissions and crontab block on each host."""
    return premarket(request, command="deploy", console=console, action="deploy")


def collect(request: FleetRequest, *, console: Console | None = None) -> int:
    """Bring each host's logs, alert files and cron-run journals home; run no check."""
    return premarket(request, command="collect", console=console, action="collect")


def show_report(
    reports: Path, *, run_id: str | None = None, host: str | None = None, console: Console | None = None
) -> int:
    """Print a stored run (latest by default), or one host's detail."""
    console = console or Console()
    store = ReportStore(reports)
    report = store.load(run_id)
    if host is None:
        console.print(run_view(report, str(store.run_dir(report.run_id))))
        return 0
    for item in report.hosts:
        if item.host == host:
            console.print(host_view(report, item))
            return 0
    raise GuardianError(
        f"host {host!r} is not in run {report.run_id}; hosts: {', '.join(h.host for h in report.hosts)}"
    )
