"""The dependency audit's verdicts (scripts/audit_deps.py), from PyPI-shaped project JSON."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "audit_deps.py"


def _audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_deps"] = module
    spec.loader.exec_module(module)
    return module


audit = _audit()


def project(latest: str, *vulns: dict[str, object]) -> dict[str, object]:
    return {"info": {"version": latest}, "vulnerabilities": list(vulns)}


def test_latest_release_with_an_advisory_fails() -> None:
    status, detail = audit.verdict(
        "paramiko", "5.1.0", project("5.1.0", {"id": "GHSA-xxxx", "fixed_in": ["5.1.1"], "withdrawn": None})
    )
    assert status == "vulnerable" and "GHSA-xxxx" in detail and "5.1.1" in detail


def test_withdrawn_advisories_do_not_count() -> None:
    assert (
        audit.verdict("rich", "15.0.0", project("15.0.0", {"id": "PYSEC-1", "withdrawn": "2026-01-01"}))[0] == "clean"
    )


def test_an_older_release_is_unverified_not_clean() -> None:
    status, detail = audit.verdict("invoke", "2.2.1", project("3.0.3"))
    assert status == "unverified" and "3.0.3" in detail


def test_the_runtime_closure_holds_the_required_packages() -> None:
    closure = audit.runtime_closure()
    assert {"fabric", "invoke", "paramiko", "pyyaml", "rich"} <= set(closure)
    assert "pytest" not in closure and "hypothesis" not in closure  # dev extras are not shipped
