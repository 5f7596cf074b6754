"""The inventory loader reads and parses each file once; ssh_config is read in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from remediation.errors import InventoryError
from remediation.inventory import load_inventory, loader
from remediation.inventory.model import HostSpec
from remediation.inventory.sshconfig import load_ssh_config, ssh_config_path, ssh_config_values

NATIVE = "groups:\n  a:\n    hosts:\n      h1: {address: 192.0.2.1}\n"
ANSIBLE_YAML = "all:\n  children:\n    web:\n      hosts:\n        web01: {ansible_host: 192.0.2.2}\n"
ANSIBLE_INI = "[web]\nweb01 ansible_host=192.0.2.3\n"


@pytest.mark.parametrize(
    ("name", "text", "composed"), [("a.yml", NATIVE, 1), ("b.yml", ANSIBLE_YAML, 1), ("hosts", ANSIBLE_INI, 0)]
)
def test_each_file_is_read_once_and_parsed_at_most_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, composed: int
) -> None:
    path = tmp_path / name
    path.write_text(text)
    calls: dict[str, int] = {"read": 0, "compose": 0}
    real_read, real_compose = loader.read_text, loader.compose

    def read(p: Path) -> str:
        calls["read"] += 1
        return real_read(p)

    def compose(p: Path, t: str) -> Any:
        calls["compose"] += 1
        return real_compose(p, t)

    monkeypatch.setattr(loader, "read_text", read)
    monkeypatch.setattr(loader, "compose", compose)
    inventory = load_inventory([path])
    assert calls == {"read": 1, "compose": composed}
    assert len([h for h in inventory.hosts if h != "local"]) == 1


def test_a_tag_safe_load_rejects_keeps_the_file_native(tmp_path: Path) -> None:
    """The format is sniffed on what yaml.safe_load would read, as before: a custom tag on a
    mapping makes safe_load fail, so the file is native and the native error applies."""
    path = tmp_path / "a.yml"
    path.write_text("all: !foo {hosts: {h1: null}}\n")
    with pytest.raises(InventoryError, match="unknown top-level key") as info:
        load_inventory([path])
    assert info.value.path == str(path) and info.value.line == 1 and info.value.key == "all"


def test_merge_keys_are_reported_whichever_format_the_file_looks_like(tmp_path: Path) -> None:
    path = tmp_path / "a.yml"
    path.write_text("base: &b {hosts: {h1: null}}\nweb:\n  <<: *b\n")
    with pytest.raises(InventoryError, match="invalid value") as info:
        load_inventory([path])
    assert info.value.line == 3


def test_no_ssh_config_is_an_empty_one(tmp_path: Path) -> None:
    for path in (None, "", str(tmp_path / "missing")):
        assert ssh_config_path(path) is None
        assert dict(load_ssh_config(path).lookup("web1")) == {"hostname": "web1"}


def test_ssh_config_values_fill_only_what_the_inventory_left_at_its_default(tmp_path: Path) -> None:
    config_path = tmp_path / "ssh_config"
    config_path.write_text("Host web1\n  HostName 203.0.113.7\n  User admin\n  Port 2201\n  IdentityFile ~/.ssh/web\n")
    inv = tmp_path / "inv.yml"
    inv.write_text("groups:\n  g:\n    hosts:\n      web1: {port: 2200}\n      local2: {transport: local}\n")
    inventory = load_inventory([inv])
    config = load_ssh_config(str(config_path))
    values = ssh_config_values(inventory.hosts["web1"], config, path=str(config_path))
    source = f"ssh_config ({config_path})"
    assert values["address"] == ("web1 -> 203.0.113.7", source)
    assert values["user"] == ("admin", source)
    assert values["key"][1] == source and values["key"][0][0].endswith("/.ssh/web")
    assert "port" not in values  # the inventory's host entry wins
    assert ssh_config_values(inventory.hosts["local2"], config, path=str(config_path)) == {}
    plain = HostSpec("other", {"transport": "ssh"}, sources={"user": "default"})
    assert ssh_config_values(plain, config, path=str(config_path)) == {}
