"""The commands behind the tasks: premarket (and recover), report. Tasks only parse flags.

Each function takes plain options, prints through a Rich console and returns the exit code.
"""

from __future__ import annotations

import getpass
import json
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from .agent.outcomes import OK_OUTCOMES
from .config import DEFAULT_INVENTORY, DEFAULT_REPORTS, GuardianConfig
from .errors import GuardianError, InventoryError, ReportError
from .execution.fleet import DEFAULT_FORKS, run_fleet
from .execution.hostrun import JobOptions
from .execution.survey import BlastGuard, batches_for
from .execution.transport import ConnectOptions
from .inventory import HostSpec, Inventory, load_inventory
from .inventory.settings import SECRET_SETTINGS
from .inventory.sshconfig import load_ssh_config, ssh_config_values
from .reporting.alerts import alert_messages, send_webhook
from .reporting.history import history_table, load_history, write_history_html
from .reporting.html import write_run_html
from .reporting.render import ProgressView, host_view, inventory_view, output_console, run_view, to_text
from .reporting.report import LastRun, ReportStore, RunReport, new_run_id, recall_last_run, remember_last_run
from .rules import load_rules, rules_data


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
    # act even on a common-cause incident (blast-radius guard) and inside quiet windows
    force: bool = False
    force_unsafe: bool = False  # recover: restart even where safe_to_restart says no (confirmed)
    only: Sequence[str] = ()  # recover: "locks" and/or signatures (uw, sip, or full names)
    json_output: bool = False
    remove: bool = False  # deploy --remove
    drift_check: bool = False  # deploy --check
    fix_permissions: bool = False  # deploy --fix-permissions
    serial: str | None = None  # rolling: "2" or "25%"
    max_fail_percent: float | None = None
    blast_percent: float = 50.0
    blast_min_hosts: int = 4
    reset_breaker: bool = False
    yes: bool = False  # confirmed for protected groups
    webhook: str | None = None
    hold_seconds: float = 0.0
    hold_reason: str = ""
    last_run_file: Path | None = None  # record the run here for `invoke report` (the CLI: cwd)
    report_keep: int = 0  # runs the report folder keeps (guardian.yaml's report_keep); 0: all


ONLY_ALIASES = {"uw": "uw_socket", "sip": "alpaca_sip_delay", "alpaca": "alpaca_sip_delay"}
LAST_FAILED = "@last-failed"


def select_hosts(request: FleetRequest) -> tuple[Inventory, list[HostSpec]]:
    overrides = {k: v for k, v in request.overrides.items() if v is not None}
    inventory = load_inventory(list(request.inventory), overrides=overrides)
    pattern = request.hosts
    if LAST_FAILED in pattern:
        failed = ReportStore(request.reports).last_failed()
        if not failed:
            raise GuardianError(f"{LAST_FAILED}: the last run recorded no failed or unreachable host")
        pattern = pattern.replace(LAST_FAILED, ",".join(failed))
    hosts = inventory.select(pattern)
    if not hosts:
        raise InventoryError(f"--hosts {request.hosts!r} selects no host after exclusions")
    return inventory, hosts


def resolve_only(only: Sequence[str], signature_names: Sequence[str]) -> tuple[str, ...]:
    """``--only locks,uw`` -> ("locks", "uw_socket"); unknown names are an error listing choices."""
    resolved = []
    for item in only:
        name = ONLY_ALIASES.get(item, item)
        if name != "locks" and name not in signature_names:
            choices = ["locks", *ONLY_ALIASES, *signature_names]
            raise GuardianError(f"--only {item!r}: expected a comma list of {', '.join(choices)}")
        resolved.append(name)
    return tuple(resolved)


