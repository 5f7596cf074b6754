"""Hostile and malformed input: no injection, clear errors naming file and key, never a traceback."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CommandRun, run_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ssh_stub import StubSSHServer, write_ed25519_key

from remediation.errors import GuardianError, InventoryError
from remediation.inventory import load_inventory
from remediation.reporting.report import HostReport, ReportStore
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


def nasty_values(canary: Path) -> list[str]:
    """Each injection attempt as a one-line value (newlines are refused everywhere: see
    test_a_newline_in_any_field_is_rejected_at_load_naming_it)."""
    return [nasty.format(canary=canary) for nasty in SHELL_NASTIES if "\n" not in nasty]


CHECK_SCRIPT = "import os\nprint('check ran in', os.getcwd())\nprint('RESULT: HEALTHY')\n"
#: Validated at load: only plain names and paths, so every injection attempt is refused there.
REJECTED_AT_LOAD = ["address", "user", "python", "manager"]
#: Paths the runner uses on the host (``transport: local`` here): accepted, and only ever data.
HOST_PATHS = ["app_dir", "check", "lock_dir"]
#: Used only to open an SSH session: see test_ssh_settings_are_data_on_the_way_to_a_host.
SSH_ONLY = ["key", "known_hosts", "jump"]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory (relative paths in the values land there), with an app
    whose check passes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app" / "state").mkdir(parents=True)
    (tmp_path / "app" / "pre_market_health_check.py").write_text(CHECK_SCRIPT)
    return tmp_path


def local_premarket(tmp_path: Path, field: str, value: str, *, app: str = "app") -> CommandRun:
    host = {
        "transport": "local",
        "python": sys.executable,
        "app_dir": str(tmp_path / app),
        "settle_seconds": 0,
        "check_timeout": 5,
        field: value,
    }
    inv = tmp_path / "inv.yml"
    inv.write_text(json.dumps({"groups": {"g": {"hosts": {"local": host}}}}))
    return run_command(
        "premarket",
        "local",
        inventory=[inv],
        reports=tmp_path / "reports",
        check=value if field == "check" else None,  # --check too
    )


@pytest.mark.parametrize("field", [*REJECTED_AT_LOAD, *HOST_PATHS, *SSH_ONLY])
def test_a_newline_in_any_field_is_rejected_at_load_naming_it(scratch: Path, field: str) -> None:
    canary = scratch / "canary"
    with pytest.raises(InventoryError) as info:
        local_premarket(scratch, field, f"x\ntouch {canary}")
    assert info.value.key == f"groups.g.hosts.local.{field}" and info.value.path == str(scratch / "inv.yml")
    assert not canary.exists()


@pytest.mark.parametrize("field", REJECTED_AT_LOAD)
def test_shell_metacharacters_in_names_are_rejected_at_load(scratch: Path, field: str) -> None:
    canary = scratch / "canary"
    for value in nasty_values(canary):
        with pytest.raises(InventoryError) as info:
            local_premarket(scratch, field, value)
        assert info.value.key == f"groups.g.hosts.local.{field}", value
        assert repr(value) in str(info.value), str(info.value)  # the message quotes what it refused
    assert not canary.exists()


def test_shell_metacharacters_in_host_paths_are_only_ever_paths(scratch: Path) -> None:
    """The app dir, the check script and the lock dir, named like injections, are used as the
    paths they spell: the check really runs from such a folder and by such a name, the lock dir
    is really probed, and the canary file is never created."""
    canary = scratch / "canary"
    for value in nasty_values(canary):
        app = scratch / value  # a relative value: below the working directory
        (app / "state").mkdir(parents=True)
        (app / "pre_market_health_check.py").write_text(CHECK_SCRIPT)
        result = local_premarket(scratch, "app_dir", value)
        host = result.report.hosts[0]
        assert (result.code, host.outcome) == (0, "healthy"), host.reason
        assert host.before is not None and f"check ran in {app}" in host.before["tail"]

        script = scratch / "app" / value
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(CHECK_SCRIPT)
        result = local_premarket(scratch, "check", value)
        host = result.report.hosts[0]
        assert (result.code, host.outcome) == (0, "healthy"), host.reason
        assert host.before is not None and "RESULT: HEALTHY" in host.before["tail"]

        (scratch / "app2").mkdir(exist_ok=True)
        (scratch / "app2" / "pre_market_health_check.py").write_text(CHECK_SCRIPT)
        locks = scratch / "app2" / value
        locks.mkdir(parents=True)
        (locks / "orders.lock").write_text(f"{os.getpid()}\n")  # held by a live process: kept
        result = local_premarket(scratch, "lock_dir", value, app="app2")
        host = result.report.hosts[0]
        assert host.outcome == "healthy" and host.warnings == []
        assert [(lock["name"], lock["stale"]) for lock in host.locks] == [("orders.lock", False)]
        assert (locks / "orders.lock").exists()
    assert not canary.exists()


@pytest.mark.parametrize("field", SSH_ONLY)
def test_ssh_settings_load_as_given_and_a_local_host_ignores_them(scratch: Path, field: str) -> None:
    canary = scratch / "canary"
    for value in nasty_values(canary):
        result = local_premarket(scratch, field, value)
        assert result.report.hosts[0].outcome == "healthy"
    assert not canary.exists()


def ssh_premarket(
    tmp_path: Path, server: StubSSHServer, *, accept_new_host_keys: bool = False, **settings: str
) -> HostReport:
    host = {
        "address": "127.0.0.1",
        "port": server.port,
        "user": "root",
        "connect_timeout": 5,
        "host_deadline": 20,
        **settings,
    }
    inv = tmp_path / "inv.yml"
    inv.write_text(json.dumps({"groups": {"g": {"hosts": {"h1": host}}}}))
    result = run_command(
        "premarket", "h1", inventory=[inv], reports=tmp_path / "reports", accept_new_host_keys=accept_new_host_keys
    )
    return result.report.hosts[0]


def test_ssh_settings_are_data_on_the_way_to_a_host(
    scratch: Path, ssh_server: StubSSHServer, loopback_only: list[str]
) -> None:
    """``key``, ``known_hosts`` and ``jump`` matter only when a session is opened: each one,
    named like an injection, is used there as the file or host name it spells, over real SSH to
    a loopback server, and never reaches a shell."""
    canary = scratch / "canary"
    known_hosts = scratch / "known_hosts"
    known_hosts.write_text(ssh_server.known_hosts_line())
    for value in nasty_values(canary):
        # key: the private key at that path is read and offered to the host.
        (scratch / value).parent.mkdir(parents=True, exist_ok=True)
        key = write_ed25519_key(scratch / value)
        ssh_server.offered.clear()
        host = ssh_premarket(scratch, ssh_server, key=value, known_hosts=str(known_hosts))
        assert host.outcome == "unreachable" and "authentication failed for root@127.0.0.1" in host.reason
        assert ssh_server.offered == [("root", key.get_base64())]
        (scratch / value).unlink()

        # known_hosts: the host's key is looked up in that file, and recorded there when asked.
        host = ssh_premarket(scratch, ssh_server, known_hosts=value)
        assert host.outcome == "host-key-rejected"
        assert f"is not in {value}; refusing to connect" in host.reason
        host = ssh_premarket(scratch, ssh_server, known_hosts=value, accept_new_host_keys=True)
        assert host.outcome == "unreachable"  # trusted now; then no key to log in with
        assert (scratch / value).read_text() == ssh_server.known_hosts_line()
        (scratch / value).unlink()

        # jump: a host name to connect through, looked up as such (and unknown).
        connections = ssh_server.connections
        loopback_only.clear()
        host = ssh_premarket(scratch, ssh_server, jump=value, known_hosts=str(known_hosts))
        assert host.outcome == "unreachable"
        assert host.reason.startswith(
            f"jump host {value} ({value}:22, the `jump` of h1) failed: cannot resolve {value}"
        )
        assert loopback_only == [value]
        assert ssh_server.connections == connections  # h1 itself was never reached
    assert not canary.exists()


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
