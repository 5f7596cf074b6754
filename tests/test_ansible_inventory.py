"""Ansible inventories (INI and YAML) read as Guardian inventories; errors name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediation.errors import InventoryError
from remediation.inventory import Inventory, load_inventory
from remediation.inventory.ansible_model import AnsibleDocument
from remediation.inventory.loader import is_ansible_inventory, load_ansible_inventory, load_inventory_document

FIXTURES = Path(__file__).parent / "fixtures" / "inventories"
FLEET = ("fleet.ini", "fleet.yml", "fleet-native.yml")


def load(tmp_path: Path, name: str, text: str) -> Inventory:
    path = tmp_path / name
    path.write_text(text)
    return load_inventory([path])


def fail(tmp_path: Path, name: str, text: str) -> InventoryError:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InventoryError) as info:
        load_inventory([path])
    assert info.value.path == str(path)
    return info.value


# --- the same fleet in three formats ---------------------------------------------------------


@pytest.fixture(scope="module")
def fleets() -> dict[str, Inventory]:
    return {name: load_inventory([FIXTURES / name]) for name in FLEET}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (
            "all",
            [
                "bastion",
                "localhost",
                "h01",
                "h02",
                "h03",
                "edge01.lab.example",
                "edge02.lab.example",
                "edge03.lab.example",
            ],
        ),
        ("prod", ["h01", "h02", "h03"]),
        ("core", ["h01", "h02"]),  # child of a child of lab
        ("lab:!edge", ["h01", "h02", "h03"]),
        ("lab,!canary", ["h01", "h03", "edge02.lab.example", "edge03.lab.example"]),
        ("canary:&prod", ["h02"]),
        ("edge0*", ["edge01.lab.example", "edge02.lab.example", "edge03.lab.example"]),
        ("h0*,!legacy", ["h01", "h02"]),
        ("c*", ["localhost", "h01", "h02", "edge01.lab.example"]),
        ("ungrouped", ["bastion"]),
        ("local", ["local"]),
    ],
)
def test_same_fleet_same_selection(fleets: dict[str, Inventory], pattern: str, expected: list[str]) -> None:
    for name in FLEET:
        assert [h.name for h in fleets[name].select(pattern)] == expected, name


def test_same_fleet_same_settings_and_groups(fleets: dict[str, Inventory]) -> None:
    native = fleets["fleet-native.yml"]
    for name in ("fleet.ini", "fleet.yml"):
        ansible = fleets[name]
        assert list(ansible.hosts) == list(native.hosts)
        assert ansible.groups == native.groups
        for host, spec in native.hosts.items():
            assert dict(ansible.hosts[host].settings) == dict(spec.settings), (name, host)
            assert ansible.hosts[host].groups == spec.groups, (name, host)
            assert ansible.is_protected(ansible.hosts[host]) == native.is_protected(spec)


def test_fleet_values_as_ansible_means_them(fleets: dict[str, Inventory]) -> None:
    for name in ("fleet.ini", "fleet.yml"):
        hosts = fleets[name].hosts
        assert hosts["bastion"].address == "198.18.1.2" and hosts["bastion"].get("user") == "ops"
        assert hosts["h01"].get("user") == "root" and hosts["h01"].get("key") == "/work/main/.lab/id_ed25519"
        assert hosts["h01"].get("python") == "/usr/bin/python3"  # ansible_python_interpreter
        assert hosts["h01"].get("manager") == "supervisor" and hosts["h02"].get("manager") == "signal"
        assert hosts["h01"].get("settle_seconds") == 7.0 and hosts["h01"].get("check_timeout") == 30.0
        assert hosts["h02"].get("check_args") == ["--quick"]
        assert hosts["h03"].get("port") == 2222 and hosts["h03"].get("user") == "admin"
        edge = hosts["edge02.lab.example"]
        assert edge.address == "edge02.lab.example" and edge.get("port") == 2222
        assert edge.get("manager") == "process-compose" and edge.get("settle_seconds") == 2.5
        assert hosts["localhost"].is_local and hosts["localhost"].get("app_dir") == "/work/main/examples/app"
        assert fleets[name].is_protected(hosts["h03"]) and not fleets[name].is_protected(edge)


# --- detection and the integration hook ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("hosts", "# fleet\n\n[web]\nweb01\n", True),
        ("hosts", "web01 ansible_host=192.0.2.1\n", True),
        ("hosts", "web01:2222\n[db]\n", True),
        ("inventory.ini", "   # comment only at first\n; another\n[web:children]\n", True),
        ("hosts.yml", "all:\n  hosts:\n    web01:\n", True),
        ("hosts.yml", "web:\n  hosts: {web01: null}\n", True),
        ("hosts.yml", "---\nall:\n", True),
        ("fleet.yml", "vars: {user: root}\ngroups:\n  a: {hosts: {h1: {}}}\n", False),
        ("fleet.yml", "groups:\n  a:\n", False),
        ("fleet.yml", "vars: {}\nall: {}\n", False),  # native with a stray key: the native error applies
        ("fleet.yml", "grups:\n  prod: {}\n", False),
        ("fleet.yml", "", False),
        ("fleet.yml", "---\n# nothing\n", False),
        ("fleet.yml", "groups: [\n", False),  # YAML syntax error: the native loader reports it
    ],
)
def test_is_ansible_inventory(name: str, text: str, expected: bool) -> None:
    assert is_ansible_inventory(Path(name), text) is expected


def test_native_files_are_loaded_as_before(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yml"
    path.write_text("groups:\n  a:\n    hosts:\n      h1: {address: 192.0.2.1}\n")
    doc = load_inventory_document(path)
    assert not isinstance(doc, AnsibleDocument)
    assert doc.data == {"groups": {"a": {"hosts": {"h1": {"address": "192.0.2.1"}}}}}


def test_converted_document_is_native_shape(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("[all:vars]\nansible_user=deploy\n\n[web]\nweb01 ansible_host=192.0.2.1 foo=bar\n")
    doc = load_ansible_inventory(path)
    assert doc.data == {
        "vars": {"user": "deploy"},
        "groups": {"web": {"hosts": {"web01": {"address": "192.0.2.1"}}}},
    }
    assert doc.line_of(("groups", "web", "hosts", "web01", "address")) == 5
    assert doc.line_of(("vars", "user")) == 2


def test_ansible_file_in_an_inventory_directory(tmp_path: Path) -> None:
    (tmp_path / "native.yml").write_text("groups:\n  web:\n    vars: {settle_seconds: 3}\n")
    (tmp_path / "ansible.yml").write_text("all:\n  children:\n    web:\n      hosts:\n        web01:\n")
    inv = load_inventory([tmp_path])
    assert [h.name for h in inv.select("web")] == ["web01"]
    assert inv.hosts["web01"].get("settle_seconds") == 3.0


# --- INI details -----------------------------------------------------------------------------


def test_ini_ranges_comments_quotes_and_literals(tmp_path: Path) -> None:
    inv = load(
        tmp_path,
        "hosts",
        "; real-world shaped\n"
        "[web]\n"
        "web[01:03].example.com guardian_settle_seconds=1.5   # three web hosts\n"
        "db-[a:c] ansible_port='2201' ansible_user=\"svc\"\n"
        "odd[1:9:4] ansible_ssh_port=2200 ansible_ssh_user=legacy ansible_ssh_host=192.0.2.9\n"
        "\n"
        "[web:vars]\n"
        "guardian_check_args=['--quick', '--no-alpaca']\n"
        "guardian_protected=yes\n"
        "unrelated = something with spaces\n",
    )
    assert list(inv.groups["web"]) == [
        "web01.example.com", "web02.example.com", "web03.example.com",
        "db-a", "db-b", "db-c", "odd1", "odd5", "odd9",
    ]  # fmt: skip
    assert inv.hosts["web02.example.com"].get("settle_seconds") == 1.5
    assert inv.hosts["db-b"].get("port") == 2201 and inv.hosts["db-b"].get("user") == "svc"
    odd = inv.hosts["odd5"]
    assert odd.get("port") == 2200 and odd.get("user") == "legacy" and odd.address == "192.0.2.9"
    assert odd.get("check_args") == ["--quick", "--no-alpaca"] and odd.get("protected") is True


def test_ini_implicit_groups_and_all(tmp_path: Path) -> None:
    inv = load(
        tmp_path,
        "hosts.ini",
        "loner ansible_host=192.0.2.5\n"
        "[all]\n"
        "also-alone\n"
        "web01\n"
        "[web]\n"
        "web01\n"
        "[all:vars]\n"
        "guardian_manager=signal\n"
        "[all:children]\n"
        "web\n",
    )
    assert inv.groups["ungrouped"] == ["loner", "also-alone"]  # web01 is in a real group
    assert inv.hosts["web01"].groups == ("web",)
    assert all(inv.hosts[h].get("manager") == "signal" for h in ("loner", "also-alone", "web01"))


def test_ini_host_vars_merge_and_later_wins(tmp_path: Path) -> None:
    inv = load(
        tmp_path,
        "hosts",
        "[a]\nh1 ansible_host=192.0.2.1 guardian_settle_seconds=1\n[b]\nh1 guardian_settle_seconds=2\n",
    )
    h1 = inv.hosts["h1"]
    assert h1.address == "192.0.2.1" and h1.get("settle_seconds") == 2.0 and h1.groups == ("a", "b")


def test_ini_explicit_port_var_beats_pattern_port(tmp_path: Path) -> None:
    inv = load(tmp_path, "hosts", "[a]\nh1:2200 ansible_port=2201\nh2:2202\n")
    assert inv.hosts["h1"].get("port") == 2201 and inv.hosts["h2"].get("port") == 2202


# --- YAML details ----------------------------------------------------------------------------


def test_yaml_nesting_shared_hosts_and_nulls(tmp_path: Path) -> None:
    inv = load(
        tmp_path,
        "hosts.yml",
        "all:\n"
        "  hosts:\n"
        "    web01: {ansible_host: 192.0.2.1}\n"  # also in web: not ungrouped
        "    solo:\n"
        "  children:\n"
        "    region:\n"
        "      children:\n"
        "        zone:\n"
        "          children:\n"
        "            web:\n"
        "              hosts: {web01: null, web02: null}\n"
        "              vars: {guardian_services: {uw-daemon: {name: uw_flow}}}\n"
        "        empty:\n"
        "    web:\n"  # the same group again: merged
        "      hosts:\n"
        "        web03:\n",
    )
    assert inv.groups["region"] == ["web01", "web02", "web03"]
    assert inv.groups["ungrouped"] == ["solo"] and inv.groups["empty"] == []
    assert inv.hosts["web01"].address == "192.0.2.1"
    assert inv.hosts["web03"].get("services")["uw-daemon"]["name"] == "uw_flow"
    assert inv.hosts["web01"].groups == ("region", "zone", "web")


def test_yaml_string_port_and_top_level_groups(tmp_path: Path) -> None:
    inv = load(tmp_path, "hosts.yaml", "web:\n  hosts:\n    web01: {ansible_port: '2222'}\n")
    assert inv.hosts["web01"].get("port") == 2222 and inv.groups["web"] == ["web01"]


# --- variable mapping and precedence ---------------------------------------------------------


def test_sibling_groups_apply_in_ansible_order(tmp_path: Path) -> None:
    # Ansible: same depth -> ansible_group_priority, then name: "zeta" applies after "alpha" and wins.
    text = "[zeta]\nh1\n[zeta:vars]\nguardian_manager=signal\n[alpha]\nh1\nh2\n[alpha:vars]\nguardian_manager=systemd\n"
    inv = load(tmp_path, "hosts", text)
    assert inv.hosts["h1"].get("manager") == "signal"
    assert list(inv.hosts) == ["h1", "h2", "local"]  # file order is kept otherwise
    prioritised = text.replace("guardian_manager=systemd", "guardian_manager=systemd\nansible_group_priority=10")
    assert load(tmp_path, "hosts2", prioritised).hosts["h1"].get("manager") == "systemd"


def test_guardian_vars_win_over_ansible_vars_in_one_block(tmp_path: Path) -> None:
    inv = load(
        tmp_path,
        "hosts",
        "[a]\n"
        "h1 ansible_user=ansible guardian_user=guardian ansible_python_interpreter=/opt/py guardian_python=py3\n"
        "h2 ansible_python_interpreter=auto_silent\n"
        "h3 ansible_python_interpreter='/usr/bin/env python3.11'\n"
        "h4 ansible_private_key_file=~/.ssh/a ansible_ssh_private_key_file=~/.ssh/b\n",
    )
    assert inv.hosts["h1"].get("user") == "guardian" and inv.hosts["h1"].get("python") == "py3"
    assert inv.hosts["h2"].get("python") == "python3"  # Guardian's default
    assert inv.hosts["h3"].get("python") == "python3.11"
    assert inv.hosts["h4"].get("key") == "~/.ssh/b"


def test_connection_local_and_back_to_ssh(tmp_path: Path) -> None:
    inv = load(
        tmp_path,
        "hosts",
        "[a]\nh1\nh2 ansible_connection=ssh\nh3 ansible_connection=docker\n[a:vars]\nansible_connection=local\n",
    )
    assert inv.hosts["h1"].is_local and not inv.hosts["h2"].is_local
    assert inv.hosts["h3"].is_local  # unsupported connection types are ignored


# --- malformed files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "line", "key", "words"),
    [
        ("hosts", "[web]\nweb01 ansible_port=abc\n", 2, "[web] web01 ansible_port", "port number"),
        ("hosts", "[web]\nweb01\n\n[web:unknown]\nx=1\n", 4, "[web:unknown]", "unknown section type"),
        ("hosts", "[web]\nweb01\n]\n", 3, "[web] ]", "unbalanced"),
        ("hosts", "[web]\nweb01]\n", 2, "[web] web01]", "unbalanced"),
        ("hosts", "[web\nweb01\n", 1, "[web", "malformed section header"),
        ("hosts", "[web:vars]\nno equals here\n", 2, "[web:vars]", "expected key=value"),
        ("hosts", "[web]\nweb01 oops\n", 2, "[web] web01", "expected key=value"),
        ("hosts", "[web]\nweb01 a='unclosed\n", 2, "[web]", "cannot parse host line"),
        ("hosts", "[web]\nweb[3:1]\n", 2, "[web] web[3:1]", "start after its end"),
        ("hosts", "[web]\nweb[01:100]\n", 2, "[web] web[01:100]", "same length"),
        ("hosts", "[web]\nweb01:ssh\n", 2, "[web] web01:ssh", "numeric port"),
        ("hosts", "[web]\nfe80::1\n", 2, "[web] fe80::1", "IPv6"),
        ("hosts", "[web:children]\ndb\n", 2, "[web:children] db", "unknown child group"),
        (
            "hosts",
            '[web]\nweb01 ansible_host=\'{{ lookup("env", "IP") }}\'\n',
            2,
            "[web] web01 ansible_host",
            "templates",
        ),
        ("hosts", "[web:vars]\nguardian_address=192.0.2.1\n", 2, "[web:vars] guardian_address", "host entry"),
        ("hosts", "[web:vars]\nguardian_managr=signal\n", 2, "[web:vars] guardian_managr", "unknown setting"),
        ("hosts", "[web]\nbad!name\n", 2, "[web] bad!name", "not a valid name"),
        ("hosts", "[web:vars]\nansible_group_priority=high\n", 2, "[web:vars] ansible_group_priority", "whole number"),
        # shell metacharacters in guardian_ vars are rejected by the existing validators
        (
            "hosts",
            "[web]\nweb01 guardian_python='python3; rm -rf /'\n",
            2,
            "[web] web01 guardian_python",
            "shell characters",
        ),
        (
            "hosts",
            "[web:vars]\nguardian_app_dir=/srv/app\nguardian_services={'uw-daemon': {'program': 'x `id`'}}\n",
            3,
            "[web:vars] guardian_services.uw-daemon.program",
            "shell characters",
        ),
        (
            "hosts.yml",
            "all:\n  children:\n    web:\n      hosts:\n        web01:\n          ansible_port: abc\n",
            6,
            "all.children.web.hosts.web01.ansible_port",
            "port number",
        ),
        (
            "hosts.yml",
            "all:\n  children:\n    web:\n      hosts: [web01]\n",
            4,
            "all.children.web.hosts",
            "expected a mapping",
        ),
        (
            "hosts.yml",
            "all:\n  children:\n    web:\n      host:\n        web01:\n",
            4,
            "all.children.web.host",
            "unknown group key",
        ),
        (
            "hosts.yml",
            "all:\n  vars:\n    guardian_manager_options:\n      supervisorctl: 'x; y'\n",
            4,
            "all.vars.guardian_manager_options.supervisorctl",
            "shell characters",
        ),
        (
            "hosts.yml",
            "all:\n  hosts:\n    web01:\n      guardian_user: 'root$(id)'\n",
            4,
            "all.hosts.web01.guardian_user",
            "not a valid user",
        ),
        ("hosts.yml", "all:\n  hosts:\n    web01: just-a-string\n", 3, "all.hosts.web01", "must be a mapping"),
    ],
)
def test_malformed_names_file_line_and_key(
    tmp_path: Path, name: str, text: str, line: int, key: str, words: str
) -> None:
    err = fail(tmp_path, name, text)
    assert (err.line, err.key) == (line, key), str(err)
    assert words in str(err)


def test_cron_unsafe_schedule_is_rejected_with_its_line(tmp_path: Path) -> None:
    err = fail(
        tmp_path,
        "hosts",
        "[web]\nw1\n[web:vars]\nguardian_schedules=[{'name': 'x', 'schedule': '* * * * *', 'check': 'a%b'}]\n",
    )
    assert err.line == 4 and err.key == "[web:vars] guardian_schedules[0]" and "crontab" in str(err)


def test_yaml_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text("- all\n- web\n")
    with pytest.raises(InventoryError) as info:
        load_ansible_inventory(path)
    assert info.value.path == str(path) and info.value.line == 1 and "mapping of groups" in str(info.value)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  hosts:\n    web01: {a: [\n")
    with pytest.raises(InventoryError) as info:
        load_ansible_inventory(path)
    assert info.value.line is not None and "YAML syntax error" in str(info.value)


def test_huge_range_is_refused(tmp_path: Path) -> None:
    err = fail(tmp_path, "hosts", "[web]\nweb[0:99999999]\n")
    assert err.line == 2 and "at most" in str(err)


# --- group_vars/ and host_vars/ next to the inventory ----------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _vars_dir_fleet(tmp_path: Path) -> Path:
    inventory = _write(
        tmp_path / "hosts.ini",
        "[web]\n"
        "web01 ansible_port=2201\n"
        "web02\n"
        "\n"
        "[db]\n"
        "db01\n"
        "\n"
        "[web:vars]\n"
        "ansible_user=deploy\n"
        "guardian_settle_seconds=5\n"
        "\n"
        "[all:vars]\n"
        "guardian_app_dir=/srv/bot\n",
    )
    _write(tmp_path / "group_vars" / "web.yml", "---\nguardian_settle_seconds: 9\nguardian_check_timeout: 40\n")
    # group_vars/all as a directory of files, read in sorted order; hidden and other files ignored.
    _write(tmp_path / "group_vars" / "all" / "10-paths.yml", "guardian_app_dir: /opt/bot\nansible_user: admin\n")
    _write(tmp_path / "group_vars" / "all" / "20-python.yaml", "ansible_python_interpreter: /usr/bin/python3.11\n")
    _write(tmp_path / "group_vars" / "all" / ".10-paths.yml.swp", "guardian_app_dir: [broken\n")
    _write(tmp_path / "group_vars" / "all" / "README.txt", "not vars\n")
    _write(tmp_path / "group_vars" / "db", '{"ansible_user": "postgres"}\n')  # no extension: still read
    _write(tmp_path / "host_vars" / "web01.yml", "ansible_host: 10.0.0.5\nansible_port: 2202\n")
    _write(tmp_path / "host_vars" / "nosuchhost.yml", "ansible_host: 10.9.9.9\n")  # not in inventory
    return inventory


def test_group_vars_and_host_vars_directories_are_read(tmp_path: Path) -> None:
    inventory = load_inventory([_vars_dir_fleet(tmp_path)])
    web01, web02, db01 = (inventory.hosts[n] for n in ("web01", "web02", "db01"))
    # host_vars/web01.yml beats the inline host vars; the file's address is used.
    assert (web01.address, web01.get("port")) == ("10.0.0.5", 2202)
    # group_vars/web.yml beats [web:vars]; [web:vars] keys it does not set still apply.
    assert web02.get("settle_seconds") == 9 and web02.get("check_timeout") == 40
    assert web02.get("user") == "deploy"
    # group_vars/all/ beats [all:vars]; later files in the directory add to earlier ones.
    assert web02.get("app_dir") == "/opt/bot" and db01.get("app_dir") == "/opt/bot"
    assert db01.get("python") == "/usr/bin/python3.11"
    assert db01.get("user") == "postgres"  # group_vars/db (no extension) beats group_vars/all
    assert "nosuchhost" not in inventory.hosts
    # `invoke inventory` names the file each value came from.
    assert web02.sources["settle_seconds"] == f"group web ({tmp_path / 'group_vars' / 'web.yml'})"
    assert web02.sources["user"] == f"group web ({tmp_path / 'hosts.ini'})"
    assert db01.sources["python"] == f"file vars ({tmp_path / 'group_vars' / 'all' / '20-python.yaml'})"
    assert web01.sources["port"].startswith(f"host entry ({tmp_path / 'host_vars' / 'web01.yml'}:2)")


@pytest.mark.parametrize(
    ("rel", "text", "message", "line", "key"),
    [
        # a bad value: names that file, line and key
        (
            "group_vars/web.yml",
            "guardian_settle_seconds: 9\nguardian_check_timeout: soon\n",
            None,
            2,
            "guardian_check_timeout",
        ),
        # a vars file that is not a mapping
        ("host_vars/web02.yml", "- ansible_host: 10.0.0.6\n", "mapping of variables", 1, None),
        # an address in group vars is refused as it is inline
        ("group_vars/db.yml", "ansible_host: 10.0.0.7\n", "only a host entry", 1, None),
    ],
)
def test_bad_group_or_host_vars_files_are_named_with_line_and_key(
    tmp_path: Path, rel: str, text: str, message: str | None, line: int, key: str | None
) -> None:
    inventory = _vars_dir_fleet(tmp_path)
    bad = _write(tmp_path / rel, text)
    with pytest.raises(InventoryError, match=message) as info:
        load_inventory([inventory])
    assert (info.value.path, info.value.line) == (str(bad), line)
    if key is not None:
        assert info.value.key == key
