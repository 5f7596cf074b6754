"""Read YAML while remembering the line of every key, so errors can name file, line and key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ..errors import InventoryError

KeyPath = tuple[str | int, ...]
V = TypeVar("V")


class LocatedYaml:
    """A parsed YAML document plus the 1-based line of every mapping key and list item."""

    def __init__(self, path: Path, data: Any, lines: dict[KeyPath, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of ``key_path`` or of its nearest ancestor that has one."""
        found = nearest(self.lines, key_path)
        return None if found is None else found[1]

    def path_of(self, key_path: KeyPath) -> Path:
        """The file ``key_path`` was written in (always this document's, unless a subclass merges files)."""
        return self.path

    def error(self, key_path: KeyPath, message: str) -> InventoryError:
        return InventoryError(message, path=str(self.path), line=self.line_of(key_path), key=dotted(key_path))


def nearest(table: Mapping[KeyPath, V], key_path: KeyPath) -> tuple[KeyPath, V] | None:
    """``(ancestor, value)`` for ``key_path`` or its nearest ancestor present in ``table``."""
    probe = tuple(key_path)
    while probe:
        if probe in table:
            return probe, table[probe]
        probe = probe[:-1]
    return None


def dotted(key_path: KeyPath) -> str:
    out = ""
    for part in key_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_located(path: Path) -> LocatedYaml:
    """Parse ``path`` safely. A YAML syntax error becomes an InventoryError with the line."""
    return locate(path, compose(path, read_text(path)))


def read_text(path: Path) -> str:
    """The text of ``path``; unreadable or non-UTF-8 files are an InventoryError naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"cannot read file: {exc.strerror}", path=str(path)) from None
    except UnicodeDecodeError:
        raise InventoryError("file is not valid UTF-8", path=str(path)) from None


def compose(path: Path, text: str) -> yaml.Node | None:
    """Parse ``text`` (the contents of ``path``) into YAML nodes, once; a syntax error names the line."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise InventoryError(
            f"YAML syntax error: {problem}",
            path=str(path),
            line=mark.line + 1 if mark is not None else None,
        ) from None


def locate(path: Path, node: yaml.Node | None) -> LocatedYaml:
    """The document of ``node`` with the line of every key; a key that is not a plain name, or is
    written twice, is an InventoryError naming its line."""
    lines: dict[KeyPath, int] = {}
    data = _convert(node, (), lines, path) if node is not None else None
    return LocatedYaml(path, data, lines)


def plain_data(node: yaml.Node | None) -> Any:
    """What ``yaml.safe_load`` makes of ``node`` (tags, merge keys and all), for sniffing a file's
    format without parsing it again. Raises yaml.YAMLError where ``safe_load`` would.

    Call it after :func:`locate`: PyYAML flattens merge keys (``<<``) in the node it constructs.
    """
    return yaml.SafeLoader("").construct_document(node) if node is not None else None


def _convert(node: yaml.Node, here: KeyPath, lines: dict[KeyPath, int], path: Path) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, path)
            if not isinstance(key, (str, int, bool, float)) or isinstance(key, bool):
                raise InventoryError(
                    f"mapping keys must be plain names, not {key!r}",
                    path=str(path),
                    line=key_node.start_mark.line + 1,
                    key=dotted(here),
                )
            key = str(key)
            if key in result:
                raise InventoryError(
                    f"duplicate key {key!r}",
                    path=str(path),
                    line=key_node.start_mark.line + 1,
                    key=dotted((*here, key)),
                )
            lines[(*here, key)] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, (*here, key), lines, path)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*here, index)] = item.start_mark.line + 1
            items.append(_convert(item, (*here, index), lines, path))
        return items
    return _scalar(node, path, here)


def _scalar(node: yaml.Node, path: Path, here: KeyPath = ()) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise InventoryError("a mapping key must be a scalar", path=str(path), line=node.start_mark.line + 1)
    constructor = yaml.SafeLoader("")
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise InventoryError(f"invalid value: {exc}", path=str(path), line=node.start_mark.line + 1) from None
    except ValueError as exc:  # a date-like scalar that is no date (2026-13-45): PyYAML's own error
        raise InventoryError(
            f"invalid value {node.value!r} (read as a date or time: {exc}); quote it to mean a string",
            path=str(path),
            line=node.start_mark.line + 1,
            key=dotted(here),
        ) from None
