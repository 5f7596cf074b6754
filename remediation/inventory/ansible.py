"""Read Ansible inventories (INI and YAML) as Guardian inventory documents.

An Ansible file is converted into Guardian's native shape (``vars`` and ``groups``, see
:mod:`remediation.inventory.hosts`) with the line of every native key pointing at the Ansible file, so
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

import ast
import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InventoryError
from .yamlfile import KeyPath, LocatedYaml, dotted, load_located, nearest

ALL = "all"
UNGROUPED = "ungrouped"
GUARDIAN_PREFIX = "guardian_"
PRIORITY_VAR = "ansible_group_priority"
MAX_RANGE_HOSTS = 10_000

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

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_SECTION_SHAPE = re.compile(r"^\[[^\]\s]+\]")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:[#;].*)?$")
_HOST_LINE = re.compile(r"^[A-Za-z0-9_\[][A-Za-z0-9_.\-\[\]:]*(?<!:)(?:\s+[^\s=]+=.*)?\s*$")
_BALANCED = re.compile(r"(?:[^\[\]]|\[[^\[\]]*\])*")
_RANGE = re.compile(r"\[([^\]]*)\]")
_GROUP_KEYS = ("hosts", "vars", "children")
_VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")


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
class _Var:
    """One variable as written: value, line, spelling and the lines of nested items."""

    value: Any
    line: int
    key: str
    sub_lines: dict[KeyPath, int] = field(default_factory=dict)
    path: Path | None = None  # None: the inventory file itself


@dataclass
class _Group:
    order: float
    line: int
    key: str
    vars: dict[str, _Var] = field(default_factory=dict)
    hosts: dict[str, tuple[int, str]] = field(default_factory=dict)  # host -> (line, key)
    children: dict[str, tuple[int, str]] = field(default_factory=dict)  # child -> (line, key)


@dataclass
class _Model:
    """An Ansible inventory as read, before it is translated to Guardian's shape."""

    path: Path
    groups: dict[str, _Group] = field(default_factory=dict)
    host_vars: dict[str, dict[str, _Var]] = field(default_factory=dict)

    def group(self, name: str, line: int, key: str) -> _Group:
        found = self.groups.get(name)
        if found is None:
            found = self.groups[name] = _Group(float(len(self.groups)), line, key)
        return found

    def add_host(self, group: str, host: str, line: int, key: str, variables: Mapping[str, _Var]) -> None:
        self.group(group, line, key).hosts.setdefault(host, (line, key))
        self.host_vars.setdefault(host, {}).update(variables)

    def error(self, message: str, line: int | None, key: str = "", path: Path | None = None) -> InventoryError:
        return InventoryError(message, path=str(path or self.path), line=line, key=key)

    def var_error(self, message: str, var: _Var) -> InventoryError:
        return self.error(message, var.line, var.key, var.path)


def is_ansible_inventory(path: Path, text: str) -> bool:
    """Whether ``text`` (the contents of ``path``) is an Ansible inventory, INI or YAML."""
    return _kind(path, text) is not None


def load_ansible_inventory(path: Path) -> LocatedYaml:
    """Read an Ansible inventory file and convert it into Guardian's native document.

    Raises:
        InventoryError: naming the file, line and key of anything malformed.
    """
    text = _read(path)
    model = _parse_ini(path, text) if _kind(path, text) == "ini" else _parse_yaml(load_located(path))
    _read_vars_dirs(model, path.parent)
    return _to_document(model)


def _read_vars_dirs(model: _Model, base: Path) -> None:
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


def _file_vars(path: Path) -> dict[str, _Var]:
    doc = load_located(path)
    if doc.data is None:
        return {}
    if not isinstance(doc.data, dict):
        raise InventoryError(
            f"a vars file must be a mapping of variables, got {type(doc.data).__name__}", path=str(path), line=1
        )
    return _yaml_vars(doc, (), doc.data, path)


def load_inventory_document(path: Path) -> LocatedYaml:
    """The document of one inventory file: native as is, Ansible converted to native."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return load_located(path)  # reports the read error as usual
    if is_ansible_inventory(path, text):
        return load_ansible_inventory(path)
    return load_located(path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"cannot read file: {exc.strerror}", path=str(path)) from None
    except UnicodeDecodeError:
        raise InventoryError("file is not valid UTF-8", path=str(path)) from None


def _first_significant(text: str) -> str | None:
    for raw in text.splitlines():
        line = raw.strip()
        if line and line[0] not in "#;":
            return line
    return None


def _kind(path: Path, text: str) -> str | None:
    first = _first_significant(text)
    if first is None:
        return None
    if path.suffix.lower() in (".ini", ".cfg") or _SECTION_SHAPE.match(first) or _HOST_LINE.match(first):
        return "ini"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict) or not data or set(data) & {"vars", "groups"}:
        return None
    shaped = any(v is None or (isinstance(v, dict) and set(v) & set(_GROUP_KEYS)) for v in data.values())
    return "yaml" if ALL in data or shaped else None


# --- INI -------------------------------------------------------------------------------------


def _ini_value(text: str) -> Any:
    """A value as Ansible's INI plugin reads it: a Python literal if it is one, else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _parse_ini(path: Path, text: str) -> _Model:
    model = _Model(path)
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
            model.groups[group].vars[name] = _Var(_ini_value(value.strip()), lineno, f"[{group}:vars] {name}")
        elif state == "children":
            match = _GROUP_NAME.match(line)
            if match is None:
                raise model.error(f"expected a group name, got {line!r}", lineno, f"[{group}:children]")
            model.groups[group].children.setdefault(match.group(1), (lineno, f"[{group}:children] {match.group(1)}"))
        else:
            _parse_host_line(model, group, line, lineno)
    return model


