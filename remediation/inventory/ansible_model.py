"""An Ansible inventory as read (INI or YAML alike), before it is translated to Guardian's shape.

Both Ansible parsers (:mod:`.ansible_ini`, :mod:`.ansible_yaml`) fill an :class:`AnsibleModel`
that remembers the file, line and Ansible spelling of every group, host and variable;
:mod:`.ansible_vars` merges ``group_vars``/``host_vars`` into it and converts it into an
:class:`AnsibleDocument`, a native document whose errors still point at the Ansible files.
Host patterns (``web[01:03]``, ``host:port``) are shared by both syntaxes and expanded here.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InventoryError
from .yamlfile import KeyPath, LocatedYaml, dotted, nearest

ALL = "all"
UNGROUPED = "ungrouped"
MAX_RANGE_HOSTS = 10_000
#: The keys of a group in an Ansible YAML inventory.
GROUP_KEYS = ("hosts", "vars", "children")

_BALANCED = re.compile(r"(?:[^\[\]]|\[[^\[\]]*\])*")
_RANGE = re.compile(r"\[([^\]]*)\]")


class AnsibleDocument(LocatedYaml):
    """A converted Ansible inventory: native data; lines and key names of the Ansible file."""

    def __init__(
        self,
        path: Path,
        data: Any,
        lines: dict[KeyPath, int],
        keys: dict[KeyPath, str],
        paths: dict[KeyPath, Path] | None = None,
    ) -> None:
        super().__init__(path, data, lines)
        self.keys = keys
        self.paths = paths or {}

    def path_of(self, key_path: KeyPath) -> Path:
        """The file ``key_path`` was written in: the inventory, or a group_vars/host_vars file."""
        found = nearest(self.paths, key_path)
        return self.path if found is None else found[1]

    def key_of(self, key_path: KeyPath) -> str:
        """How the Ansible file spells ``key_path`` (its nearest named ancestor plus the rest)."""
        found = nearest(self.keys, key_path)
        if found is None:
            return dotted(key_path)
        probe, key = found
        return key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in key_path[len(probe) :])

    def error(self, key_path: KeyPath, message: str) -> InventoryError:
        return InventoryError(
            message, path=str(self.path_of(key_path)), line=self.line_of(key_path), key=self.key_of(key_path)
        )


@dataclass
class AnsibleVar:
    """One variable as written: value, line, spelling and the lines of nested items."""

    value: Any
    line: int
    key: str
    sub_lines: dict[KeyPath, int] = field(default_factory=dict)
    path: Path | None = None  # None: the inventory file itself


@dataclass
class AnsibleGroup:
    """One group as written: where, its vars, its hosts and its children (each with line and key)."""

    order: float
    line: int
    key: str
    vars: dict[str, AnsibleVar] = field(default_factory=dict)
    hosts: dict[str, tuple[int, str]] = field(default_factory=dict)  # host -> (line, key)
    children: dict[str, tuple[int, str]] = field(default_factory=dict)  # child -> (line, key)


@dataclass
class AnsibleModel:
    """An Ansible inventory as read, before it is translated to Guardian's shape."""

    path: Path
    groups: dict[str, AnsibleGroup] = field(default_factory=dict)
    host_vars: dict[str, dict[str, AnsibleVar]] = field(default_factory=dict)

    def group(self, name: str, line: int, key: str) -> AnsibleGroup:
        found = self.groups.get(name)
        if found is None:
            found = self.groups[name] = AnsibleGroup(float(len(self.groups)), line, key)
        return found

    def add_host(self, group: str, host: str, line: int, key: str, variables: Mapping[str, AnsibleVar]) -> None:
        self.group(group, line, key).hosts.setdefault(host, (line, key))
        self.host_vars.setdefault(host, {}).update(variables)

    def error(self, message: str, line: int | None, key: str = "", path: Path | None = None) -> InventoryError:
        return InventoryError(message, path=str(path or self.path), line=line, key=key)

    def var_error(self, message: str, var: AnsibleVar) -> InventoryError:
        return self.error(message, var.line, var.key, var.path)


def expand_host_pattern(model: AnsibleModel, pattern: str, line: int, key: str) -> tuple[list[str], int | None]:
    """Host names of ``pattern`` (ranges such as ``web[01:03]`` expanded) and its ``:port``."""
    if not _BALANCED.fullmatch(pattern):
        raise model.error(f"unbalanced '[' or ']' in host pattern {pattern!r}", line, key)
    port: int | None = None
    outside = _RANGE.sub("", pattern)
    if outside.count(":") > 1:
        raise model.error(
            f"{pattern!r}: IPv6 addresses are not supported as host names; name the host and set ansible_host",
            line,
            key,
        )
    if ":" in outside:
        cut = len(pattern) - pattern[::-1].index(":") - 1
        pattern, port_text = pattern[:cut], pattern[cut + 1 :]
        if not port_text.isdigit():
            raise model.error(f"expected host:port with a numeric port, got {port_text!r}", line, key)
        port = int(port_text)
    try:
        hosts = _expand_ranges(pattern)
    except ValueError as exc:
        raise model.error(f"host pattern {pattern!r}: {exc}", line, key) from None
    return hosts, port


def _expand_ranges(pattern: str) -> list[str]:
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    bounds = match.group(1).split(":")
    if len(bounds) not in (2, 3):
        raise ValueError("a host range is [start:end] or [start:end:step]")
    begin, end = bounds[0] or "0", bounds[1]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not step_text.isdigit() or int(step_text) == 0:
        raise ValueError("a range step must be a positive whole number")
    step = int(step_text)
    items: list[str]
    if begin.isdigit() and end.isdigit():
        width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
        if width and len(end) != width:
            raise ValueError("zero-padded range bounds must have the same length")
        if int(begin) > int(end):
            raise ValueError("a range must not start after its end")
        if (int(end) - int(begin)) // step >= MAX_RANGE_HOSTS:
            raise ValueError(f"a range may name at most {MAX_RANGE_HOSTS} hosts")
        items = [str(i).zfill(width) for i in range(int(begin), int(end) + 1, step)]
    elif len(begin) == 1 and len(end) == 1 and begin in string.ascii_letters and end in string.ascii_letters:
        first, last = string.ascii_letters.index(begin), string.ascii_letters.index(end)
        if first > last:
            raise ValueError("a range must not start after its end")
        items = list(string.ascii_letters[first : last + 1 : step])
    else:
        raise ValueError("range bounds must be numbers or single letters")
    hosts = [host for item in items for host in _expand_ranges(head + item + tail)]
    if len(hosts) > MAX_RANGE_HOSTS:
        raise ValueError(f"a range may name at most {MAX_RANGE_HOSTS} hosts")
    return hosts
