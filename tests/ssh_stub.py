"""A stand-in SSH server on loopback, and keys for it, for tests that must see what a client
sends over a real SSH handshake without any host behind it."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from paramiko.common import AUTH_FAILED


def write_ed25519_key(path: Path) -> paramiko.PKey:
    """A new private key at ``path`` in OpenSSH format (as ssh-keygen writes it)."""
    private = Ed25519PrivateKey.generate()
    path.write_bytes(private.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    path.chmod(0o600)
    return paramiko.Ed25519Key(filename=str(path))


class StubSSHServer:
    """An SSH server on loopback: it completes the handshake with its own host key, records each
    public key a client offers, and lets nobody in."""

    def __init__(self) -> None:
        self.host_key = paramiko.ECDSAKey.generate()
        self.offered: list[tuple[str, str]] = []  # (user, public key base64)
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.transports: list[paramiko.Transport] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}\n"

    def _serve(self) -> None:
        server = self

        class Auth(paramiko.ServerInterface):
            def get_allowed_auths(self, username: str) -> str:
                return "publickey"

            def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
                server.offered.append((username, key.get_base64()))
                return AUTH_FAILED

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            self.transports.append(transport)
            try:
                transport.start_server(server=Auth())
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()

    def close(self) -> None:
        self.sock.close()
        for transport in self.transports:
            transport.close()
