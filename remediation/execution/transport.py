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
import re
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import paramiko
from fabric import Config, Connection
from invoke.context import Context

from ..errors import ConnectError, HostKeyError
from ..inventory import HostSpec, Inventory
from ..inventory.sshconfig import load_ssh_config

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


def connection_for(
    host: HostSpec, inventory: Inventory | None, options: ConnectOptions, *, _depth: int = 0
) -> Connection:
    """Build (not open) a Fabric Connection with strict host-key checking and no agent/keys
    other than the configured one."""
    settings: Mapping[str, Any] = host.settings
    config = Config(ssh_config=load_ssh_config(options.ssh_config))
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


@dataclass(frozen=True)
class Hop:
    """One SSH connection on the way to a host: a jump host, or the host itself (last)."""

    conn: Connection
    name: str  # as the operator wrote it: inventory name, ``jump`` value or ProxyJump host
    spec: HostSpec | None  # the inventory host behind this hop, if there is one
    how: str = ""  # for a jump host, where it was named: "the `jump` of h03", "ProxyJump of h03 ..."

    @property
    def where(self) -> str:
        return f"{self.conn.host}:{self.conn.port}"


def hops_for(conn: Connection, host: HostSpec, inventory: Inventory | None) -> list[Hop]:
    """``conn``'s gateway chain as hops, the outermost jump host first and ``host`` last."""
    hops = [Hop(conn, host.name, host)]
    spec: HostSpec | None = host
    gateway = conn.gateway
    while isinstance(gateway, Connection):
        jump = spec.settings.get("jump") if spec is not None else None
        if jump:
            spec = inventory.hosts.get(str(jump)) if inventory is not None else None
            hop = Hop(gateway, str(jump), spec, f"the `jump` of {hops[0].name}")
        else:
            spec = None
            hop = Hop(gateway, str(gateway.original_host), None, f"ProxyJump of {hops[0].name} in ssh_config")
        hops.insert(0, hop)
        gateway = gateway.gateway
    return hops


def _unreadable(path: str) -> str | None:
    """Why the key file at ``path`` cannot be used ("not found", ...), or None when it can."""
    try:
        with open(path, "rb"):
            return None
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"


def prepare_key_files(hop: Hop, options: ConnectOptions) -> list[str]:
    """Check, before connecting, the key files the hop would offer; returns the notes on
    ssh_config IdentityFiles that were left out.

    paramiko stops at a missing key file with a bare "No such file or directory" once the host
    has answered, so: the inventory's ``key`` must be readable (ConnectError naming it and where
    it was set); a missing ssh_config IdentityFile is left out, as ssh does, and is an error only
    when nothing else could authenticate the hop.
    """
    kwargs = hop.conn.connect_kwargs
    given = hop.spec.settings.get("key") if hop.spec is not None else None
    inventory_key = str(Path(str(given)).expanduser()) if given else None
    kept: list[str] = []
    skipped: list[str] = []
    for name in kwargs.get("key_filename") or []:
        path = str(Path(str(name)).expanduser())
        problem = _unreadable(path)
        if problem is None:
            kept.append(path)
        elif path == inventory_key and hop.spec is not None:
            raise ConnectError(
                f"SSH key {path} {problem} (the `key` of {hop.spec.name}, set in "
                f"{hop.spec.sources.get('key', 'the inventory')}): set `key:` in the inventory or IdentityFile "
                "in ssh_config to a private key that exists"
            )
        else:
            skipped.append(f"SSH key {path} {problem} (IdentityFile in {options.ssh_config or 'ssh_config'})")
    if kwargs.get("key_filename"):
        kwargs["key_filename"] = kept
    agent = bool(kwargs.get("allow_agent", True)) and bool(os.environ.get("SSH_AUTH_SOCK"))
    if skipped and not kept and not agent and not kwargs.get("look_for_keys", True):
        raise ConnectError(
            f"{'; '.join(skipped)}: set `key:` in the inventory or IdentityFile in ssh_config to a private key "
            "that exists"
        )
    return skipped


_KEY_CLASS_MISMATCH = re.compile(r"encountered \w+ key, expected \w+ key")


