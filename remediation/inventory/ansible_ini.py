"""Ansible's INI inventory syntax: ``[group]``, ``[group:vars]``, ``[group:children]`` sections.

Host lines are ``PATTERN [key=value ...]`` (values read as Ansible's INI plugin reads them: a
Python literal if they are one, else the text); hosts before any section are ``ungrouped``.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path
from typing import Any

from .ansible_model import UNGROUPED, AnsibleModel, AnsibleVar, expand_host_pattern

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_SECTION_SHAPE = re.compile(r"^\[[^\]\s]+\]")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:[#;].*)?$")
_HOST_LINE = re.compile(r"^[A-Za-z0-9_\[][A-Za-z0-9_.\-\[\]:]*(?<!:)(?:\s+[^\s=]+=.*)?\s*$")


def looks_like_ini(path: Path, first_line: str) -> bool:
    """Whether a file named ``path`` whose first significant line is ``first_line`` is INI:
    an ``.ini``/``.cfg`` name, a ``[section]`` or a host line (which YAML could not start with)."""
    return bool(
        path.suffix.lower() in (".ini", ".cfg") or _SECTION_SHAPE.match(first_line) or _HOST_LINE.match(first_line)
    )


def parse_ini(path: Path, text: str) -> AnsibleModel:
    """Read ``text`` (the contents of ``path``); raises InventoryError naming line and section."""
    model = AnsibleModel(path)
    group, state = UNGROUPED, "hosts"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            match = _SECTION.match(line)
            if match is None:
                raise model.error(
                    "malformed section header; expected [group], [group:vars] or [group:children]", lineno, line
                )
            group, state = match.group(1), match.group(2) or "hosts"
            if state not in ("hosts", "vars", "children"):
                raise model.error(
                    f"unknown section type {state!r}; expected [{group}], [{group}:vars] or [{group}:children]",
                    lineno,
                    f"[{group}:{state}]",
                )
            model.group(group, lineno, f"[{group}]")
        elif state == "vars":
            name, sep, value = line.partition("=")
            name = name.strip()
            if not sep or not name or " " in name:
                raise model.error(f"expected key=value in [{group}:vars], got {line!r}", lineno, f"[{group}:vars]")
            model.groups[group].vars[name] = AnsibleVar(_ini_value(value.strip()), lineno, f"[{group}:vars] {name}")
        elif state == "children":
            match = _GROUP_NAME.match(line)
            if match is None:
                raise model.error(f"expected a group name, got {line!r}", lineno, f"[{group}:children]")
            model.groups[group].children.setdefault(match.group(1), (lineno, f"[{group}:children] {match.group(1)}"))
        else:
            _parse_host_line(model, group, line, lineno)
    return model


def _ini_value(text: str) -> Any:
    """A value as Ansible's INI plugin reads it: a Python literal if it is one, else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _parse_host_line(model: AnsibleModel, group: str, line: str, lineno: int) -> None:
    section = f"[{group}]"
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:
        raise model.error(f"cannot parse host line: {exc}", lineno, section) from None
    if not tokens:
        return
    hosts, port = expand_host_pattern(model, tokens[0], lineno, f"{section} {tokens[0]}")
    for host in hosts:
        prefix = f"{section} {host}"
        variables: dict[str, AnsibleVar] = {}
        if port is not None:
            variables["ansible_port"] = AnsibleVar(port, lineno, prefix)
        for token in tokens[1:]:
            name, sep, value = token.partition("=")
            if not sep or not name:
                raise model.error(f"expected key=value host variable, got {token!r}", lineno, prefix)
            variables[name] = AnsibleVar(_ini_value(value), lineno, f"{prefix} {name}")
        model.add_host(group, host, lineno, prefix, variables)
