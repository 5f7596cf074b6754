"""``invoke lab.*``: bring the lab fleet of namespaced droplets up and down, and inject faults.

Imports only the lab's plain data (:mod:`.model`, :mod:`.faults`) at ``invoke --list``; the Lab
itself is loaded when a task runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.exceptions import Exit
from invoke.tasks import task
from rich.console import Console
from rich.table import Table

from .faults import FAULTS
from .model import DEFAULT_INVENTORY, DEFAULT_WORKDIR


def _lab(workdir: str | None) -> Any:
    from . import Lab

    return Lab(Path(workdir) if workdir else DEFAULT_WORKDIR, inventory_path=DEFAULT_INVENTORY)


@task(
    help={
        "hosts": "how many droplets (default 4)",
        "manager": "one manager for every host: supervisor, process-compose, signal or systemd",
        "managers": "comma list of managers, cycled over the hosts (a mixed fleet)",
        "behind": "comma list NAME=GATEWAY (e.g. h04=h01): NAME gets no route from here, only via GATEWAY",
        "workdir": "lab folder",
    }
)
def up(
    c: Any, hosts: int = 4, manager: str = "", managers: str = "", behind: str = "", workdir: str | None = None
) -> None:
    """Bring up N lab droplets (own netns, PID ns, mounts, sshd, cron, process manager)."""
    lab = _lab(workdir)
    if manager and managers:
        raise Exit("lab.up: give --manager or --managers, not both", code=3)
    cycle = [m for m in (managers or manager).split(",") if m]
    private: dict[str, str] = {}
    for item in filter(None, (i.strip() for i in behind.split(","))):
        name, sep, gateway = item.partition("=")
        if not sep or not name or not gateway:
            raise Exit(f"--behind: expected NAME=GATEWAY, got {item!r}", code=3)
        private[name] = gateway
    try:
        chosen = [cycle[i % len(cycle)] for i in range(int(hosts))] if cycle else None
        started = lab.up(int(hosts), managers=chosen, behind=private)
    except ValueError as exc:
        raise Exit(f"lab.up: {exc}", code=3) from None
    console = Console()
    console.print(f"lab up: {len(started)} hosts; inventory {lab.inventory_path}")
    _print_status(lab, console)


@task(help={"workdir": "lab folder"})
def down(c: Any, workdir: str | None = None) -> None:
    """End every process the lab started (by recorded PID) and remove its namespaces and links."""
    _lab(workdir).down()
    Console().print("lab down")


@task(help={"workdir": "lab folder"})
def status(c: Any, workdir: str | None = None) -> None:
    """Show each lab host: namespace, sshd, process manager and daemon PIDs."""
    _print_status(_lab(workdir), Console())


@task(
    help={
        "host": "lab host name, e.g. h01",
        "kind": "one of " + ", ".join(FAULTS),
        "workdir": "lab folder",
    }
)
def fault(c: Any, host: str, kind: str, workdir: str | None = None) -> None:
    """Inject a fault into one lab host (reset clears them)."""
    if kind not in FAULTS:
        raise Exit(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULTS)}", code=3)
    Console().print(_lab(workdir).fault(host, kind))


def _print_status(lab: Any, console: Console) -> None:
    rows = lab.status()
    if not rows:
        console.print("no lab hosts (run `invoke lab.up`)")
        return
    table = Table(title=f"lab fleet ({lab.inventory_path})")
    for column in ("host", "address", "manager", "sshd", "manager up", "uw-daemon", "trading-bot", "ok"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.name,
            f"{row.address} (via {row.via})" if row.via else row.address,
            row.manager,
            "up" if row.sshd else "DOWN",
            "yes" if row.manager_running else "NO",
            str(row.daemons.get("uw-daemon") or "-"),
            str(row.daemons.get("trading-bot") or "-"),
            "[green]ok[/]" if row.ok else "[red]no[/]",
        )
    console.print(table)


lab = Collection("lab", up, down, status, fault)
