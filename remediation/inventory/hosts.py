"""The inventory: YAML files of groups and hosts, resolved into one typed HostSpec per host.

Format (``inventory/*.yml``)::

    vars:                      # defaults for every host in this file
      user: root
      app_dir: ~/stock-bot
    groups:
      prod:
        protected: true        # asks for confirmation before fleet-wide recovery
        vars: {manager: supervisor}
        children: [prod-east]  # hosts of child groups belong to this group too
        hosts:
          h01: {address: 203.0.113.10}
          h02: {address: 203.0.113.11, manager: signal}

A host may appear in several groups; its settings layer defaults < file vars < group vars (in
the order groups are listed, parents before children) < host entries < command-line overrides.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HostSelectionError, InventoryError
from .ansible import load_inventory_document
from .settings import DEFAULTS, SettingError, merge_settings, validate_setting
from .yamlfile import KeyPath, LocatedYaml

LOCAL_HOST = "local"
#: The commented example shipped in the repository (not read: its name ends in ``.sample``).
EXAMPLE_INVENTORY = Path(__file__).resolve().parents[2] / "inventory" / "example.yml.sample"
INVENTORY_SUFFIXES = (".yml", ".yaml", ".ini")
_FILE_KEYS = {"vars", "groups"}
_GROUP_KEYS = {"vars", "hosts", "children", "protected"}
_HOST_ONLY_KEYS = {"address"}


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


def inventory_files(path: Path) -> list[Path]:
    """``path`` itself, or every ``*.yml``/``*.yaml``/``*.ini`` file in it, sorted."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in INVENTORY_SUFFIXES and p.is_file())
    if not path.exists():
        raise InventoryError(f"no such inventory file or directory. {how_to_start([str(path)])}", path=str(path))
    return [path]


@dataclass
class _Layers:
    """Settings as read from the files, before they are resolved per host."""

    file_vars: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # host -> its files' vars
    group_vars: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # group -> vars, file order
    host_vars: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # host -> its entries
    children: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[int, dict[str, str]] = field(default_factory=dict)  # id(vars dict) -> key -> where written
    child_refs: list[tuple[LocatedYaml, KeyPath, str]] = field(default_factory=list)


def load_inventory(paths: Sequence[Path], *, overrides: Mapping[str, Any] | None = None) -> Inventory:
    """Load and validate inventory files; raises InventoryError naming file, line and key.

    Groups may be spread over several files (one file may only add ``vars`` to a group another
    file lists hosts for); a group's vars apply to all its hosts, parents before children.
    """
    inventory = Inventory(paths=[str(p) for p in paths])
    layers = _Layers()
    for path in [p for given in paths for p in inventory_files(given)]:
        doc = load_inventory_document(path)  # Guardian's own format, or an Ansible INI/YAML inventory
        inventory.files.append(str(path))
        _load_file(doc, inventory, layers)
    for doc, key_path, child in layers.child_refs:
        if child not in inventory.groups:
            raise doc.error(key_path, f"unknown child group {child!r}")
    members: dict[str, list[str]] = {}
    for group in inventory.groups:
        members[group] = _expand(group, layers.children, inventory.groups, ())
    inventory.groups = members
    depth = {g: _depth(g, layers.children) for g in inventory.groups}
    overrides = dict(overrides or {})
    for key, value in overrides.items():
        try:
            overrides[key] = validate_setting(key, value)
        except SettingError as exc:
            raise InventoryError(str(exc), key=f"--{key.replace('_', '-')}") from None
    for name, entries in layers.host_vars.items():
        groups = sorted((g for g in inventory.groups if name in inventory.groups[g]), key=lambda g: depth[g])
        settings: dict[str, Any] = dict(DEFAULTS)
        sources = dict.fromkeys(DEFAULTS, "default")
        ordered = [*layers.file_vars[name], *(v for g in groups for v in layers.group_vars.get(g, [])), *entries]
        for values in [*ordered, overrides]:
            settings = merge_settings(settings, values)
            sources.update(layers.labels.get(id(values)) or dict.fromkeys(values, "command line"))
        inventory.hosts[name] = HostSpec(name, settings, tuple(groups), inventory.files[-1], sources)
    if LOCAL_HOST not in inventory.hosts:
        settings = merge_settings(merge_settings(DEFAULTS, {"transport": "local"}), overrides)
        sources = {
            **dict.fromkeys(DEFAULTS, "default"),
            "transport": "built-in",
            **dict.fromkeys(overrides, "command line"),
        }
        inventory.hosts[LOCAL_HOST] = HostSpec(LOCAL_HOST, settings, (), "built-in", sources)
    return inventory


