"""Inventory loading, layering and host patterns; malformed files name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from remediation.errors import HostSelectionError, InventoryError
from remediation.inventory import load_inventory

INVENTORY = """\
vars:
  user: deploy
  settle_seconds: 2
groups:
  prod:
    protected: true
    vars: {manager: supervisor, check_timeout: 30}
    children: [prod-west]
    hosts:
      h01: {address: 203.0.113.10}
      h02: {address: 203.0.113.11, manager: signal}
      h03: {address: 203.0.113.12, services: {uw-daemon: {name: uw_flow}}}
  prod-west:
    vars: {settle_seconds: 7}
    hosts:
      w01: {address: 203.0.113.20, port: 2222}
  staging:
    hosts:
      s01: {address: 198.51.100.5}
"""


@pytest.fixture
def inv_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(INVENTORY)
    return path


def names(inv_file: Path, pattern: str) -> list[str]:
    return [h.name for h in load_inventory([inv_file]).select(pattern)]


def test_layering_host_over_group_over_file_over_defaults(inv_file: Path) -> None:
    inv = load_inventory([inv_file], overrides={"check_timeout": 9})
    h01, h02, h03, w01 = (inv.hosts[n] for n in ("h01", "h02", "h03", "w01"))
    assert h01.get("user") == "deploy" and h01.get("settle_seconds") == 2.0
    assert h01.get("manager") == "supervisor" and h02.get("manager") == "signal"
    assert h01.get("check_timeout") == 9.0  # command line wins
    assert h01.get("app_dir") == "~/stock-bot"  # default
    assert w01.get("settle_seconds") == 7.0 and w01.get("port") == 2222
    assert w01.get("manager") == "supervisor"  # inherited from parent group prod
    assert h03.get("services")["uw-daemon"] == {
        "name": "uw_flow",
        "program": "uw_flow_daemon.py",
        "pidfile": "state/uw_flow_daemon.pid",
    }
    assert inv.is_protected(h01) and inv.is_protected(w01) and not inv.is_protected(inv.hosts["s01"])


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("prod", ["h01", "h02", "h03", "w01"]),
        ("prod,!h03", ["h01", "h02", "w01"]),
        ("prod:!prod-west", ["h01", "h02", "h03"]),
        ("h0*", ["h01", "h02", "h03"]),
        ("staging,h01", ["s01", "h01"]),
        ("prod:&prod-west", ["w01"]),
        ("all", ["h01", "h02", "h03", "w01", "s01"]),
        ("local", ["local"]),
    ],
)
def test_host_patterns(inv_file: Path, pattern: str, expected: list[str]) -> None:
    assert names(inv_file, pattern) == expected


def test_unknown_name_lists_what_exists(inv_file: Path) -> None:
    with pytest.raises(HostSelectionError) as info:
        names(inv_file, "prod,nosuch")
    assert "nosuch" in str(info.value) and "staging" in str(info.value) and "h01" in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("groups:\n  a:\n    hosts:\n      h1: {port: 99999}\n", 4, "groups.a.hosts.h1.port", "port number"),
        (
            "groups:\n  a:\n    hosts:\n      h1: {address: 'x; rm -rf /'}\n",
            4,
            "groups.a.hosts.h1.address",
            "not a valid host",
        ),
        (
            "groups:\n  a:\n    hosts:\n      h1: {python: 'python3 -c \"$(id)\"'}\n",
            4,
            "groups.a.hosts.h1.python",
            "shell",
        ),
        (
            "groups:\n  a:\n    hosts:\n      h1:\n        managr: supervisor\n",
            5,
            "groups.a.hosts.h1.managr",
            "unknown setting",
        ),
        (
            "groups:\n  a:\n    hosts:\n      h1: {manager: runit}\n",
            4,
            "groups.a.hosts.h1.manager",
            "expected one of",
        ),
        ("vars:\n  settle_seconds: soon\n", None, "vars.settle_seconds", "seconds"),
        ("groups:\n  a:\n    hosts: [h1]\n", 3, "groups.a.hosts", "expected a mapping"),
        ("groups:\n  a:\n    children: [b]\n", 3, "groups.a.children[0]", "unknown child group"),
        ("groups:\n  a:\n    hosts:\n      h1: {}\n      h1: {}\n", 5, "groups.a.hosts.h1", "duplicate key"),
        ("hosts:\n  h1: {}\n", 1, "hosts", "unknown top-level key"),
        (
            "groups:\n  a:\n    hosts:\n      h1: {services: {uw-daemon: {program: 'x y'}}}\n",
            4,
            "groups.a.hosts.h1.services.uw-daemon.program",
            "no spaces",
        ),
    ],
)
def test_malformed_inventory_names_file_line_and_key(
    tmp_path: Path, text: str, line: int | None, key: str, words: str
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    if line is None:
        line = 2
    with pytest.raises(InventoryError) as info:
        load_inventory([path])
    err = info.value
    assert err.path == str(path)
    assert err.line == line
    assert err.key == key
    assert words in str(err)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("groups:\n  a:\n    hosts: {h1: [\n")
    with pytest.raises(InventoryError) as info:
        load_inventory([path])
    assert info.value.path == str(path) and info.value.line is not None
    assert "YAML syntax error" in str(info.value)


def test_directory_of_files_merges(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("groups:\n  g1:\n    hosts:\n      h1: {address: 192.0.2.1}\n")
    (tmp_path / "b.yaml").write_text("groups:\n  g2:\n    hosts:\n      h2: {address: 192.0.2.2}\n")
    (tmp_path / "notes.txt").write_text("ignored")
    inv = load_inventory([tmp_path])
    assert [h.name for h in inv.select("g1,g2")] == ["h1", "h2"]


def test_group_vars_from_another_file_apply_to_its_hosts(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("vars: {user: alice}\ngroups:\n  g:\n    hosts:\n      h1: {address: 192.0.2.1}\n")
    (tmp_path / "b.yml").write_text("groups:\n  g:\n    vars: {user: bob, settle_seconds: 3}\n")
    inv = load_inventory([tmp_path / "a.yml", tmp_path / "b.yml"])
    assert inv.hosts["h1"].get("user") == "bob" and inv.hosts["h1"].get("settle_seconds") == 3.0


def test_group_cycle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("groups:\n  a: {children: [b]}\n  b: {children: [a]}\n")
    with pytest.raises(InventoryError, match="its own descendant"):
        load_inventory([path])


def test_inventory_task_shows_values_and_their_sources(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from remediation import jobs

    inv = tmp_path / "inv.yml"
    inv.write_text(
        "vars: {user: deploy}\ngroups:\n  g:\n    vars: {manager: signal}\n    hosts:\n"
        "      web1: {port: 2200, ping_url: 'https://hc-ping.com/0b9a-secret-uuid'}\n"
    )
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host web1\n  HostName 203.0.113.7\n  IdentityFile ~/.ssh/web\n")
    out = io.StringIO()
    request = jobs.FleetRequest(
        hosts="web1", inventory=[inv], ssh_config=str(ssh_config), overrides={"settle_seconds": 2}
    )
    assert jobs.show_inventory(request, console=Console(file=out, width=200)) == 0
    rows = {line.split("│")[0].strip(): line for line in out.getvalue().splitlines() if "│" in line}
    assert "deploy" in rows["user"] and f"file vars ({inv})" in rows["user"]
    assert "signal" in rows["manager"] and "group g" in rows["manager"]
    assert "2200" in rows["port"] and "host entry" in rows["port"]
    assert "203.0.113.7" in rows["address"] and "ssh_config" in rows["address"]
    assert "ssh_config" in rows["key"]
    assert "command line" in rows["settle_seconds"]
    assert "default" in rows["check_timeout"]
    assert "not shown: it is a secret" in rows["ping_url"] and "secret-uuid" not in out.getvalue()


EXAMPLE = Path(__file__).resolve().parent.parent / "inventory" / "example.yml.sample"


def test_with_no_inventory_file_the_error_says_where_it_looked_and_how_to_start(tmp_path: Path) -> None:
    directory = tmp_path / "inventory"
    directory.mkdir()
    (directory / "example.yml.sample").write_text(EXAMPLE.read_text())  # a fresh clone's inventory/
    inventory = load_inventory([directory])
    assert inventory.files == []  # the example is not read as an inventory
    assert [h.name for h in inventory.select("local")] == ["local"]  # this machine needs none
    for pattern in ("prod", "all"):
        with pytest.raises(HostSelectionError) as info:
            inventory.select(pattern)
        message = str(info.value)
        assert f"no inventory file in {directory}/" in message
        assert f"example.yml.sample to {directory}/prod.yml and edit it" in message and "invoke lab.up" in message


def test_a_missing_inventory_directory_says_how_to_start(tmp_path: Path) -> None:
    missing = tmp_path / "inventory"
    with pytest.raises(InventoryError) as info:
        load_inventory([missing])
    assert info.value.path == str(missing) and "no such inventory file or directory" in str(info.value)
    assert f"{missing}/prod.yml" in str(info.value) and "invoke lab.up" in str(info.value)


def test_the_shipped_example_inventory_is_valid_and_means_what_its_comments_say(tmp_path: Path) -> None:
    copy = tmp_path / "prod.yml"
    copy.write_text(EXAMPLE.read_text())
    inventory = load_inventory([copy])
    assert [h.name for h in inventory.select("prod")] == ["droplet-1", "droplet-2", "droplet-3"]
    assert [h.name for h in inventory.select("all")] == ["droplet-1", "droplet-2", "droplet-3", "droplet-4"]
    hosts = inventory.hosts
    assert hosts["droplet-1"].settings["services"]["uw-daemon"]["name"] == "uw-daemon"  # the service key
    assert hosts["droplet-3"].settings["services"]["uw-daemon"]["name"] == "uw_flow"
    assert hosts["droplet-3"].settings["manager_options"] == {"supervisor_conf": "/etc/supervisor/supervisord.conf"}
    assert hosts["droplet-4"].settings["jump"] == "root@203.0.113.20"
    assert inventory.is_protected(hosts["droplet-3"]) and not inventory.is_protected(hosts["droplet-4"])
    assert hosts["droplet-1"].settings["metrics_dir"] == "/var/lib/node_exporter/textfile"
    assert hosts["droplet-1"].settings["ping_url"] is None  # commented out: pings are off by default


def test_a_top_level_hosts_key_says_hosts_belong_to_groups(tmp_path: Path) -> None:
    path = tmp_path / "flat.yml"
    path.write_text("vars: {user: root}\nhosts:\n  h1: {address: 192.0.2.1}\n")
    with pytest.raises(InventoryError) as info:
        load_inventory([path])
    assert info.value.line == 2 and info.value.key == "hosts" and "listed under a group" in str(info.value)


def test_a_group_cycle_names_the_file_and_line(tmp_path: Path) -> None:
    """Found by the property-based tests: a cycle of child groups named no file."""
    path = tmp_path / "gen.yml"
    path.write_text(yaml.safe_dump({"children": {"children": {"children": None}}}))
    with pytest.raises(InventoryError, match="its own descendant") as caught:
        load_inventory([path])
    assert caught.value.path == str(path) and caught.value.line is not None


def test_a_date_like_value_that_is_no_date_names_the_file_line_and_key(tmp_path: Path) -> None:
    """PyYAML reads 2026-13-45 as a date and raised a bare ValueError (a traceback)."""
    path = tmp_path / "inv.yml"
    path.write_text("groups:\n  g:\n    hosts:\n      h1: {address: 192.0.2.1, check_timeout: 2026-13-45}\n")
    with pytest.raises(InventoryError) as info:
        load_inventory([path])
    assert (info.value.line, info.value.key) == (4, "groups.g.hosts.h1.check_timeout")
    assert "quote it" in str(info.value)
