"""The one reading of the operator's ssh_config (``--ssh-config``, default ``~/.ssh/config``).

The transport hands it to Fabric, which applies a ``Host`` entry's HostName, User, Port,
IdentityFile and ProxyJump wherever the inventory leaves them unset; ``invoke inventory`` shows
the same values with the file as their source. Both read it here, so they cannot disagree.
paramiko is imported on first use: the inventory package stays cheap to import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import HostSpec

if TYPE_CHECKING:
    import paramiko

#: Inventory setting -> the ssh_config option that supplies it when the inventory does not.
SSH_CONFIG_OPTIONS = {
    "address": "hostname",
    "user": "user",
    "port": "port",
    "key": "identityfile",
    "jump": "proxyjump",
}


def ssh_config_path(path: str | None) -> Path | None:
    """The ssh_config file to honour: ``path`` with ``~`` expanded, or None when it is unset
    (``None`` or ``''``) or names no file."""
    if not path:
        return None
    expanded = Path(path).expanduser()
    return expanded if expanded.is_file() else None


def load_ssh_config(path: str | None) -> paramiko.SSHConfig:
    """The parsed ssh_config at ``path``; an empty one when there is none to honour."""
    import paramiko

    found = ssh_config_path(path)
    return paramiko.SSHConfig.from_path(str(found)) if found else paramiko.SSHConfig.from_text("")


def ssh_config_values(host: HostSpec, config: paramiko.SSHConfig, *, path: str | None) -> dict[str, tuple[Any, str]]:
    """``setting -> (value, source)`` for each setting of ``host`` that ``config`` (read from
    ``path`` by :func:`load_ssh_config`) supplies.

    A setting the inventory left at its default takes ssh_config's value; an address that
    ssh_config's HostName rewrites shows as ``NAME -> HOSTNAME``. Local hosts get nothing.
    """
    if host.is_local:
        return {}
    resolved = config.lookup(host.address)
    source = f"ssh_config ({path})"
    values: dict[str, tuple[Any, str]] = {}
    for setting, option in SSH_CONFIG_OPTIONS.items():
        if host.sources.get(setting, "host name") == "default" and option in resolved:
            values[setting] = (resolved[option], source)
    if "hostname" in resolved and resolved["hostname"] != host.address:
        values["address"] = (f"{host.address} -> {resolved['hostname']}", source)
    return values
