"""The lab's network: a bridge, one namespace per host, private links, and reachability probes.

Every public host lives in its own network namespace, a veth on the bridge ``PREFIX-br`` in
198.18.<subnet>.0/24 (part of the RFC 2544 benchmarking range). A *private* host's only link is
a veth pair into another lab host's namespace (198.19.<subnet>.0/24), so it is reachable only
through that host (a jump host), exactly like a droplet on a provider's private network. The root
namespace gets an ``unreachable`` route for the private range, so nothing from the controller can
reach those hosts directly, and nothing meant for them leaves the machine.
"""

from __future__ import annotations

import inspect
import re
import socket
import subprocess
from collections.abc import Iterable

from .model import HOST_PYTHON, LabHost
from .procs import run


def public_address(subnet: int, index: int) -> str:
    """The address of the ``index``-th host (from 1) on the bridge."""
    return f"198.18.{subnet}.{10 + index}"


def private_address(subnet: int, index: int) -> str:
    """The address of the ``index``-th host (from 1) when it is private."""
    return f"198.19.{subnet}.{10 + index}"


def private_net(subnet: int) -> str:
    """The range private hosts live in; unreachable from the root namespace."""
    return f"198.19.{subnet}.0/24"


def netns_names() -> set[str]:
    """Every network namespace on the machine."""
    out = run(["ip", "netns", "list"], check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def link_names() -> set[str]:
    """Every link in the root namespace."""
    out = run(["ip", "-o", "link", "show"], check=False).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.add(parts[1].strip().split("@", 1)[0])
    return names


def ensure_bridge(bridge: str, subnet: int) -> None:
    """Create (or reuse) the bridge with the controller's address 198.18.<subnet>.1."""
    if bridge not in link_names():
        run(["ip", "link", "add", bridge, "type", "bridge"])
    addr = f"198.18.{subnet}.1/24"
    if addr not in run(["ip", "-o", "addr", "show", "dev", bridge]).stdout:
        run(["ip", "addr", "add", addr, "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])


def block_private_range(subnet: int) -> None:
    """Before any private link exists: nothing for 198.19.<subnet>/24 may leave the machine."""
    run(["ip", "route", "replace", "unreachable", private_net(subnet)])


def setup_netns(host: LabHost, *, bridge: str, subnet: int, gateway: LabHost | None) -> None:
    """Create ``host``'s namespace and its link: on the bridge, or into ``gateway`` if private."""
    run(["ip", "netns", "add", host.netns])
    run(["ip", "link", "add", host.netns, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
    if gateway is not None:
        _link_private(host, gateway, subnet)
        return
    run(["ip", "link", "set", host.netns, "master", bridge, "up"])
    batch = (
        "link set lo up\n"
        f"addr add {host.address}/24 dev eth0\n"
        "link set eth0 up\n"
        f"route add default via 198.18.{subnet}.1\n"
    )
    run(["ip", "-n", host.netns, "-batch", "-"], input=batch)


def _link_private(host: LabHost, gateway: LabHost, subnet: int) -> None:
    """Move the host end of ``host``'s veth into its gateway's namespace: a point-to-point
    link 198.19.<subnet>.1 <-> the host's address, and no other route anywhere."""
    gw_address = f"198.19.{subnet}.1"
    run(["ip", "link", "set", host.netns, "netns", gateway.netns])
    run(
        ["ip", "-n", gateway.netns, "-batch", "-"],
        input=(
            f"link set {host.netns} up\n"
            f"addr add {gw_address}/32 dev {host.netns}\n"
            f"route add {host.address}/32 dev {host.netns}\n"
        ),
    )
    run(
        ["ip", "-n", host.netns, "-batch", "-"],
        input=(
            "link set lo up\n"
            f"addr add {host.address}/32 dev eth0\n"
            "link set eth0 up\n"
            f"route add {gw_address}/32 dev eth0\n"
            f"route add default via {gw_address} dev eth0\n"
        ),
    )


def remove(prefix: str, bridge: str, recorded: Iterable[str], private_range: str | None) -> None:
    """Delete the lab's namespaces (recorded, or named like ``PREFIX-hNN``), its links and bridge,
    and the unreachable route; what is already gone is skipped."""
    existing = netns_names()
    pattern = re.compile(rf"^{re.escape(prefix)}-h\d{{2,3}}$")
    names = set(recorded) | {ns for ns in existing if pattern.match(ns)}
    for ns in sorted(names & existing):
        run(["ip", "netns", "del", ns], check=False)
    for link in sorted(link_names()):
        if link == bridge or pattern.match(link) or link in names:
            run(["ip", "link", "del", link], check=False)
    if private_range:
        run(["ip", "route", "del", "unreachable", private_range], check=False)


def ssh_banner(address: str, port: int = 22, timeout: float = 2.0) -> str | None:
    """Return the SSH identification line the server sends, or None."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            data = b""
            while b"\n" not in data and len(data) < 512:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\n", 1)[0].decode("ascii", "replace").strip()
    return line if line.startswith("SSH-") else None


def ssh_banner_in(netns: str, address: str, timeout: float) -> str | None:
    """:func:`ssh_banner` probed from inside the network namespace ``netns`` (a gateway's, for a
    private host), run there as a stand-alone program."""
    probe = (
        f"import socket, sys\n{inspect.getsource(ssh_banner)}\n"
        "print(ssh_banner(sys.argv[1], timeout=float(sys.argv[2])) or '')\n"
    )
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, HOST_PYTHON, "-I", "-c", probe, address, str(timeout)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout + 10,
    )
    line = proc.stdout.strip()
    return line or None
