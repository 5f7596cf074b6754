"""The on-host half runs on hosts with nothing but python3 (>= 3.9): every module in
remediation/agent imports only the standard library and its own package's modules, and the
bundle the controller streams carries all of them. (``scripts/test.sh`` also type-checks the
package as Python 3.9 with ``mypy --python-version 3.9``.)"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from remediation.execution.bundle import BUNDLE_PACKAGE, ENTRY_POINT, agent_sources

AGENT = Path(__file__).resolve().parent.parent / "remediation" / "agent"
MODULES = sorted(AGENT.glob("*.py"))


def imports(path: Path) -> list[tuple[int, str, int]]:
    """(line, module, level) for every import in ``path``, wherever it is (functions too), except
    in the body of an ``if TYPE_CHECKING:``, which only a type checker reads."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = [ast.Pass()]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.module or "", node.level))
    return found


def test_the_agent_has_its_modules() -> None:
    names = {p.stem for p in MODULES}
    assert {"config", "events", "sequence", "apply", "journal", "collect", "main", "managers", "commands"} <= names
    assert "runner" not in names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_agent_module_imports_only_the_standard_library_and_its_package(path: Path) -> None:
    bad = [
        f"{path.name}:{line}: import {module}"
        for line, module, level in imports(path)
        if level == 0 and module.split(".")[0] not in sys.stdlib_module_names
    ]
    assert not bad, f"the agent must run with the standard library only: {bad}"
    too_far = [f"{path.name}:{line}: {'.' * level}{module}" for line, module, level in imports(path) if level > 1]
    assert not too_far, f"relative imports must stay inside remediation/agent: {too_far}"


def test_the_checker_catches_a_third_party_import(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "import os\nif TYPE_CHECKING:\n    import typing_extensions\nelse:\n    import attr\n\n"
        "def f() -> None:\n    import yaml\n    from ..reporting import report\n"
    )
    found = [(m, lvl) for _, m, lvl in imports(sneaky)]
    assert sorted(found) == [("attr", 0), ("os", 0), ("reporting", 2), ("yaml", 0)]
    assert "yaml" not in sys.stdlib_module_names


def test_the_bundle_carries_every_agent_module_and_its_entry_point() -> None:
    carried = dict(agent_sources())
    expected = {BUNDLE_PACKAGE if p.stem == "__init__" else f"{BUNDLE_PACKAGE}.{p.stem}" for p in MODULES}
    assert set(carried) == expected
    assert ENTRY_POINT in carried
    assert "def main(" in carried[ENTRY_POINT]