def open_hop(hop: Hop, *, through: Hop | None = None, skipped_keys: Sequence[str] = ()) -> None:
    """Open one hop (its gateway is open already). Raises ConnectError or HostKeyError."""
    conn = hop.conn
    unused = f"; {'; '.join(skipped_keys)}" if skipped_keys else ""
    try:
        conn.open()
    except HostKeyError:
        raise
    except paramiko.BadHostKeyException as exc:
        raise HostKeyError(
            f"host key for {conn.host} CHANGED: expected {exc.expected_key.get_name()} "
            f"{exc.expected_key.fingerprint}, got {exc.key.get_name()} {exc.key.fingerprint}. "
            "Refusing to connect; no command was run. If the host was rebuilt, remove its old "
            "entry from known_hosts after verifying the new key."
        ) from None
    except paramiko.AuthenticationException as exc:
        raise ConnectError(f"authentication failed for {conn.user}@{conn.host}:{conn.port}: {exc}{unused}") from None
    except paramiko.ChannelException as exc:
        if through is None:
            raise ConnectError(f"SSH channel to {hop.where} failed: {exc.text}") from None
        raise ConnectError(
            f"jump host {through.name} ({through.where}) is up but could not open a connection to "
            f"{hop.where}: {exc.text}"
        ) from None
    except (paramiko.SSHException, EOFError) as exc:
        if _KEY_CLASS_MISMATCH.search(str(exc)):  # raised while authenticating, after the handshake
            # paramiko tries every key class on a key file and raises the last one's complaint
            # when the server refused the key: the handshake was fine, authentication was not.
            raise ConnectError(
                f"authentication failed for {conn.user}@{conn.host}:{conn.port}: no key was accepted ({exc}){unused}"
            ) from None
        raise ConnectError(f"SSH handshake with {hop.where} failed: {exc}{unused}") from None
    except (TimeoutError, socket.timeout):
        raise ConnectError(f"connection to {hop.where} timed out after {conn.connect_timeout:g}s") from None
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        reasons = sorted({(getattr(e, "strerror", None) or str(e)) for e in exc.errors.values()})
        raise ConnectError(f"cannot connect to {hop.where}: {'; '.join(reasons)}") from None
    except socket.gaierror as exc:
        raise ConnectError(f"cannot resolve {conn.host}: {exc.strerror or exc}") from None
    except OSError as exc:
        raise ConnectError(f"cannot connect to {hop.where}: {exc.strerror or exc}") from None


def open_session(host: HostSpec, inventory: Inventory | None, options: ConnectOptions) -> Session:
    """Open a session to ``host``, each jump host first. Raises ConnectError or HostKeyError
    with the reason; when a jump host fails, the message names it and says so."""
    if host.is_local:
        return Context()
    conn = connection_for(host, inventory, options)
    hops = hops_for(conn, host, inventory)
    try:
        notes: list[list[str]] = []
        for hop in hops:  # every hop's key files, before anything connects
            try:
                notes.append(prepare_key_files(hop, options))
            except ConnectError as exc:
                raise _from_hop(exc, hop, hops[-1]) from None
        for index, hop in enumerate(hops):
            try:
                open_hop(hop, through=hops[index - 1] if index else None, skipped_keys=notes[index])
            except ConnectError as exc:
                raise _from_hop(exc, hop, hops[-1]) from None
    except BaseException:
        for hop in reversed(hops):
            hop.conn.close()
        raise
    session: Session = conn
    return session


def _from_hop(exc: ConnectError, hop: Hop, target: Hop) -> ConnectError:
    """``exc`` as it happened on ``hop``: a jump host's failure names the jump host."""
    if hop is target:
        return exc
    return type(exc)(f"jump host {hop.name} ({hop.where}, {hop.how}) failed: {exc}; {target.name} was not reached")


def close_session(session: Session) -> None:
    """Close the host's connection and every jump host's on its way (Fabric's ``close`` leaves a
    connection's gateway open; each host has a gateway chain of its own)."""
    current: object = session
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        close = getattr(current, "close", None)
        if callable(close):
            # Closing is best effort: the host's result is already known.
            with contextlib.suppress(Exception):
                close()
        gateway = getattr(current, "gateway", None)
        current = gateway if isinstance(gateway, Connection) else None