def _parse_host_line(model: _Model, group: str, line: str, lineno: int) -> None:
    section = f"[{group}]"
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:
        raise model.error(f"cannot parse host line: {exc}", lineno, section) from None
    if not tokens:
        return
    hosts, port = _expand_pattern(model, tokens[0], lineno, f"{section} {tokens[0]}")
    for host in hosts:
        prefix = f"{section} {host}"
        variables: dict[str, _Var] = {}
        if port is not None:
            variables["ansible_port"] = _Var(port, lineno, prefix)
        for token in tokens[1:]:
            name, sep, value = token.partition("=")
            if not sep or not name:
                raise model.error(f"expected key=value host variable, got {token!r}", lineno, prefix)
            variables[name] = _Var(_ini_value(value), lineno, f"{prefix} {name}")
        model.add_host(group, host, lineno, prefix, variables)


def _expand_pattern(model: _Model, pattern: str, line: int, key: str) -> tuple[list[str], int | None]:
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


# --- YAML ------------------------------------------------------------------------------------


def _parse_yaml(doc: LocatedYaml) -> _Model:
    model = _Model(doc.path)
    if not isinstance(doc.data, dict):
        raise model.error("an Ansible YAML inventory must be a mapping of groups (usually 'all:')", 1)
    for name, body in doc.data.items():
        _yaml_group(doc, model, name, body, (name,), None)
    return model


def _yaml_group(doc: LocatedYaml, model: _Model, name: str, body: Any, here: KeyPath, parent: str | None) -> None:
    line = doc.line_of(here) or 1
    group = model.group(name, line, dotted(here))
    if parent not in (None, ALL) and name != ALL:
        model.groups[str(parent)].children.setdefault(name, (line, dotted(here)))
    if body is None:
        return
    if not isinstance(body, dict):
        raise doc.error(here, f"a group must be a mapping with {', '.join(_GROUP_KEYS)}")
    for key, value in body.items():
        where = (*here, key)
        if key not in _GROUP_KEYS:
            raise doc.error(where, f"unknown group key; expected one of {', '.join(_GROUP_KEYS)}")
        if value is None:
            continue
        if not isinstance(value, dict):
            example = " (hosts: {web01: null})" if key == "hosts" else ""
            raise doc.error(where, f"expected a mapping{example}, got {type(value).__name__}")
        if key == "vars":
            group.vars.update(_yaml_vars(doc, where, value))
        elif key == "children":
            for child, child_body in value.items():
                _yaml_group(doc, model, child, child_body, (*where, child), name)
        else:
            for pattern, host_body in value.items():
                entry = (*where, pattern)
                entry_line = doc.line_of(entry) or line
                if host_body is not None and not isinstance(host_body, dict):
                    raise doc.error(entry, f"host variables must be a mapping, got {type(host_body).__name__}")
                hosts, port = _expand_pattern(model, pattern, entry_line, dotted(entry))
                variables: dict[str, _Var] = {}
                if port is not None:
                    variables["ansible_port"] = _Var(port, entry_line, dotted(entry))
                variables.update(_yaml_vars(doc, entry, host_body or {}))
                for host in hosts:
                    model.add_host(name, host, entry_line, dotted(entry), variables)


def _yaml_vars(doc: LocatedYaml, here: KeyPath, values: Mapping[str, Any], path: Path | None = None) -> dict[str, _Var]:
    """The variables of one ``vars:`` block (``path``: a group_vars/host_vars file, not the inventory)."""
    result: dict[str, _Var] = {}
    for name, value in values.items():
        where = (*here, name)
        sub: dict[KeyPath, int] = {}
        _collect_lines(doc, where, (), value, sub)
        result[name] = _Var(value, doc.line_of(where) or 1, dotted(where), sub, path)
    return result


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


# --- translation to Guardian's shape ---------------------------------------------------------


def _translate(model: _Model, block: Mapping[str, _Var]) -> dict[str, _Var]:
    """Guardian settings of one vars block; unrelated variables are dropped."""
    chosen: dict[str, tuple[int, _Var]] = {}
    for name, var in block.items():
        mapped = _map_var(model, name, var)
        if mapped is None:
            continue
        setting, rank, value = mapped
        previous = chosen.get(setting)
        if previous is None or rank >= previous[0]:
            chosen[setting] = (rank, _Var(value, var.line, var.key, var.sub_lines, var.path))
    return {setting: var for setting, (_, var) in chosen.items()}


def _map_var(model: _Model, name: str, var: _Var) -> tuple[str, int, Any] | None:
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


def _group_priority(model: _Model, group: _Group) -> int:
    var = group.vars.get(PRIORITY_VAR)
    if var is None:
        return 1
    try:
        return int(var.value)
    except (TypeError, ValueError):
        raise model.var_error(f"expected a whole number, got {var.value!r}", var) from None


def _members(name: str, model: _Model, seen: tuple[str, ...]) -> set[str]:
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


def _precedence_order(model: _Model, names: list[str]) -> list[str]:
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


def _reconcile_ungrouped(model: _Model) -> None:
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
        ungrouped = model.groups[UNGROUPED] = _Group(every.order + 0.5, every.line, every.key)
    if ungrouped is not None:
        ungrouped.hosts = kept


def _to_document(model: _Model) -> AnsibleDocument:
    lines: dict[KeyPath, int] = {}
    keys: dict[KeyPath, str] = {}
    paths: dict[KeyPath, Path] = {}
    data: dict[str, Any] = {}

    def emit(block: Mapping[str, _Var], here: KeyPath) -> dict[str, Any]:
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
