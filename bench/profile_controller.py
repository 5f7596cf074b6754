"""Controller CPU per host: run ``guardian premarket`` on a kept bench lab, measure and profile it.

Usage (the lab from ``fanout.py --keep-lab --workdir DIR``; its scratch folder has one inventory
per size):

    .venv/bin/python bench/profile_controller.py --lab DIR --inventory DIR/scratch/40/inventory-40.yml \\
        [--code REPO] [--runs 2] [--py-spy]

Each run starts from the bench's faulted hosts (``workload.prepare``). Without ``--py-spy`` it
prints the controller's CPU (user + system of the premarket process and its children, from
``wait4``) and that per host. With ``--py-spy`` the run is sampled by py-spy (every thread, so
the per-host threads too) and the functions with the most samples are printed, self and
inclusive: the profile, not the timing (sampling slows it). ``--code`` runs another checkout's
controller (e.g. ``git archive`` of main) for a before/after on the same lab.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from workload import SETTLE, prepare  # noqa: E402

from remediation.lab import Lab  # noqa: E402


def premarket_argv(
    code: Path, inventory: Path, hosts: int, reports: Path, input_sleep: float | None = None
) -> list[str]:
    boot = f"import sys; sys.path.insert(0, {str(code)!r}); "
    if input_sleep is not None:  # an experiment: how often Invoke's per-host threads poll
        boot += f"import invoke.runners; invoke.runners.Runner.input_sleep = {input_sleep!r}; "
    boot += "from remediation.cli import main; main()"
    argv = [sys.executable, "-c", boot, "premarket", "--hosts", "lab", "--inventory", str(inventory)]
    return [*argv, "--ssh-config", "", "--settle", str(SETTLE), "--forks", str(hosts), "--reports", str(reports)]


def hot_functions(raw: Path, top: int) -> list[str]:
    """The functions with the most samples in py-spy's raw (collapsed stack) output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f.split(" (")[0] + " " + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    lines = [f"{total} samples", "self:"]
    lines += [f"  {n * 100 / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("inclusive:")
    lines += [f"  {n * 100 / total:5.1f}%  {f}" for f, n in inclusive.most_common(top * 2)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lab", type=Path, required=True)
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--code", type=Path, default=BENCH.parent, help="the checkout whose controller runs")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--py-spy", action="store_true", help="sample the run with py-spy and print the hot spots")
    parser.add_argument("--gil", action="store_true", help="with --py-spy: only threads holding the GIL")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--input-sleep",
        type=float,
        help="experiment: set Invoke's Runner.input_sleep (only local hosts run through Invoke now)",
    )
    args = parser.parse_args(argv)
    lab = Lab(args.lab, prefix=json.loads((args.lab / "lab.json").read_text())["prefix"])
    text = args.inventory.read_text()
    names = [line.split(":")[0].strip() for line in text.splitlines() if line.startswith("      ") and ":" in line]
    work = Path(tempfile.mkdtemp(prefix="gb-prof-"))
    try:
        for rep in range(args.runs):
            prepare(lab, names)
            reports = work / f"reports-{rep}"
            cmd = premarket_argv(args.code.resolve(), args.inventory, len(names), reports, args.input_sleep)
            raw = work / f"profile-{rep}.txt"
            if args.py_spy:
                spy = Path(sys.executable).parent / "py-spy"
                gil = ["--gil"] if args.gil else []
                cmd = [str(spy), "record", *gil, "--format", "raw", "--rate", "250", "-o", str(raw), "--", *cmd]
            start = time.monotonic()
            with open(work / "output.log", "wb") as log:
                proc = subprocess.Popen(cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
                _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.monotonic() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
            print(
                f"run {rep + 1}: {len(names)} hosts, exit {proc.returncode}, {seconds:.2f}s, controller CPU "
                f"{cpu:.2f}s (user {usage.ru_utime:.2f}, sys {usage.ru_stime:.2f}) = "
                f"{cpu / len(names) * 1000:.0f} ms/host, peak RSS {usage.ru_maxrss / 1024:.0f} MB, "
                f"context switches {usage.ru_nvcsw + usage.ru_nivcsw}" + (" (sampled: slower)" if args.py_spy else ""),
                flush=True,
            )
            if args.py_spy and raw.is_file():
                print("\n".join(hot_functions(raw, args.top)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
