"""Sessions to hosts: a Fabric ``Connection`` for SSH, an Invoke ``Context`` for the local host.

Both expose ``run(command, ...)``, so nothing above this module branches on which one it has.
Fabric's ``Connection`` accepts any host key out of the box (AutoAddPolicy, no known_hosts);
here known hosts are loaded and unknown or changed keys are refused unless the operator opted in
with ``--accept-new-host-keys``, which records new keys (a *changed* key is always refused).
paramiko and socket errors are wrapped into ``ConnectError`` / ``HostKeyError`` at this boundary.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import paramiko
from fabric import Config, Connection
from invoke.context import Context

from .errors import ConnectError, HostKeyError
from .inventory import HostSpec, Inventory

_known_hosts_lock = threading.Lock()


class Session(Protocol):
    """What the rest of Guardian needs from a host session (Fabric Connection / Invoke Context)."""

    def run(self, command: str, **kwargs: Any) -> Any: ...


class RejectUnknownPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse a host whose key is not in known_hosts, with an operator-facing message."""

    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyError(
            f"host key for {hostname} ({key.get_name()} {key.fingerprint}) is not in "
            f"{self.known_hosts}; refusing to connect. Verify the key, add it to known_hosts, or "
            "re-run with --accept-new-host-keys to trust and record it."
        )


class AcceptNewPolicy(paramiko.MissingHostKeyPolicy):
    """Trust a host seen for the first time and append its key to known_hosts (like
    OpenSSH's ``StrictHostKeyChecking=accept-new``). Changed keys are still refused by paramiko."""

    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with _known_hosts_lock:
            path = Path(self.known_hosts)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="ascii") as fh:
                fh.write(line)


@dataclass(frozen=True)
class ConnectOptions:
    """Controller-wide connection choices (from command-line flags)."""

    accept_new_host_keys: bool = False
    ssh_config: str | None = None  # path of an ssh_config file to honour, None for none


def _ssh_config(path: str | None) -> paramiko.SSHConfig:
    if path and Path(path).expanduser().is_file():
        return paramiko.SSHConfig.from_path(str(Path(path).expanduser()))
    return paramiko.SSHConfig.from_text("")


def connection_for(
    host: HostSpec, inventory: Inventory | None, options: ConnectOptions, *, _depth: int = 0
) -> Connection:
    """Build (not open) a Fabric Connection with strict host-key checking and no agent/keys
    other than the configured one."""
    settings: Mapping[str, Any] = host.settings
    config = Config(ssh_config=_ssh_config(options.ssh_config))
    key = settings.get("key")
    connect_kwargs: dict[str, Any] = {
        "look_for_keys": False,
        "allow_agent": key is None,
        "banner_timeout": float(settings["connect_timeout"]),
        "auth_timeout": float(settings["connect_timeout"]),
    }
    if key:
        connect_kwargs["key_filename"] = [str(Path(key).expanduser())]
    gateway = None
    jump = settings.get("jump")
    if jump:
        if _depth > 3:
            raise ConnectError(f"{host.name}: jump host chain is too long")
        if inventory is not None and jump in inventory.hosts:
            gateway = connection_for(inventory.hosts[jump], inventory, options, _depth=_depth + 1)
        else:
            gateway = Connection(jump, config=config, connect_timeout=int(settings["connect_timeout"]))
            _harden_chain(gateway, host, options)
    # user and port are passed only when the inventory sets them, so that an ssh_config Host
    # entry (User, Port, HostName, IdentityFile, ProxyJump) applies as it would for ssh.
    explicit: dict[str, Any] = {}
    if settings.get("user"):
        explicit["user"] = str(settings["user"])
    if settings.get("port"):
        explicit["port"] = int(settings["port"])
    conn = Connection(
        host.address,
        **explicit,
        config=config,
        connect_timeout=max(1, int(settings["connect_timeout"])),
        connect_kwargs=connect_kwargs,
        gateway=gateway,
    )
    _harden(conn, known_hosts_for(host, conn), options)
    if gateway is None:
        # A ProxyJump from ssh_config: Fabric builds those hops itself, trusting any host key
        # (AutoAddPolicy) and with no connect timeout. Hold them to the same rules as the target.
        _harden_chain(conn.gateway, host, options)
    return conn


