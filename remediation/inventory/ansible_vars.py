"""Ansible variables in Guardian's terms: group_vars/host_vars, translation and precedence.

An Ansible file is converted into Guardian's native shape (``vars`` and ``groups``, see
:mod:`remediation.inventory.native`) with the line of every native key pointing at the Ansible file, so
the native validation names the Ansible file, its line and the Ansible variable.

Variables Guardian understands:

* ``ansible_host`` (``ansible_ssh_host``) -> ``address``; ``ansible_port`` (``ansible_ssh_port``,
  or ``host:port``) -> ``port``; ``ansible_user`` (``ansible_ssh_user``) -> ``user``;
  ``ansible_ssh_private_key_file`` (``ansible_private_key_file``) -> ``key``;
* ``ansible_connection``: ``local`` -> ``transport: local``, ``ssh``/``paramiko``/``smart`` ->
  ``transport: ssh``, anything else is ignored;
* ``ansible_python_interpreter`` -> ``python`` (``auto*`` and templates are ignored,
  ``/usr/bin/env python3`` becomes ``python3``);
* ``guardian_<setting>`` -> ``<setting>``; in one vars block it wins over the ``ansible_*`` ones.

Every other variable is ignored. ``all`` vars become file vars; hosts only in ``all`` (or before
any INI section) form the group ``ungrouped``. Sibling groups sharing a host apply their vars in
Ansible's order (``ansible_group_priority``, then name); otherwise groups keep file order.

``group_vars/`` and ``host_vars/`` next to the inventory file are read as Ansible reads them:
``group_vars/<group>`` with no extension or ``.yml``/``.yaml``/``.json``, or a directory of such
files (sorted, recursively; hidden files skipped). A value there overrides the same group's (or
host's) value written in the inventory file; ``group_vars/all`` overrides the inventory's ``all``
vars. One difference from Ansible: there ``group_vars/all`` also beats *other* groups' inline vars;
here a group's inline vars still apply after ``all``, as they would have without the directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InventoryError
from .ansible_model import ALL, UNGROUPED, AnsibleDocument, AnsibleGroup, AnsibleModel, AnsibleVar
from .ansible_yaml import yaml_vars
from .yamlfile import KeyPath, load_located

GUARDIAN_PREFIX = "guardian_"
PRIORITY_VAR = "ansible_group_priority"

#: Ansible variable -> (Guardian setting, rank); in one vars block the highest rank wins.
_ANSIBLE_VARS: dict[str, tuple[str, int]] = {
    "ansible_ssh_host": ("address", 1),
    "ansible_host": ("address", 2),
    "ansible_ssh_port": ("port", 1),
    "ansible_port": ("port", 2),
    "ansible_ssh_user": ("user", 1),
    "ansible_user": ("user", 2),
    "ansible_private_key_file": ("key", 1),
    "ansible_ssh_private_key_file": ("key", 2),
    "ansible_connection": ("transport", 2),
    "ansible_python_interpreter": ("python", 2),
}
_GUARDIAN_RANK = 3
_SSH_CONNECTIONS = {"ssh", "paramiko", "smart"}
_BOOL_SETTINGS = {"protected"}
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}

_VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")


def read_vars_dirs(model: AnsibleModel, base: Path) -> None:
    """Merge ``group_vars/<group>`` and ``host_vars/<host>`` next to the inventory (Ansible's
    layout) over the vars written in the inventory for the same group or host."""
    for name, group in model.groups.items():
        for file in _vars_files(base / "group_vars", name):
            group.vars.update(_file_vars(file))
    for host, host_vars in model.host_vars.items():
        for file in _vars_files(base / "host_vars", host):
            host_vars.update(_file_vars(file))


def _vars_files(folder: Path, name: str) -> list[Path]:
    if not folder.is_dir():
        return []
    found: list[Path] = []
    for ext in _VARS_EXTENSIONS:
        candidate = folder / f"{name}{ext}"
        if candidate.is_file():
            found.append(candidate)
        elif ext == "" and candidate.is_dir():
            found += sorted(
                p
                for p in candidate.rglob("*")
                if p.is_file()
                and p.suffix in _VARS_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(candidate).parts)
            )
    return found


def _file_vars(path: Path) -> dict[str, AnsibleVar]:
    doc = load_located(path)
    if doc.data is None:
        return {}
    if not isinstance(doc.data, dict):
        raise InventoryError(
            f"a vars file must be a mapping of variables, got {type(doc.data).__name__}", path=str(path), line=1
        )
    return yaml_vars(doc, (), doc.data, path)


def _translate(model: AnsibleModel, block: Mapping[str, AnsibleVar]) -> dict[str, AnsibleVar]:
    """Guardian settings of one vars block; unrelated variables are dropped."""
    chosen: dict[str, tuple[int, AnsibleVar]] = {}
    for name, var in block.items():
        mapped = _map_var(model, name, var)
        if mapped is None:
            continue
        setting, rank, value = mapped
        previous = chosen.get(setting)
        if previous is None or rank >= previous[0]:
            chosen[setting] = (rank, AnsibleVar(value, var.line, var.key, var.sub_lines, var.path))
    return {setting: var for setting, (_, var) in chosen.items()}


def _map_var(model: AnsibleModel, name: str, var: AnsibleVar) -> tuple[str, int, Any] | None:
    value = var.value
    templated = isinstance(value, str) and "{{" in value
    if name.startswith(GUARDIAN_PREFIX):
        setting = name[len(GUARDIAN_PREFIX) :]
        if not setting:
            raise model.var_error("expected guardian_<setting>", var)
        if templated:
            raise model.var_error("Ansible templates are not evaluated by Guardian; write the value", var)
        if setting in _BOOL_SETTINGS and isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            value = value.lower() in _TRUE
        return setting, _GUARDIAN_RANK, value
    if name not in _ANSIBLE_VARS:
        return None
    setting, rank = _ANSIBLE_VARS[name]
    if setting == "transport":
        if value == "local":
            return setting, rank, "local"
        return (setting, rank, "ssh") if value in _SSH_CONNECTIONS else None
    if setting == "python":
        if not isinstance(value, str) or templated or value.startswith("auto"):
            return None
        words = value.split()
        if len(words) == 2 and words[0].endswith("/env"):
            value = words[1]
        return setting, rank, value
    if templated:
        raise model.var_error("Ansible templates are not evaluated by Guardian; write the value", var)
    if setting == "port" and isinstance(value, str) and value.isdigit():
        value = int(value)
    return setting, rank, value


def _group_priority(model: AnsibleModel, group: AnsibleGroup) -> int:
    var = group.vars.get(PRIORITY_VAR)
    if var is None:
        return 1
    try:
        return int(var.value)
    except (TypeError, ValueError):
        raise model.var_error(f"expected a whole number, got {var.value!r}", var) from None


def _members(name: str, model: AnsibleModel, seen: tuple[str, ...]) -> set[str]:
    if name in seen:
        raise RecursionError(name)
    group = model.groups.get(name)
    if group is None:
        return set()
    hosts = set(group.hosts)
    for child in group.children:
        hosts |= _members(child, model, (*seen, name))
    return hosts


def _depth(name: str, parents: Mapping[str, list[str]], seen: tuple[str, ...]) -> int:
    if name in seen:
        raise RecursionError(name)
    above = parents.get(name, [])
    return 0 if not above else 1 + max(_depth(p, parents, (*seen, name)) for p in above)


def _precedence_order(model: AnsibleModel, names: list[str]) -> list[str]:
    """``names`` in file order, except that siblings sharing a host follow Ansible's order.

    Guardian applies group vars by depth, then in document order; Ansible by depth, then
    ``ansible_group_priority``, then name. A cycle is left for the native loader to report.
    """
    parents: dict[str, list[str]] = {}
    for name in names:
        for child in model.groups[name].children:
            parents.setdefault(child, []).append(name)
    try:
        depth = {n: _depth(n, parents, ()) for n in names}
        members = {n: _members(n, model, ()) for n in names}
    except RecursionError:
        return names
    rank = {n: (_group_priority(model, model.groups[n]), n) for n in names}
    with_vars = [n for n in names if _translate(model, model.groups[n].vars)]
    before: dict[str, set[str]] = {n: set() for n in names}  # n -> groups that must come first
    for i, a in enumerate(with_vars):
        for b in with_vars[i + 1 :]:
            if depth[a] == depth[b] and members[a] & members[b]:
                first, second = (a, b) if rank[a] < rank[b] else (b, a)
                before[second].add(first)
    ordered: list[str] = []
    pending = list(names)
    while pending:
        ready = next(n for n in pending if not before[n] - set(ordered))
        ordered.append(ready)
        pending.remove(ready)
    return ordered


def _reconcile_ungrouped(model: AnsibleModel) -> None:
    """Hosts only in ``all`` (or ``ungrouped``) form ``ungrouped``, as Ansible does."""
    every = model.groups.get(ALL)
    ungrouped = model.groups.get(UNGROUPED)
    candidates: dict[str, tuple[int, str]] = {}
    if ungrouped is not None:
        candidates.update(ungrouped.hosts)
    if every is not None:
        for host, where in every.hosts.items():
            candidates.setdefault(host, where)
        every.hosts = {}
    grouped = {h for name, g in model.groups.items() if name not in (ALL, UNGROUPED) for h in g.hosts}
    kept = {h: where for h, where in candidates.items() if h not in grouped}
    if ungrouped is None and kept and every is not None:
        ungrouped = model.groups[UNGROUPED] = AnsibleGroup(every.order + 0.5, every.line, every.key)
    if ungrouped is not None:
        ungrouped.hosts = kept


def to_document(model: AnsibleModel) -> AnsibleDocument:
    lines: dict[KeyPath, int] = {}
    keys: dict[KeyPath, str] = {}
    paths: dict[KeyPath, Path] = {}
    data: dict[str, Any] = {}

    def emit(block: Mapping[str, AnsibleVar], here: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for setting, var in _translate(model, block).items():
            where = (*here, setting)
            out[setting] = var.value
            lines[where] = var.line
            keys[where] = var.key
            if var.path is not None:
                paths[where] = var.path
            for sub, line in var.sub_lines.items():
                lines[(*where, *sub)] = line
        return out

    _reconcile_ungrouped(model)
    every = model.groups.get(ALL)
    if every is not None:
        lines[("vars",)] = every.line
        file_vars = emit(every.vars, ("vars",))
        if file_vars:
            data["vars"] = file_vars
    names = sorted((n for n in model.groups if n != ALL), key=lambda n: model.groups[n].order)
    groups: dict[str, Any] = {}
    placed: set[str] = set()
    for name in _precedence_order(model, names):
        group = model.groups[name]
        here: KeyPath = ("groups", name)
        lines[here], keys[here] = group.line, group.key
        body: dict[str, Any] = {}
        group_vars = emit(group.vars, (*here, "vars"))
        if group_vars:
            body["vars"] = group_vars
        if group.children:
            body["children"] = list(group.children)
            for index, (line, key) in enumerate(group.children.values()):
                lines[(*here, "children", index)], keys[(*here, "children", index)] = line, key
        hosts: dict[str, Any] = {}
        for host, (line, key) in group.hosts.items():
            entry = (*here, "hosts", host)
            lines[entry], keys[entry] = line, key
            hosts[host] = None if host in placed else (emit(model.host_vars.get(host, {}), entry) or None)
            placed.add(host)
        if hosts:
            body["hosts"] = hosts
        groups[name] = body
    if groups:
        data["groups"] = groups
    return AnsibleDocument(model.path, data, lines, keys, paths)
