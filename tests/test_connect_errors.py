"""Connection errors name what failed: the key file, the jump host. No network is used: every
address is on loopback, and names that must not resolve are refused by a stand-in resolver."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from ssh_stub import StubSSHServer, write_ed25519_key

from remediation.errors import ConnectError
from remediation.execution.transport import ConnectOptions, connection_for, hops_for, open_session, prepare_key_files
from remediation.inventory import Inventory, load_inventory

MISSING_KEY = "/nonexistent/key"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port that accepts TCP connections but nobody answers them: whether anything
    connected shows in its queue."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def closed_port() -> int:
    """A loopback port nobody listens on (connections to it are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connection_attempted(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def inventory(tmp_path: Path, hosts: dict[str, dict[str, Any]]) -> Inventory:
    path = tmp_path / "inv.yml"
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    defaults = {"connect_timeout": 2, "known_hosts": str(known_hosts)}
    path.write_text(
        "groups:\n  g:\n    hosts:\n"
        + "".join(f"      {name}: {dict(defaults, **spec)!r}\n" for name, spec in hosts.items())
    )
    return load_inventory([path])


def connect_error(inv: Inventory, name: str, ssh_config: str | None = None) -> str:
    with pytest.raises(ConnectError) as info:
        open_session(inv.hosts[name], inv, ConnectOptions(ssh_config=ssh_config))
    return str(info.value)


def test_a_missing_key_file_is_named_before_anything_connects(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    inv = inventory(tmp_path, {"h1": {"address": "127.0.0.1", "port": port, "key": MISSING_KEY}})
    message = connect_error(inv, "h1")
    assert f"SSH key {MISSING_KEY} not found" in message
    assert "set `key:` in the inventory or IdentityFile in ssh_config" in message
    assert "inv.yml" in message  # where the key was set
    assert not connection_attempted(listener)


def test_a_missing_identityfile_from_ssh_config_is_named(
    tmp_path: Path, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # no agent: that key was the only way in
    port = listener.getsockname()[1]
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(f"Host h1\n    HostName 127.0.0.1\n    Port {port}\n    IdentityFile {MISSING_KEY}\n")
    inv = inventory(tmp_path, {"h1": {}})
    message = connect_error(inv, "h1", str(ssh_config))
    assert f"SSH key {MISSING_KEY} not found (IdentityFile in {ssh_config})" in message
    assert "set `key:` in the inventory or IdentityFile in ssh_config" in message
    assert not connection_attempted(listener)


def test_a_missing_identityfile_next_to_one_that_exists_is_left_out_as_ssh_does(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("a key\n")
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(f"Host h1\n    HostName 127.0.0.1\n    IdentityFile {key}\n    IdentityFile {MISSING_KEY}\n")
    inv = inventory(tmp_path, {"h1": {}})
    options = ConnectOptions(ssh_config=str(ssh_config))
    conn = connection_for(inv.hosts["h1"], inv, options)
    (hop,) = hops_for(conn, inv.hosts["h1"], inv)
    assert prepare_key_files(hop, options) == [f"SSH key {MISSING_KEY} not found (IdentityFile in {ssh_config})"]
    assert conn.connect_kwargs["key_filename"] == [str(key)]


def test_a_jump_host_that_refuses_is_named_as_the_jump_host(tmp_path: Path, listener: socket.socket) -> None:
    port = closed_port()
    target_port = listener.getsockname()[1]
    inv = inventory(
        tmp_path,
        {
            "bastion": {"address": "127.0.0.1", "port": port},
            "h1": {"address": "127.0.0.1", "port": target_port, "jump": "bastion"},
        },
    )
    message = connect_error(inv, "h1")
    assert message.startswith(f"jump host bastion (127.0.0.1:{port}, the `jump` of h1) failed: ")
    assert "Connection refused" in message and "h1 was not reached" in message
    assert not connection_attempted(listener)


def test_a_jump_host_given_as_user_at_host_port_is_named(tmp_path: Path) -> None:
    port = closed_port()
    inv = inventory(tmp_path, {"h1": {"address": "127.0.0.1", "port": closed_port(), "jump": f"ops@127.0.0.1:{port}"}})
    message = connect_error(inv, "h1")
    assert message.startswith(f"jump host ops@127.0.0.1:{port} (127.0.0.1:{port}, the `jump` of h1) failed: ")
    assert "Connection refused" in message


def test_a_jump_host_whose_name_does_not_resolve_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No DNS query leaves this machine: names under .invalid (RFC 2606) are refused here, as a
    # resolver would refuse them, and anything else must be a loopback address.
    real = socket.getaddrinfo

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        assert str(host).startswith("127."), f"test tried to resolve {host}"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    inv = inventory(tmp_path, {"h1": {"address": "127.0.0.1", "port": closed_port(), "jump": "bastion.invalid"}})
    message = connect_error(inv, "h1")
    assert message.startswith("jump host bastion.invalid (bastion.invalid:22, the `jump` of h1) failed: ")
    assert "cannot resolve bastion.invalid: Name or service not known" in message
    assert "h1 was not reached" in message


def test_a_missing_key_of_a_jump_host_is_named_with_the_jump_host(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    inv = inventory(
        tmp_path,
        {
            "bastion": {"address": "127.0.0.1", "port": port, "key": MISSING_KEY},
            "h1": {"address": "127.0.0.1", "port": closed_port(), "jump": "bastion"},
        },
    )
    message = connect_error(inv, "h1")
    assert message.startswith(
        f"jump host bastion (127.0.0.1:{port}, the `jump` of h1) failed: SSH key {MISSING_KEY} not found"
    )
    assert not connection_attempted(listener)


def test_a_missing_key_is_named_before_even_the_jump_host_is_contacted(tmp_path: Path, listener: socket.socket) -> None:
    inv = inventory(
        tmp_path,
        {
            "bastion": {"address": "127.0.0.1", "port": listener.getsockname()[1]},
            "h1": {"address": "127.0.0.1", "port": closed_port(), "jump": "bastion", "key": MISSING_KEY},
        },
    )
    assert connect_error(inv, "h1").startswith(f"SSH key {MISSING_KEY} not found (the `key` of h1, set in host entry")
    assert not connection_attempted(listener)


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ecdsa"])
def test_a_key_the_host_refuses_is_an_authentication_failure_whatever_its_type(
    tmp_path: Path, ssh_server: StubSSHServer, loopback_only: list[str], kind: str
) -> None:
    key_path = tmp_path / f"id_{kind}"
    if kind == "ed25519":
        key: paramiko.PKey = write_ed25519_key(key_path)
    else:
        key = paramiko.RSAKey.generate(2048) if kind == "rsa" else paramiko.ECDSAKey.generate()
        key.write_private_key_file(str(key_path))
    inv = inventory(
        tmp_path, {"h1": {"address": "127.0.0.1", "port": ssh_server.port, "user": "ops", "key": str(key_path)}}
    )
    (tmp_path / "known_hosts").write_text(ssh_server.known_hosts_line())  # the file the inventory names
    message = connect_error(inv, "h1")
    assert ("ops", key.get_base64()) in ssh_server.offered  # the key was offered and refused
    assert message.startswith(f"authentication failed for ops@127.0.0.1:{ssh_server.port}"), message
