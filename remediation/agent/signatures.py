"""Failure signatures: load them from plain data and match them against check output.

A signature is data, not code: a name, regular expressions and the actions it calls for. The
controller loads YAML and hands plain dicts to :func:`load_signatures`, which validates every key
so that a bad rules file is rejected before anything runs.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Tuple

from .records import field, record

#: Lines longer than this are cut before matching, which bounds the work per line.
MAX_LINE_CHARS = 4096
#: Matches kept per signature (the output may be tens of MB of repeated lines).
MAX_MATCHES_PER_SIGNATURE = 20

ACTION_KINDS = ("restart", "alert")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# A group that itself contains a quantifier and is quantified again: (a+)+, (.*)*, (x|y+){2,}.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]")


class RuleError(ValueError):
    """A rules document is invalid. ``key`` is the dotted path of the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@record(frozen=True)
class RuleAction:
    """One step a signature asks for: ``restart`` a service or write an ``alert`` file."""

    kind: str
    target: str


@record(frozen=True)
class Signature:
    """A named failure signature with compiled patterns and the actions it calls for."""

    name: str
    description: str
    patterns: Tuple[str, ...]
    actions: Tuple[RuleAction, ...]
    case_sensitive: bool = False
    compiled: Tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)


@record(frozen=True)
class SignatureMatch:
    """Where a signature matched: the pattern, the 1-based line number and the line itself."""

    signature: str
    pattern: str
    line_no: int
    line: str

    def to_dict(self) -> Dict[str, Any]:
        return {
            "signature": self.signature,
            "pattern": self.pattern,
            "line_no": self.line_no,
            "line": self.line,
        }


def validate_name(value: object, key: str) -> str:
    """Return ``value`` if it is a safe identifier (service, alert or signature name)."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise RuleError(
            key,
            f"{value!r} is not a valid name (letters, digits, '_', '.', '@', '-'; at most 64)",
        )
    return value


def _compile(pattern: object, key: str, case_sensitive: bool) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(key, "a pattern must be a non-empty string")
    if len(pattern) > 512:
        raise RuleError(key, "pattern longer than 512 characters")
    if _NESTED_QUANTIFIER.search(pattern):
        raise RuleError(
            key,
            f"pattern {pattern!r} nests quantifiers and could backtrack catastrophically; "
            "rewrite it without a quantified group that contains a quantifier",
        )
    try:
        return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)
    except re.error as exc:
        raise RuleError(key, f"invalid regular expression {pattern!r}: {exc}") from None


def _load_action(raw: object, key: str) -> RuleAction:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise RuleError(key, "an action is a mapping with one key: restart or alert")
    ((kind, target),) = raw.items()
    if kind not in ACTION_KINDS:
        raise RuleError(key, f"unknown action {kind!r}; expected one of {', '.join(ACTION_KINDS)}")
    return RuleAction(kind=kind, target=validate_name(target, f"{key}.{kind}"))


def load_signatures(doc: object, *, where: str = "signatures") -> List[Signature]:
    """Validate a rules document (``{"signatures": [...]}`` or the list itself).

    Raises:
        RuleError: naming the key (e.g. ``signatures[1].patterns[0]``) and what is wrong.
    """
    items = doc.get("signatures") if isinstance(doc, dict) else doc
    if isinstance(doc, dict):
        unknown = sorted(str(k) for k in doc if k != "signatures")
        if unknown:
            raise RuleError(unknown[0] or "''", "unknown key in a rules file (expected 'signatures')")
    if not isinstance(items, list):
        raise RuleError(where, "expected a list of signatures")
    result: List[Signature] = []
    seen = set()
    for index, raw in enumerate(items):
        key = f"{where}[{index}]"
        if not isinstance(raw, dict):
            raise RuleError(key, "a signature is a mapping with name, patterns and actions")
        unknown = sorted(
            str(k) for k in raw if k not in ("name", "description", "patterns", "actions", "case_sensitive")
        )
        if unknown:
            raise RuleError(f"{key}.{unknown[0] or repr('')}", "unknown key")
        name = validate_name(raw.get("name"), f"{key}.name")
        if name in seen:
            raise RuleError(f"{key}.name", f"duplicate signature name {name!r}")
        seen.add(name)
        case_sensitive = raw.get("case_sensitive", False)
        if not isinstance(case_sensitive, bool):
            raise RuleError(f"{key}.case_sensitive", "expected true or false")
        patterns = raw.get("patterns")
        if not isinstance(patterns, list) or not patterns:
            raise RuleError(f"{key}.patterns", "expected a non-empty list of regular expressions")
        compiled = tuple(_compile(p, f"{key}.patterns[{i}]", case_sensitive) for i, p in enumerate(patterns))
        actions = raw.get("actions", [])
        if not isinstance(actions, list):
            raise RuleError(f"{key}.actions", "expected a list of actions")
        description = raw.get("description", "")
        if not isinstance(description, str):
            raise RuleError(f"{key}.description", "expected a string")
        result.append(
            Signature(
                name=name,
                description=description,
                patterns=tuple(str(p) for p in patterns),
                actions=tuple(_load_action(a, f"{key}.actions[{i}]") for i, a in enumerate(actions)),
                case_sensitive=case_sensitive,
                compiled=compiled,
            )
        )
    return result


def signatures_to_data(signatures: Iterable[Signature]) -> List[Dict[str, Any]]:
    """The inverse of :func:`load_signatures`: plain data that loads back to equal signatures."""
    return [
        {
            "name": s.name,
            "description": s.description,
            "patterns": list(s.patterns),
            "actions": [{a.kind: a.target} for a in s.actions],
            "case_sensitive": s.case_sensitive,
        }
        for s in signatures
    ]


class SignatureScanner:
    """Matches signatures line by line, so output can be classified while it streams."""

    def __init__(self, signatures: List[Signature]) -> None:
        self.signatures = signatures
        self.matches: Dict[str, List[SignatureMatch]] = {}
        self.line_no = 0

    def feed_line(self, line: str) -> None:
        self.line_no += 1
        text = line[:MAX_LINE_CHARS]
        for signature in self.signatures:
            found = self.matches.get(signature.name)
            if found is not None and len(found) >= MAX_MATCHES_PER_SIGNATURE:
                continue
            for pattern, compiled in zip(signature.patterns, signature.compiled):
                if compiled.search(text):
                    self.matches.setdefault(signature.name, []).append(
                        SignatureMatch(signature.name, pattern, self.line_no, text[:500])
                    )
                    break

    def matched(self) -> List[SignatureMatch]:
        """All matches, in the order of the signatures (which is the recovery order)."""
        return [m for s in self.signatures for m in self.matches.get(s.name, [])]


def classify(output: str, signatures: List[Signature]) -> List[SignatureMatch]:
    """Return every signature match in ``output`` (signature order, then line order)."""
    scanner = SignatureScanner(signatures)
    for line in output.splitlines():
        scanner.feed_line(line)
    return scanner.matched()
