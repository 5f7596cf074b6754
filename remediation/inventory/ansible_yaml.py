"""Ansible's YAML inventory syntax: nested groups of ``hosts``, ``vars`` and ``children``.

all:
  vars: {ansible_user: deploy}
  children:
    web:
      hosts:
        web[01:02]: {ansible_port: 2222}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .ansible_model import ALL, GROUP_KEYS, AnsibleModel, AnsibleVar, expand_host_pattern
from .yamlfile import KeyPath, LocatedYaml, dotted

_NATIVE_KEYS = {"vars", "groups"}


def looks_like_ansible_yaml(data: Any) -> bool:
    """Whether a YAML document (as ``yaml.safe_load`` reads it) is an Ansible inventory: a
    mapping with ``all`` or a group-shaped value, and no native top-level key."""
    if not isinstance(data, dict) or not data or set(data) & _NATIVE_KEYS:
        return False
    shaped = any(v is None or (isinstance(v, dict) and set(v) & set(GROUP_KEYS)) for v in data.values())
    return ALL in data or shaped


def parse_yaml(doc: LocatedYaml) -> AnsibleModel:
    """Read an Ansible YAML inventory; raises InventoryError naming line and key."""
    model = AnsibleModel(doc.path)
    if not isinstance(doc.data, dict):
        raise model.error("an Ansible YAML inventory must be a mapping of groups (usually 'all:')", 1)
    for name, body in doc.data.items():
        _yaml_group(doc, model, name, body, (name,), None)
    return model


def yaml_vars(
    doc: LocatedYaml, here: KeyPath, values: Mapping[str, Any], path: Path | None = None
) -> dict[str, AnsibleVar]:
    """The variables of one ``vars:`` block (``path``: a group_vars/host_vars file, not the inventory)."""
    result: dict[str, AnsibleVar] = {}
    for name, value in values.items():
        where = (*here, name)
        sub: dict[KeyPath, int] = {}
        _collect_lines(doc, where, (), value, sub)
        result[name] = AnsibleVar(value, doc.line_of(where) or 1, dotted(where), sub, path)
    return result


def _yaml_group(doc: LocatedYaml, model: AnsibleModel, name: str, body: Any, here: KeyPath, parent: str | None) -> None:
    line = doc.line_of(here) or 1
    group = model.group(name, line, dotted(here))
    if parent not in (None, ALL) and name != ALL:
        model.groups[str(parent)].children.setdefault(name, (line, dotted(here)))
    if body is None:
        return
    if not isinstance(body, dict):
        raise doc.error(here, f"a group must be a mapping with {', '.join(GROUP_KEYS)}")
    for key, value in body.items():
        where = (*here, key)
        if key not in GROUP_KEYS:
            raise doc.error(where, f"unknown group key; expected one of {', '.join(GROUP_KEYS)}")
        if value is None:
            continue
        if not isinstance(value, dict):
            example = " (hosts: {web01: null})" if key == "hosts" else ""
            raise doc.error(where, f"expected a mapping{example}, got {type(value).__name__}")
        if key == "vars":
            group.vars.update(yaml_vars(doc, where, value))
        elif key == "children":
            for child, child_body in value.items():
                _yaml_group(doc, model, child, child_body, (*where, child), name)
        else:
            for pattern, host_body in value.items():
                entry = (*where, pattern)
                entry_line = doc.line_of(entry) or line
                if host_body is not None and not isinstance(host_body, dict):
                    raise doc.error(entry, f"host variables must be a mapping, got {type(host_body).__name__}")
                hosts, port = expand_host_pattern(model, pattern, entry_line, dotted(entry))
                variables: dict[str, AnsibleVar] = {}
                if port is not None:
                    variables["ansible_port"] = AnsibleVar(port, entry_line, dotted(entry))
                variables.update(yaml_vars(doc, entry, host_body or {}))
                for host in hosts:
                    model.add_host(name, host, entry_line, dotted(entry), variables)


def _collect_lines(doc: LocatedYaml, base: KeyPath, sub: KeyPath, value: Any, out: dict[KeyPath, int]) -> None:
    items: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for part, inner in items:
        line = doc.lines.get((*base, *sub, part))
        if line is not None:
            out[(*sub, part)] = line
        _collect_lines(doc, base, (*sub, part), inner, out)