def confirm_protected(inventory: Inventory, hosts: Sequence[HostSpec], request: FleetRequest, command: str) -> None:
    protected = sorted({g for h in hosts for g in h.groups if g in inventory.protected_groups})
    if (not protected and not any(h.settings.get("protected") for h in hosts)) or request.yes or request.dry_run:
        return
    question = (
        f"{command} will act on {len(hosts)} host(s) in protected group(s) {', '.join(protected) or '(host)'}. "
        "Continue? [y/N] "
    )
    if not sys.stdin.isatty():
        raise GuardianError(f"{question.split(' Continue')[0]}; not confirmed: re-run with --yes")
    if input(question).strip().lower() not in ("y", "yes"):
        raise GuardianError("not confirmed; nothing was done")


def confirm_unsafe(hosts: Sequence[HostSpec], request: FleetRequest, command: str) -> None:
    """``--force-unsafe`` restarts services whose own safe_to_restart says no: asked, like a
    protected group, unless ``--yes`` (a dry run only shows what it would do)."""
    if not request.force_unsafe or request.yes or request.dry_run:
        return
    guarded = sorted(
        {name for h in hosts for name, spec in (h.get("services") or {}).items() if spec.get("safe_to_restart")}
    )
    question = (
        f"{command} --force-unsafe will restart {', '.join(guarded) or 'services'} on up to {len(hosts)} host(s) "
        "even where safe_to_restart says no (e.g. orders in flight). Continue? [y/N] "
    )
    if not sys.stdin.isatty():
        raise GuardianError(f"{question.split(' Continue')[0]}; not confirmed: re-run with --yes")
    if input(question).strip().lower() not in ("y", "yes"):
        raise GuardianError("not confirmed; nothing was done")


def run_job(request: FleetRequest, *, command: str, console: Console, action: str = "run") -> RunReport:
    """Check, heal, verify and collect on every selected host; returns the saved report."""
    if request.forks < 1:
        raise GuardianError("--forks must be at least 1")
    inventory, hosts = select_hosts(request)
    signatures = load_rules(list(request.rules))
    only = resolve_only(request.only, [s.name for s in signatures])
    try:
        batches = batches_for([h.name for h in hosts], request.serial)
    except ValueError as exc:
        raise GuardianError(str(exc)) from None
    if command == "recover":
        confirm_protected(inventory, hosts, request, command)
    confirm_unsafe(hosts, request, command)
    job = JobOptions(
        run_id=new_run_id(),
        command=command,
        dry_run=request.dry_run or request.drift_check,
        force=command == "recover",
        override_windows=request.force or request.force_unsafe,
        override_unsafe=request.force_unsafe,
        only=only,
        signatures=rules_data(signatures),
        check=request.check,
        action=action,
        remove=request.remove,
        drift_check=request.drift_check,
        fix_permissions=request.fix_permissions,
        reset_breaker=request.reset_breaker,
        hold_seconds=request.hold_seconds,
        hold_reason=request.hold_reason,
        hold_by=f"{getpass.getuser()}@{socket.gethostname()}",
    )
    store = ReportStore(request.reports)
    progress = ProgressView(console, [h.name for h in hosts])
    options = {
        "hosts": request.hosts,
        "dry_run": request.dry_run or request.drift_check,
        "forks": request.forks,
        "check": request.check,
        "force": request.force,
        "force_unsafe": request.force_unsafe,
        "only": list(request.only),
        "inventory": [str(p) for p in request.inventory],
        "rules": [str(p) for p in request.rules],
        "overrides": {k: v for k, v in request.overrides.items() if v is not None},
        "remove": request.remove,
        "drift_check": request.drift_check,
        "fix_permissions": request.fix_permissions,
        "serial": request.serial,
        "max_fail_percent": request.max_fail_percent,
        "blast_radius_percent": request.blast_percent,
        "reset_breaker": request.reset_breaker,
        "webhook": bool(request.webhook),
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
            blast=BlastGuard(request.blast_percent, request.blast_min_hosts, request.force)
            if action == "run"
            else None,
            batches=batches,
            max_fail_percent=request.max_fail_percent,
            notify=progress.notice,
        )
    if action != "status":  # `@last-failed` names the hosts a run failed on, for a retry
        store.save_last_failed([h.host for h in report.hosts if h.outcome not in OK_OUTCOMES])
    if request.last_run_file is not None:
        try:
            remember_last_run(request.last_run_file, request.reports, report)
        except ReportError as exc:
            console.print(Text(f"warning: `invoke report` will not find this run by default: {exc}", style="yellow"))
    pruned = store.prune(request.report_keep, protect=(report.run_id,))
    if pruned:
        console.print(Text(f"pruned {len(pruned)} old run(s) from {store.root} (report_keep {request.report_keep})"))
    try:
        write_run_html(store, report)
        write_history_html(store)
    except ReportError as exc:
        console.print(f"[yellow]warning: HTML report not written: {exc}[/]")
    if request.webhook and not request.dry_run:
        messages = alert_messages(report)
        problems = send_webhook(request.webhook, messages) if messages else []
        if messages:
            report.options["alerts_sent"] = len(messages) - len(problems)
        if problems:
            report.options["alert_problems"] = problems
        store.save(report)
    return report


