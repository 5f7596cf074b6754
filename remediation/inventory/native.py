"""Guardian's own inventory format, and the layering that turns its groups into HostSpecs.

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
Ansible inventories are converted into this shape first (:mod:`.ansible_vars`), so the same
validation and layering apply to them, with errors naming the Ansible file and variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InventoryError
from .model import LOCAL_HOST, HostSpec, Inventory
from .settings import DEFAULTS, SettingError, merge_settings, validate_setting
from .yamlfile import KeyPath, LocatedYaml

_FILE_KEYS = {"vars", "groups"}
_GROUP_KEYS = {"vars", "hosts", "children", "protected"}
_HOST_ONLY_KEYS = {"address"}


@dataclass
class Layers:
    """Settings as read from the files, before they are resolved per host."""

    file_vars: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # host -> its files' vars
    group_vars: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # group -> vars, file order
    host_vars: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # host -> its entries
    children: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[int, dict[str, str]] = field(default_factory=dict)  # id(vars dict) -> key -> where written
    child_refs: list[tuple[LocatedYaml, KeyPath, str]] = field(default_factory=list)


def read_document(doc: LocatedYaml, inventory: Inventory, layers: Layers) -> None:
    """Validate one native document and add its groups and settings to ``inventory``/``layers``."""
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


def resolve(inventory: Inventory, layers: Layers, overrides: Mapping[str, Any]) -> None:
    """Expand child groups and give every host its layered settings (plus the built-in ``local``).

    Raises:
        InventoryError: an unknown child group, a group cycle, or an invalid command-line value.
    """
    for doc, key_path, child in layers.child_refs:
        if child not in inventory.groups:
            raise doc.error(key_path, f"unknown child group {child!r}")
    members: dict[str, list[str]] = {}
    for group in inventory.groups:
        try:
            members[group] = _expand(group, layers.children, inventory.groups, ())
        except _GroupCycle as cycle:
            # Name the file and line of a children entry on the cycle (it may span files).
            doc, key_path, _ = next(ref for ref in layers.child_refs if ref[2] in cycle.groups)
            raise doc.error(key_path, str(cycle)) from None
    inventory.groups = members
    depth = {g: _depth(g, layers.children) for g in inventory.groups}
    flags = dict(overrides)
    for key, value in flags.items():
        try:
            flags[key] = validate_setting(key, value)
        except SettingError as exc:
            raise InventoryError(str(exc), key=f"--{key.replace('_', '-')}") from None
    for name, entries in layers.host_vars.items():
        groups = sorted((g for g in inventory.groups if name in inventory.groups[g]), key=lambda g: depth[g])
        settings: dict[str, Any] = dict(DEFAULTS)
        sources = dict.fromkeys(DEFAULTS, "default")
        ordered = [*layers.file_vars[name], *(v for g in groups for v in layers.group_vars.get(g, [])), *entries]
        for values in [*ordered, flags]:
            settings = merge_settings(settings, values)
            sources.update(layers.labels.get(id(values)) or dict.fromkeys(values, "command line"))
        inventory.hosts[name] = HostSpec(name, settings, tuple(groups), inventory.files[-1], sources)
    if LOCAL_HOST not in inventory.hosts:
        settings = merge_settings(merge_settings(DEFAULTS, {"transport": "local"}), flags)
        sources = {
            **dict.fromkeys(DEFAULTS, "default"),
            "transport": "built-in",
            **dict.fromkeys(flags, "command line"),
        }
        inventory.hosts[LOCAL_HOST] = HostSpec(LOCAL_HOST, settings, (), "built-in", sources)


def _labels(doc: LocatedYaml, key_path: KeyPath, values: Mapping[str, Any], what: str) -> dict[str, str]:
    """Where each value was written, for ``invoke inventory``: ``group web (path)``."""
    return {key: f"{what} ({doc.path_of((*key_path, key))})" for key in values}


def _depth(group: str, children_of: Mapping[str, list[str]]) -> int:
    """How many ancestors a group has (parents' vars apply before their children's)."""
    parents = [g for g, kids in children_of.items() if group in kids]
    return 0 if not parents else 1 + max(_depth(p, children_of) for p in parents)


class _GroupCycle(Exception):
    def __init__(self, groups: tuple[str, ...]) -> None:
        super().__init__(f"group {groups[-1]!r} is its own descendant: {' -> '.join(groups)}")
        self.groups = groups


def _expand(
    group: str, children_of: Mapping[str, list[str]], groups: Mapping[str, list[str]], seen: tuple[str, ...]
) -> list[str]:
    if group in seen:
        raise _GroupCycle((*seen, group))
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
