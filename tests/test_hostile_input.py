"""Hostile and malformed input: no injection, clear errors naming file and key, never a traceback."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from remediation import jobs
from remediation.errors import GuardianError, InventoryError
from remediation.inventory.hosts import load_inventory
from remediation.reporting.report import ReportStore
from remediation.rules import load_rules

SHELL_NASTIES = [
    "; touch {canary}",
    "$(touch {canary})",
    "`touch {canary}`",
    "' ; touch {canary} ; '",
    '" && touch {canary} && "',
    "x\ntouch {canary}",
    "| touch {canary}",
]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 70000), st.floats(allow_nan=False, width=16), st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from(
    [
        "vars",
        "groups",
        "hosts",
        "children",
        "address",
        "port",
        "user",
        "manager",
        "services",
        "schedules",
        "settle_seconds",
        "protected",
        "app_dir",
        "python",
        "x",
    ]
)
documents = st.dictionaries(
    keys, values | st.dictionaries(keys, values | st.dictionaries(keys, values, max_size=3), max_size=3), max_size=3
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents)
def test_generated_inventories_load_or_fail_clearly(tmp_path: Path, doc: dict[str, object]) -> None:
    path = tmp_path / "gen.yml"
    path.write_text(yaml.safe_dump(doc))
    try:
        inventory = load_inventory([path])
    except InventoryError as exc:
        assert exc.path == str(path)
        assert str(exc).startswith(str(path))
        return
    # A valid one round-trips: writing its hosts back out gives the same settings.
    for host in inventory.hosts.values():
        assert host.settings["manager"] in ("supervisor", "process-compose", "systemd", "signal")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    doc=st.one_of(
        values,
        st.fixed_dictionaries(
            {
                "signatures": st.lists(
                    st.dictionaries(
                        st.sampled_from(["name", "patterns", "actions", "description", "zz"]), values, max_size=4
                    ),
                    max_size=3,
                )
            }
        ),
    )
)
def test_generated_rules_files_load_or_fail_clearly(tmp_path: Path, doc: object) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(doc))
    try:
        rules = load_rules([path])
    except InventoryError as exc:
        assert exc.path == str(path) and exc.key
        return
    assert [s.name for s in rules][:2] == ["uw_socket", "alpaca_sip_delay"]


def test_shell_metacharacters_never_reach_a_shell(tmp_path: Path) -> None:
    """Every field that reaches a command, filled with injection attempts: rejected at load, or
    passed as data (argv, JSON) so the canary file is never created."""
    canary = tmp_path / "canary"
    fields = ["address", "user", "python", "key", "app_dir", "check", "lock_dir", "known_hosts", "manager", "jump"]
    for field in fields:
        for nasty in SHELL_NASTIES:
            value = nasty.format(canary=canary)
            inv = tmp_path / "inv.yml"
            host = {
                "transport": "local",
                "python": sys.executable,
                "app_dir": str(tmp_path / "app"),
                "settle_seconds": 0,
                "check_timeout": 5,
                field: value,
            }
            inv.write_text(json.dumps({"groups": {"g": {"hosts": {"local": host}}}}))
            request = jobs.FleetRequest(
                hosts="local",
                inventory=[inv],
                reports=tmp_path / "reports",
                ssh_config=None,
                check=value if field == "check" else None,
            )
            try:
                jobs.premarket(request, console=Console(file=io.StringIO()))
            except (InventoryError, GuardianError):
                pass
            assert not canary.exists(), f"injection through {field}: {value!r}"


def test_hostile_rules_are_rejected_at_load(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text("signatures:\n  - name: evil\n    patterns: ['(a+)+$']\n    actions: [{restart: uw-daemon}]\n")
    try:
        load_rules([path])
    except InventoryError as exc:
        assert exc.line == 3 and "backtrack" in str(exc)
    else:
        raise AssertionError("a catastrophically backtracking pattern was accepted")


def test_report_store_refuses_names_from_hosts(tmp_path: Path) -> None:
    store = ReportStore(tmp_path / "reports")
    for name in ("../../etc/passwd", "a/../../b", "..", "x\n", ".bashrc", "/abs"):
        try:
            store.save_file("run", "h01", name, b"x")
        except GuardianError:
            continue
        raise AssertionError(f"stored {name!r}")
    assert not (tmp_path / "etc").exists()
