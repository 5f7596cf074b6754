"""What an inventory is once loaded: one typed HostSpec per host, the groups, and host patterns.

Every file format (Guardian's own YAML, Ansible INI or YAML) ends up here, so nothing past the
loader knows which format a host was written in.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HostSelectionError
from .settings import DEFAULTS

LOCAL_HOST = "local"
#: The commented example shipped in the repository (not read: its name ends in ``.sample``).
EXAMPLE_INVENTORY = Path(__file__).resolve().parents[2] / "inventory" / "example.yml.sample"
INVENTORY_SUFFIXES = (".yml", ".yaml", ".ini")


@dataclass(frozen=True)
class HostSpec:
    """One host with its effective settings and where it was defined."""

    name: str
    settings: Mapping[str, Any]
    groups: tuple[str, ...] = ()
    source: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)  # setting -> where its value came from

    @property
    def address(self) -> str:
        return str(self.settings.get("address") or self.name)

    @property
    def is_local(self) -> bool:
        return self.settings.get("transport") == "local"

    def get(self, key: str) -> Any:
        return self.settings.get(key, DEFAULTS.get(key))


@dataclass
class Inventory:
    """All hosts and groups from one or more inventory files."""

    hosts: dict[str, HostSpec] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    protected_groups: set[str] = field(default_factory=set)
    files: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # the files and directories it was read from

    def select(self, pattern: str) -> list[HostSpec]:
        """Hosts matching ``pattern``; see :func:`select_names`. With no inventory file at all,
        anything but ``local`` is an error saying where Guardian looked and how to start."""
        try:
            names = select_names(self, pattern)
        except HostSelectionError:
            if self.files:
                raise
            names = []
        if not names and not self.files:
            looked = ", ".join(p.rstrip("/") + "/" if Path(p).is_dir() else p for p in self.paths) or "nowhere"
            raise HostSelectionError(
                f"--hosts {pattern!r}: no inventory file in {looked} (Guardian reads the "
                f"{', '.join('*' + s for s in INVENTORY_SUFFIXES)} files there). {how_to_start(self.paths)}"
            )
        return [self.hosts[name] for name in names]

    def is_protected(self, host: HostSpec) -> bool:
        return bool(host.settings.get("protected")) or any(g in self.protected_groups for g in host.groups)


def how_to_start(paths: Sequence[str]) -> str:
    """What to do when there is no inventory yet: copy the example, or bring up the lab."""
    given = paths[0] if paths else "inventory"
    target = given if Path(given).suffix in INVENTORY_SUFFIXES else os.path.join(given, "prod.yml")
    example = _shown(EXAMPLE_INVENTORY) if EXAMPLE_INVENTORY.is_file() else "the example in README.md (Inventory)"
    return (
        f"To start, copy {example} to {target} and edit it, or (as root) run `invoke lab.up` for a demo "
        f"fleet on this machine: it writes {_shown(EXAMPLE_INVENTORY.parent / 'lab.yml')}, then use --hosts lab. "
        "--inventory PATH reads another file or directory."
    )


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def select_names(inventory: Inventory, pattern: str) -> list[str]:
    """Resolve a host pattern to host names, in inventory order.

    ``a,b`` and ``a:b`` are unions; ``!x`` excludes; ``&x`` intersects; each term is a group or
    host name or a glob over both (``h0*``). ``all`` is every inventory host (not ``local``).
    A term that matches nothing is an error listing what exists.
    """
    terms = [t.strip() for chunk in pattern.split(",") for t in chunk.split(":")]
    terms = [t for t in terms if t]
    if not terms:
        raise HostSelectionError("no hosts given; use --hosts with a group, host name or glob")
    selected: list[str] = []
    intersect: list[set[str]] = []
    exclude: set[str] = set()
    for term in terms:
        op = term[0] if term[0] in "!&" else ""
        names = _resolve_term(inventory, term[len(op) :])
        if op == "!":
            exclude.update(names)
        elif op == "&":
            intersect.append(set(names))
        else:
            selected += [n for n in names if n not in selected]
    if not selected and (exclude or intersect):
        selected = [n for n in inventory.hosts if n != LOCAL_HOST]
    for group in intersect:
        selected = [n for n in selected if n in group]
    return [n for n in selected if n not in exclude]


def _resolve_term(inventory: Inventory, term: str) -> list[str]:
    if term == "all":
        return [n for n in inventory.hosts if n != LOCAL_HOST]
    if term in inventory.groups:
        return list(inventory.groups[term])
    if term in inventory.hosts:
        return [term]
    if any(ch in term for ch in "*?["):
        names: list[str] = []
        for group, members in inventory.groups.items():
            if fnmatch.fnmatchcase(group, term):
                names += [m for m in members if m not in names]
        names += [h for h in inventory.hosts if fnmatch.fnmatchcase(h, term) and h not in names]
        if names:
            return names
    raise HostSelectionError(
        f"no group or host matches {term!r}. Groups: {', '.join(sorted(inventory.groups)) or 'none'}; "
        f"hosts: {', '.join(sorted(inventory.hosts))}"
    )