def _harden_chain(gateway: object, host: HostSpec, options: ConnectOptions) -> None:
    """Strict host keys and the host's connect timeout on every hop of a gateway chain that
    Guardian did not build from the inventory (ssh_config ProxyJump, or a ``jump`` that names a
    host outside the inventory). A ProxyCommand string is left as ssh would run it."""
    while isinstance(gateway, Connection):
        _harden(gateway, known_hosts_for(host, gateway), options)
        gateway.connect_timeout = max(1, int(host.settings["connect_timeout"]))
        gateway = gateway.gateway


def known_hosts_for(host: HostSpec, conn: Connection) -> str:
    """The inventory's known_hosts, or ssh_config's ``UserKnownHostsFile`` when the inventory
    leaves the default in place (as ssh itself would use it)."""
    if host.sources.get("known_hosts", "default") == "default":
        from_config = conn.ssh_config.get("userknownhostsfile")
        if from_config:
            first = from_config[0] if isinstance(from_config, list) else str(from_config).split()[0]
            return str(first)
    return str(host.settings["known_hosts"])


def _harden(conn: Connection, known_hosts: str, options: ConnectOptions) -> None:
    path = str(Path(known_hosts).expanduser())
    client: paramiko.SSHClient = conn.client
    if Path(path).is_file():
        client.load_host_keys(path)
    policy: paramiko.MissingHostKeyPolicy = (
        AcceptNewPolicy(path) if options.accept_new_host_keys else RejectUnknownPolicy(path)
    )
    client.set_missing_host_key_policy(policy)


def open_session(host: HostSpec, inventory: Inventory | None, options: ConnectOptions) -> Session:
    """Open a session to ``host``. Raises ConnectError or HostKeyError with the reason."""
    if host.is_local:
        return Context()
    conn = connection_for(host, inventory, options)
    try:
        conn.open()
    except HostKeyError:
        conn.close()
        raise
    except paramiko.BadHostKeyException as exc:
        conn.close()
        raise HostKeyError(
            f"host key for {conn.host} CHANGED: expected {exc.expected_key.get_name()} "
            f"{exc.expected_key.fingerprint}, got {exc.key.get_name()} {exc.key.fingerprint}. "
            "Refusing to connect; no command was run. If the host was rebuilt, remove its old "
            "entry from known_hosts after verifying the new key."
        ) from None
    except paramiko.AuthenticationException as exc:
        conn.close()
        raise ConnectError(f"authentication failed for {conn.user}@{conn.host}:{conn.port}: {exc}") from None
    except (paramiko.SSHException, EOFError) as exc:
        conn.close()
        raise ConnectError(f"SSH handshake with {conn.host}:{conn.port} failed: {exc}") from None
    except (TimeoutError, socket.timeout):
        conn.close()
        raise ConnectError(
            f"connection to {conn.host}:{conn.port} timed out after {host.get('connect_timeout'):g}s"
        ) from None
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        conn.close()
        reasons = sorted({(getattr(e, "strerror", None) or str(e)) for e in exc.errors.values()})
        raise ConnectError(f"cannot connect to {conn.host}:{conn.port}: {'; '.join(reasons)}") from None
    except OSError as exc:
        conn.close()
        reason = exc.strerror or str(exc)
        raise ConnectError(f"cannot connect to {conn.host}:{conn.port}: {reason}") from None
    session: Session = conn
    return session


def close_session(session: Session) -> None:
    close = getattr(session, "close", None)
    if callable(close):
        # Closing is best effort: the host's result is already known.
        with contextlib.suppress(Exception):
            close()
