"""Failure-signature rules files: the shipped defaults plus the operator's own.

Rules are YAML (see ``remediation/data/signatures.yaml``). An operator's file is layered on the
defaults: a signature with a new name is added after them, one with an existing name replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .agent.signatures import RuleError, Signature, load_signatures, signatures_to_data
from .errors import InventoryError
from .inventory.yamlfile import load_located


def default_rules_path() -> Path:
    return Path(__file__).resolve().parent / "data" / "signatures.yaml"


def _load_file(path: Path) -> list[Signature]:
    doc = load_located(path)
    try:
        return load_signatures(doc.data)
    except RuleError as exc:
        key_path = _parse_key(exc.key)
        raise InventoryError(exc.message, path=str(path), line=doc.line_of(key_path), key=exc.key) from None


def _parse_key(key: str) -> tuple[str | int, ...]:
    """``signatures[1].patterns[0]`` -> ('signatures', 1, 'patterns', 0)."""
    parts: list[str | int] = []
    for chunk in key.replace("]", "").split("."):
        name, *indexes = chunk.split("[")
        if name:
            parts.append(name)
        parts += [int(i) for i in indexes if i.isdigit()]
    return tuple(parts)


def load_rules(extra: Sequence[Path] = (), *, include_defaults: bool = True) -> list[Signature]:
    """The signatures in effect: defaults, then each extra file layered on top."""
    signatures = _load_file(default_rules_path()) if include_defaults else []
    for path in extra:
        for signature in _load_file(path):
            names = [s.name for s in signatures]
            if signature.name in names:
                signatures[names.index(signature.name)] = signature
            else:
                signatures.append(signature)
    return signatures


def rules_data(signatures: Sequence[Signature]) -> list[dict[str, Any]]:
    """Plain data for the on-host runner (it re-validates and compiles it)."""
    return signatures_to_data(signatures)
