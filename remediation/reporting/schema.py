"""``docs/report.schema.json``, generated from the records in :mod:`records`.

The schema is not written by hand: ``python -m remediation.reporting.schema`` writes it from
the typed records (and the outcome vocabulary), and a test fails when the checked-in file and
the types differ, so the published schema always says what Guardian really writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, NotRequired, Required, Union

from .records import Const, Doc, OneOf, Pattern, RunRecord

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"
_TITLE = "Guardian run report (reports/<run-id>/report.json, and --json on premarket/recover/deploy/collect/report)"
#: Records whose objects may hold nothing but their declared keys (the top level: a misspelt key
#: there is a bug). Every other record tolerates keys it does not declare, from other versions.
_CLOSED: frozenset[type] = frozenset({RunRecord})
_SCALARS: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


def report_schema() -> dict[str, Any]:
    """The JSON schema of ``report.json``, built from :class:`records.RunRecord` down."""
    defs: dict[str, Any] = {}
    top = _object(RunRecord, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "guardian-report-v1",
        "title": _TITLE,
        "description": " ".join((RunRecord.__doc__ or "").replace("``", "`").split()),
        **top,
        "$defs": dict(sorted(defs.items())),
    }


def render_schema() -> str:
    """The schema as the text of ``docs/report.schema.json``: indented, with every object or
    list that fits on one line written on one line, so a reader sees a record per screen."""
    return _dump(report_schema(), 0) + "\n"


def _dump(value: Any, indent: int, *, width: int = 110) -> str:
    flat = json.dumps(value, ensure_ascii=False)
    if len(flat) + indent <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, list):
        items = [pad + _dump(v, indent + 2) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    pairs = [f"{pad}{json.dumps(k)}: {_dump(v, indent + 2)}" for k, v in value.items()]
    return "{\n" + ",\n".join(pairs) + "\n" + " " * indent + "}"


def def_name(record: type) -> str:
    """A record's name in ``$defs``: ``CheckRecord`` -> ``check``, ``PlannedActionRecord`` -> ``planned_action``."""
    name = record.__name__.removesuffix("Record")
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _object(record: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(record, include_extras=True)
    properties = {key: _schema(_unwrap_required(hint), defs) for key, hint in hints.items()}
    required = sorted(getattr(record, "__required_keys__", frozenset()), key=list(hints).index)
    schema: dict[str, Any] = {"type": "object"}
    if required:
        schema["required"] = required
    if record in _CLOSED:
        schema["additionalProperties"] = False
    schema["properties"] = properties
    return schema


def _unwrap_required(hint: Any) -> Any:
    while typing.get_origin(hint) in (NotRequired, Required):
        (hint,) = typing.get_args(hint)
    return hint


def _is_record(hint: Any) -> bool:
    return isinstance(hint, type) and typing.is_typeddict(hint)


def _schema(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _annotated(args[0], args[1:], defs)
    if hint is Any:
        return {}
    if hint is type(None):
        return {"type": "null"}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if _is_record(hint):
        name = def_name(hint)
        if name not in defs:
            defs[name] = {}  # reserved first: a record may (one day) contain itself
            doc = " ".join((hint.__doc__ or "").replace("``", "`").split())
            defs[name] = {"description": doc, **_object(hint, defs)} if doc else _object(hint, defs)
        return {"$ref": f"#/$defs/{name}"}
    if origin in (Union, types.UnionType):
        return _nullable([a for a in args if a is not type(None)], type(None) in args, defs)
    if origin is list:
        return {"type": "array", "items": _schema(args[0], defs)}
    if origin is dict:
        values = _schema(args[1], defs)
        return {"type": "object", "additionalProperties": values} if values else {"type": "object"}
    raise TypeError(f"no JSON schema for {hint!r}: add it to remediation/reporting/schema.py")


def _nullable(options: list[Any], null: bool, defs: dict[str, Any]) -> dict[str, Any]:
    if len(options) != 1:
        schemas = [_schema(o, defs) for o in options] + ([{"type": "null"}] if null else [])
        return {"anyOf": schemas}
    schema = _schema(options[0], defs)
    if not null:
        return schema
    if set(schema) == {"type"} and isinstance(schema["type"], str):
        return {"type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _annotated(hint: Any, marks: tuple[Any, ...], defs: dict[str, Any]) -> dict[str, Any]:
    schema = _schema(hint, defs)
    for mark in marks:
        if isinstance(mark, OneOf):
            choice: dict[str, Any] = {"enum": list(mark.values)}
            if mark.description:
                choice = {"description": mark.description, **choice}
            if not mark.name:
                schema = choice
                continue
            defs.setdefault(mark.name, choice)
            schema = {"$ref": f"#/$defs/{mark.name}"}
        elif isinstance(mark, Pattern):
            schema["pattern"] = mark.regex
        elif isinstance(mark, Const):
            schema = {"const": mark.value}
        elif isinstance(mark, Doc):
            schema = {"description": mark.text, **schema}
    return schema


def main(argv: list[str] | None = None) -> int:
    """Write the schema (or, with ``--check``, say whether the file is up to date: exit 1 if not)."""
    parser = argparse.ArgumentParser(prog="python -m remediation.reporting.schema", description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=SCHEMA_PATH)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = render_schema()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.is_file() else ""
        if current != text:
            print(f"{args.path} is out of date: run python -m remediation.reporting.schema", file=sys.stderr)
            return 1
        return 0
    args.path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
