"""The runner's records (agent/records.py) behave as the dataclasses they replace: the same
constructor, defaults, equality, hashing, immutability, replace and asdict; and the runner
imports no dataclasses on its way to a healthy host's check."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pytest

from remediation.agent import records
from remediation.agent.records import FrozenInstanceError, field, record


@record(frozen=True)
class Point:
    x: int
    y: int = 0
    tags: Tuple[str, ...] = field(default_factory=tuple)
    secret: Optional[str] = field(default=None, repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class DPoint:
    x: int
    y: int = 0
    tags: Tuple[str, ...] = dataclasses.field(default_factory=tuple)
    secret: Optional[str] = dataclasses.field(default=None, repr=False, compare=False)


@record
class Mutable:
    items: Dict[str, Any] = field(default_factory=dict)
    count: int = 0

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("count must not be negative")


def test_construction_defaults_and_repr_match_dataclasses() -> None:
    for args, kwargs in [((1,), {}), ((1, 2), {}), ((), {"x": 3, "tags": ("a",)}), ((1,), {"secret": "s"})]:
        ours, theirs = Point(*args, **kwargs), DPoint(*args, **kwargs)
        assert repr(ours) == repr(theirs).replace("DPoint", "Point")
        assert records.asdict(ours) == dataclasses.asdict(theirs)
    assert Mutable().items is not Mutable().items  # a fresh default from the factory each time


def test_bad_arguments_are_type_errors_as_for_dataclasses() -> None:
    with pytest.raises(TypeError, match="missing required argument: 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Point(1, z=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, x=2)  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional arguments"):
        Point(1, 2, [], None, 5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument 'a'"):

        @record
        class Wrong:
            a: int = 1
            b: int  # type: ignore[misc]


def test_equality_hash_and_frozen() -> None:
    assert Point(1, 2) == Point(1, 2, secret="other")  # secret is not compared
    assert Point(1, 2) != Point(2, 1)
    assert Point(1) != DPoint(1)
    assert hash(Point(1, 2)) == hash(Point(1, 2, secret="x"))
    assert len({Point(1, 2), Point(1, 2), Point(3)}) == 2
    p = Point(1)
    with pytest.raises(FrozenInstanceError):
        p.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y  # type: ignore[misc]
    m = Mutable()
    m.count = 3
    assert m == Mutable(count=3)
    with pytest.raises(TypeError):
        hash(m)  # compared by value and mutable: unhashable


def test_replace_runs_post_init_and_asdict_copies() -> None:
    m = Mutable({"a": [1]}, 1)
    copy = records.replace(m, count=2)
    assert (copy.count, copy.items) == (2, {"a": [1]})
    with pytest.raises(ValueError, match="negative"):
        records.replace(m, count=-1)
    with pytest.raises(TypeError, match="no field 'nope'"):
        records.replace(m, nope=1)
    data = records.asdict(m)
    data["items"]["a"].append(2)
    assert m.items == {"a": [1]}
    assert [f.name for f in records.fields(Point)] == ["x", "y", "tags", "secret"]
    assert records.is_record(Point) and records.is_record(Point(1)) and not records.is_record(DPoint)
    with pytest.raises(TypeError):
        records.fields(DPoint(1))


def test_the_runner_imports_no_dataclasses(tmp_path: Path) -> None:
    """What a run loads before it acts, imported as the installed runner imports it (the agent
    package under its bundle name, with the runner's -I -S)."""
    (tmp_path / "guardian_agent").symlink_to(Path(records.__file__).parent)
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); sys.dont_write_bytecode = True; "
        "import guardian_agent.main, guardian_agent.sequence, guardian_agent.plan, guardian_agent.config; "
        "print(sorted(m for m in ('dataclasses', 'inspect', 'ast') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