def premarket(
    request: FleetRequest, *, command: str = "premarket", console: Console | None = None, action: str = "run"
) -> int:
    """Run the job and print the recap (or JSON). Returns the documented exit code."""
    console = console or output_console()
    quiet = Console(quiet=True) if request.json_output else console
    report = run_job(request, command=command, console=quiet, action=action)
    store = ReportStore(request.reports)
    if request.json_output:
        console.print_json(json.dumps(report.to_dict(), default=str))
    else:
        console.print(run_view(report, str(store.run_dir(report.run_id))))
    return int(report.exit_code or 0)


def recover(request: FleetRequest, *, console: Console | None = None) -> int:
    """Run the recovery sequence on every host whatever its check says (rolling, guarded)."""
    return premarket(request, command="recover", console=console)


def hold(request: FleetRequest, *, console: Console | None = None) -> int:
    """Put a maintenance hold on each host: every runner skips it until the hold expires."""
    if request.hold_seconds <= 0:
        raise GuardianError("--for must be a positive duration, e.g. 30m or 2h")
    return premarket(request, command="hold", console=console, action="hold")


def release(request: FleetRequest, *, console: Console | None = None) -> int:
    """Lift the maintenance hold on each host."""
    return premarket(request, command="release", console=console, action="release")


def deploy(request: FleetRequest, *, console: Console | None = None) -> int:
    """Install the runner, its config, logrotate rule, permissions and crontab block on each host."""
    return premarket(request, command="deploy", console=console, action="deploy")


def collect(request: FleetRequest, *, console: Console | None = None) -> int:
    """Bring each host's logs, alert files and cron-run journals home; run no check."""
    return premarket(request, command="collect", console=console, action="collect")


def status(request: FleetRequest, *, console: Console | None = None) -> int:
    """Per host: last cron run, next due, missed runs, drift, breaker and hold; nothing changed."""
    return premarket(request, command="status", console=console, action="status")


def show_inventory(request: FleetRequest, *, console: Console | None = None) -> int:
    """Print the hosts a pattern selects with every effective setting and where it came from."""
    console = console or output_console()
    inventory, hosts = select_hosts(request)
    ssh_config = load_ssh_config(request.ssh_config)
    for host in hosts:
        from_ssh_config = ssh_config_values(host, ssh_config, path=request.ssh_config)
        rows: list[tuple[str, str, str]] = []
        for key in sorted({*host.settings, "address"}):
            value, source = host.settings.get(key, host.address), host.sources.get(key, "host name")
            value, source = from_ssh_config.get(key, (value, source))
            if key in SECRET_SETTINGS and value:
                value = "(set; not shown: it is a secret)"
            rows.append((key, json.dumps(value, default=str) if not isinstance(value, str) else value, source))
        console.print(inventory_view(host.name, host.groups, inventory.is_protected(host), rows))
    return 0


