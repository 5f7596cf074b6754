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
                "cpu_per_host_ms": statistics.median(r.cpu_s for r in rs) / rs[0].hosts * 1000,
                "host_cpu_healthy": _median([r.host_cpu_healthy for r in rs]),
                "host_cpu_faulted": _median([r.host_cpu_faulted for r in rs]),
                "runner_cpu_healthy": _median([r.runner_cpu_healthy for r in rs]),
                "notes": sorted({r.note for r in rs if r.note}),
            }
        )
    for row in rows:
        base = next((r for r in rows if r["size"] == row["size"] and r["peer"] == "guardian"), None)
        row["x_guardian"] = row["median"] / base["median"] if base else None
    return rows


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the summary rows."""
    head = (
        "| size | peer | ok/runs | median s | min s | max s | x guardian | healed | ssh conns/host "
        "| controller CPU s | controller CPU ms/host | on-host CPU-s/host healthy | on-host CPU-s/host faulted "
        "| runner+check CPU-s/host healthy | peak RSS MB (largest proc) | peak RSS MB (process tree) |"
    )
    lines = [head, "|" + "---|" * 16]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['peer']} | {r['ok']}/{r['runs']} | {r['median']:.2f} | {r['min']:.2f} "
            f"| {r['max']:.2f} | {_cell(r['x_guardian'], '.2f')} | {r['healed']} | {_cell(r['conns'], '.1f')} "
            f"| {r['cpu']:.1f} | {r['cpu_per_host_ms']:.0f} | {_cell(r['host_cpu_healthy'], '.3f')} "
            f"| {_cell(r['host_cpu_faulted'], '.3f')} | {_cell(r.get('runner_cpu_healthy'), '.3f')} "
            f"| {r['rss1']:.0f} | {r['rss_tree']:.0f} |"
        )
    return "\n".join(lines)


def growth(rows: list[dict[str, Any]]) -> str:
    """Time per host across the direct sizes (linear growth check) of Guardian, pyinfra and the
    floor, in each pid-file mode that has at least two sizes."""
    parts = []
    for suffix in ("-nopid", ""):
        for peer in ("guardian", "pyinfra", "floor"):
            pts = sorted(
                (int(r["size"].removesuffix(suffix)), r["median"])
                for r in rows
                if r["peer"] == peer and r["size"].endswith(suffix) and r["size"].removesuffix(suffix).isdigit()
            )
            if len(pts) >= 2:
                (n0, t0), (n1, t1) = pts[0], pts[-1]
                slope = (t1 - t0) / (n1 - n0) * 1000
                per_host = ", ".join(f"{n}{suffix} {t:.2f}s ({t / n * 1000:.0f} ms/host)" for n, t in pts)
                parts.append(f"{peer}: {per_host}; slope {slope:.0f} ms/host")
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
