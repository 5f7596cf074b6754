"""The benchmark's summary: one row per size and peer, a Markdown table, growth, the machine."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

from measure import Run
from peers import PEERS_VENV


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per (size, peer): medians over the runs, ratio to Guardian in the same size."""
    rows: list[dict[str, Any]] = []
    keys = list(dict.fromkeys((r.size, r.peer) for r in runs))
    for size, peer in keys:
        rs = [r for r in runs if r.size == size and r.peer == peer]
        conns = [r.conns_per_host for r in rs if r.conns_per_host is not None]
        rows.append(
            {
                "size": size,
                "peer": peer,
                "runs": len(rs),
                "ok": sum(r.ok for r in rs),
                "median": statistics.median(r.seconds for r in rs),
                "min": min(r.seconds for r in rs),
                "max": max(r.seconds for r in rs),
                "healed": f"{min(r.healed for r in rs)}/{rs[0].hosts}",
                "conns": statistics.median(conns) if conns else None,
                "rss1": max(r.rss_single_mb for r in rs),
                "rss_tree": max(r.rss_tree_mb for r in rs),
                "cpu": statistics.median(r.cpu_s for r in rs),
                "notes": sorted({r.note for r in rs if r.note}),
            }
        )
    for row in rows:
        base = next((r for r in rows if r["size"] == row["size"] and r["peer"] == "guardian"), None)
        row["x_guardian"] = row["median"] / base["median"] if base else None
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the summary rows."""
    head = (
        "| size | peer | ok/runs | median s | min s | max s | x guardian | healed | ssh conns/host "
        "| controller CPU s | peak RSS MB (largest proc) | peak RSS MB (process tree) |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        xg = f"{r['x_guardian']:.2f}" if r["x_guardian"] is not None else "-"
        conns = f"{r['conns']:.1f}" if r["conns"] is not None else "-"
        lines.append(
            f"| {r['size']} | {r['peer']} | {r['ok']}/{r['runs']} | {r['median']:.2f} | {r['min']:.2f} "
            f"| {r['max']:.2f} | {xg} | {r['healed']} | {conns} | {r['cpu']:.1f} "
            f"| {r['rss1']:.0f} | {r['rss_tree']:.0f} |"
        )
    return "\n".join(lines)


def growth(rows: list[dict[str, Any]]) -> str:
    """Guardian's and the floor's time per host across direct sizes (linear growth check)."""
    parts = []
    for peer in ("guardian", "floor"):
        pts = sorted((int(r["size"]), r["median"]) for r in rows if r["peer"] == peer and r["size"].isdigit())
        if len(pts) >= 2:
            (n0, t0), (n1, t1) = pts[0], pts[-1]
            slope = (t1 - t0) / (n1 - n0) * 1000
            parts.append(f"{peer}: " + ", ".join(f"{n} hosts {t:.2f}s" for n, t in pts) + f" ({slope:.0f} ms/host)")
    return "; ".join(parts)


def machine() -> str:
    """This machine in one line: host, kernel, cores, CPU model, memory."""
    cpu = "unknown cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node()}: {platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB"


def versions() -> str:
    """The versions of Python and of every peer tool that is installed."""
    found = [f"python {platform.python_version()}"]
    for tool, argv in (
        ("ansible-core", [str(PEERS_VENV / "bin" / "ansible"), "--version"]),
        ("pyinfra", [str(PEERS_VENV / "bin" / "pyinfra"), "--version"]),
        ("openssh", ["ssh", "-V"]),
    ):
        with contextlib.suppress(OSError):
            p = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
            text = (p.stdout or p.stderr).splitlines()[0] if (p.stdout or p.stderr) else "?"
            found.append(f"{tool}: {text.strip()}")
    return "; ".join(found)