@dataclass(frozen=True)
class ReportsChoice:
    """The reports folder ``invoke report`` reads, why that one, and the run it shows by default."""

    root: Path
    why: str  # "--reports", the guardian.yaml path, "default", or the last-run pointer
    run_id: str | None = None  # the run the last command from this directory wrote
    note: str = ""  # said before the report: e.g. the last run's folder is gone


def choose_reports(flag: Path | None, *, config: GuardianConfig, last: LastRun | None) -> ReportsChoice:
    """``--reports`` if given; else the folder (and run) the last fleet command from this
    directory wrote, if that folder still exists; else guardian.yaml's ``reports``; else
    ``reports/``."""
    if flag is not None:
        return ReportsChoice(flag, "--reports")
    note = ""
    if last is not None:
        if last.reports.is_dir():
            return ReportsChoice(last.reports, "the last run started from this directory", last.run_id)
        note = f"the last run started from this directory ({last.run_id}) wrote to {last.reports}, which is gone"
    if config.reports is not None:
        return ReportsChoice(config.reports, str(config.path), note=note)
    return ReportsChoice(DEFAULT_REPORTS, "default", note=note)


def shown_run_line(report: RunReport, choice: ReportsChoice, *, asked: bool) -> str:
    """The line printed before every shown run: which run, from which folder, and why that one."""
    when = f"started {report.started_at or '?'}"
    if report.finished_at:
        when += f", finished {report.finished_at}"
    if report.interrupted:
        when += ", interrupted"
    elif not report.complete:
        when += ", incomplete"
    if asked:
        how = "the run asked for with --run"
    elif choice.run_id == report.run_id:
        how = "the last run started from this directory"
    else:
        how = "the latest complete run there"
    where = "" if choice.why in (how, "--reports") else f"; folder from {choice.why}"
    return f"showing run {report.run_id} ({report.command}, {when}) from {choice.root}: {how}{where}"


def show_report(
    reports: Path | None,
    *,
    run_id: str | None = None,
    host: str | None = None,
    history: bool = False,
    json_output: bool = False,
    console: Console | None = None,
    config: GuardianConfig | None = None,
    last_run_file: Path | None = None,
    prune: bool = False,
) -> int:
    """Print a stored run, one host's detail, or the fleet's history, always saying which run
    (and folder) it is: the latest by default, or the one the last command here wrote.

    Args:
        reports: ``--reports``; None lets :func:`choose_reports` pick the folder.
        last_run_file: the pointer the fleet commands write (the CLI: in the current directory);
            None: not consulted.
    """
    console = console or output_console()
    info = output_console(stderr=True) if json_output else console  # keep stdout pure JSON
    last = recall_last_run(last_run_file) if last_run_file is not None else None
    choice = choose_reports(reports, config=config or GuardianConfig(), last=last)
    store = ReportStore(choice.root)
    if choice.note:
        info.print(Text(f"note: {choice.note}", style="yellow"))
    if prune:
        keep = (config or GuardianConfig()).report_keep
        removed = store.prune(keep)
        info.print(Text(f"pruned {len(removed)} run(s) from {store.root}, keeping the newest {keep} (report_keep)"))
        for run in removed:
            info.print(Text(f"  removed {run}"))
        return 0
    if history:
        info.print(Text(f"history of the runs in {store.root} (folder from {choice.why})"))
        console.print(history_table(load_history(store, host=host)))
        console.print(Text(f"fleet timeline: {store.root / 'index.html'}", style="dim"))
        return 0
    try:
        report = store.load(run_id or choice.run_id)
    except ReportError:
        if run_id is not None or choice.run_id is None:
            raise
        info.print(Text(f"note: run {choice.run_id} is no longer in {store.root}; showing the latest", style="yellow"))
        report = store.load(None)
    info.print(Text(shown_run_line(report, choice, asked=run_id is not None)), highlight=False)
    if json_output:
        data = report.to_dict()
        if host is not None:
            data["hosts"] = [h for h in data["hosts"] if h["host"] == host]
        console.print_json(json.dumps(data, default=str))
        return 0
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