def _load_file(doc: LocatedYaml, inventory: Inventory, layers: _Layers) -> None:
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise doc.error((), "an inventory file must be a mapping with 'vars' and 'groups'")
    for key in data:
        if key == "hosts":
            raise doc.error(
                (key,),
                "unknown top-level key: hosts are listed under a group (groups: {NAME: {hosts: {...}}}); "
                "a host may be in several groups, and --hosts all selects every host",
            )
        if key not in _FILE_KEYS:
            raise doc.error((key,), f"unknown top-level key; expected {' or '.join(sorted(_FILE_KEYS))}")
    file_vars = _settings(doc, ("vars",), data.get("vars"), host_entry=False)
    layers.labels[id(file_vars)] = _labels(doc, ("vars",), file_vars, "file vars")
    groups = _mapping(doc, ("groups",), data.get("groups"))
    for group, body in groups.items():
        _check_name(doc, ("groups", group), group)
        body = _mapping(doc, ("groups", group), body)
        for key in body:
            if key not in _GROUP_KEYS:
                raise doc.error(
                    ("groups", group, key),
                    f"unknown group key; expected one of {', '.join(sorted(_GROUP_KEYS))}",
                )
        if body.get("protected", False):
            if not isinstance(body["protected"], bool):
                raise doc.error(("groups", group, "protected"), "expected true or false")
            inventory.protected_groups.add(group)
        group_vars = _settings(doc, ("groups", group, "vars"), body.get("vars"), host_entry=False)
        layers.labels[id(group_vars)] = _labels(doc, ("groups", group, "vars"), group_vars, f"group {group}")
        layers.group_vars.setdefault(group, []).append(group_vars)
        children = body.get("children") or []
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise doc.error(("groups", group, "children"), "expected a list of group names")
        for index, child in enumerate(children):
            layers.child_refs.append((doc, ("groups", group, "children", index), child))
            layers.children.setdefault(group, []).append(child)
        group_members = inventory.groups.setdefault(group, [])
        hosts = _mapping(doc, ("groups", group, "hosts"), body.get("hosts"))
        for host, host_vars in hosts.items():
            _check_name(doc, ("groups", group, "hosts", host), host)
            entry = _settings(doc, ("groups", group, "hosts", host), host_vars, host_entry=True)
            layers.labels[id(entry)] = {
                key: f"host entry ({doc.path_of(where)}:{doc.line_of(where)})"
                for key in entry
                for where in [("groups", group, "hosts", host, key)]
            }
            if host not in layers.host_vars:
                layers.host_vars[host] = []
                layers.file_vars[host] = []
            if file_vars not in layers.file_vars[host]:
                layers.file_vars[host].append(file_vars)
            layers.host_vars[host].append(entry)
            if host not in group_members:
                group_members.append(host)


def _labels(doc: LocatedYaml, key_path: KeyPath, values: Mapping[str, Any], what: str) -> dict[str, str]:
    """Where each value was written, for ``invoke inventory``: ``group web (path)``."""
    return {key: f"{what} ({doc.path_of((*key_path, key))})" for key in values}


def _depth(group: str, children_of: Mapping[str, list[str]]) -> int:
    """How many ancestors a group has (parents' vars apply before their children's)."""
    parents = [g for g, kids in children_of.items() if group in kids]
    return 0 if not parents else 1 + max(_depth(p, children_of) for p in parents)


def _expand(
    group: str, children_of: Mapping[str, list[str]], groups: Mapping[str, list[str]], seen: tuple[str, ...]
) -> list[str]:
    if group in seen:
        raise InventoryError(f"group {group!r} is its own descendant: {' -> '.join((*seen, group))}")
    hosts = list(groups.get(group, []))
    for child in children_of.get(group, []):
        hosts += [h for h in _expand(child, children_of, groups, (*seen, group)) if h not in hosts]
    return hosts


def _settings(doc: LocatedYaml, key_path: KeyPath, value: Any, *, host_entry: bool) -> dict[str, Any]:
    """A mapping of settings, each validated where it is written (so errors name its line)."""
    result: dict[str, Any] = {}
    for key, raw in _mapping(doc, key_path, value).items():
        if key in _HOST_ONLY_KEYS and not host_entry:
            raise doc.error((*key_path, key), "only a host entry may set this")
        try:
            result[key] = validate_setting(key, raw)
        except SettingError as exc:
            sub = tuple(int(p) if p.isdigit() else p for p in exc.key.split(".")) if exc.key else ()
            raise doc.error((*key_path, key, *sub), str(exc)) from None
    return result


def _mapping(doc: LocatedYaml, key_path: KeyPath, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error(key_path, f"expected a mapping, got {type(value).__name__}")
    return value


def _check_name(doc: LocatedYaml, key_path: KeyPath, name: str) -> None:
    if not name or not all(ch.isalnum() or ch in "._-" for ch in name) or name.startswith(("-", ".")):
        raise doc.error(key_path, f"{name!r} is not a valid name (letters, digits, '.', '_', '-')")


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
