#!/usr/bin/env python3
"""Check Guardian's installed runtime dependencies against PyPI's known-vulnerability data.

Why not pip-audit: this machine reaches PyPI's index and its per-project JSON, but not the
per-release JSON (``/pypi/NAME/VERSION/json``, 404 here) nor OSV's API, and pip-audit needs one
of those ("Dependency not found on PyPI" for every package). The per-project JSON carries the
advisories (``vulnerabilities``, from the same PyPA advisory database pip-audit uses) of the
*latest* release, so:

* installed == latest release: its advisories are known; any that are not withdrawn FAIL the run.
* installed is older (held back by a pin): its advisories cannot be seen from here; it is listed
  as unverified, with the reason, and does not fail the run.
* PyPI unreachable: every package is unverified; the run does not fail (the tests still run).

Usage: audit_deps.py [DIST ...]   (default: the runtime closure of guardian-remediation)
Exit status: 1 if any installed release has a known vulnerability, else 0.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

INDEX = "https://pypi.org/pypi/{name}/json"
ROOT = "guardian-remediation"


def runtime_closure(root: str = ROOT) -> dict[str, str]:
    """Installed name -> version of ``root``'s runtime dependencies (extras not included)."""
    found: dict[str, str] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # an environment marker excluded it (e.g. a backport for older Pythons)
        found[key] = dist.version
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0])
    found.pop(root, None)
    return found


def verdict(name: str, installed: str, project: dict[str, Any]) -> tuple[str, str]:
    """("clean" | "vulnerable" | "unverified", detail) for one installed package."""
    latest = str(project.get("info", {}).get("version", ""))
    if installed != latest:
        return "unverified", f"{installed} is not the latest release ({latest}); its advisories are not published here"
    vulns = [v for v in project.get("vulnerabilities") or [] if not v.get("withdrawn")]
    if not vulns:
        return "clean", f"{installed} (latest): no known vulnerabilities"
    ids = ", ".join(f"{v.get('id')} (fixed in {', '.join(v.get('fixed_in') or ['?'])})" for v in vulns)
    return "vulnerable", f"{installed}: {ids}"


def fetch(name: str) -> dict[str, Any]:
    with urllib.request.urlopen(INDEX.format(name=name), timeout=15) as response:  # noqa: S310 - fixed https URL
        data: dict[str, Any] = json.load(response)
    return data


def main(argv: list[str]) -> int:
    packages = {n: distribution(n).version for n in argv} if argv else runtime_closure()
    worst = 0
    for name, version in sorted(packages.items()):
        try:
            status, detail = verdict(name, version, fetch(name))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            status, detail = "unverified", f"{version}: PyPI not reachable ({exc})"
        if status == "vulnerable":
            worst = 1
        print(f"{status:10} {name} {detail}")
    print("dependency audit:", "FAILED (known vulnerabilities above)" if worst else "no known vulnerabilities found")
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
