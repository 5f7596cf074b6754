"""Fan-out benchmark: Guardian premarket against ansible-core, pyinfra, plain OpenSSH and two floors.

Brings up its own lab (prefix "gb", subnet 198.18.5.0/24; "gc"/6 with --smoke; both moved by
``GUARDIAN_TEST_LAB_SHIFT=N`` to prefix+N and subnet+10N, as the test labs are), breaks a fixed
share of hosts before every run (UW fault on 1 host in 4, SIP fault on the next), runs each peer
on the same hosts with the same settle time, checks that every host healed, and prints medians,
ratios to Guardian, SSH connections per host, the controller's CPU and peak memory, and the CPU
used inside the hosts (healthy and faulted hosts apart).

Peers: ``guardian`` (runner streamed), ``guardian-installed`` (``invoke deploy`` first),
``pyinfra``, ``ansible``, ``openssh``, and with no SSH at all ``floor`` (the peers' shell job,
``peer_job.sh``, inside each host) and ``guardian-floor`` (Guardian's runner inside each host).
``--pidfiles no,yes``: with ``no`` the app's daemons write their pid files where Guardian does
not look (rows ``N-nopid``); the reference size runs every mode, the others the first.

    .venv/bin/python bench/fanout.py                  # full benchmark (needs bench/.venv-peers)
    .venv/bin/python bench/fanout.py --smoke          # 4 hosts, 1 run, no venv peers
    .venv/bin/python bench/fanout.py --sizes 40 --runs 5 --peers guardian,floor,openssh

Sizes: ``N`` (direct) or ``N@MS`` (through bench/latency_proxy.py adding MS/2 each way).
Needs root (the lab). Talks only to the lab's 198.18.x hosts and to 127.0.0.1.

This is the driver: the peers are in ``peers.py`` (one object each), what every peer is
given (the hosts of a size, faults before each run, checks after) in ``workload.py``, measuring
in ``measure.py``, the summary table in ``summary.py`` and the targets the results are held to
in ``targets.py``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from measure import Run  # noqa: E402
from peers import GUARDIAN_DRY_RUN, GUARDIAN_NO_GUARD, PEERS, PEERS_VENV, Peer  # noqa: E402
from summary import growth, machine, summarize, table, versions  # noqa: E402
from targets import evaluate  # noqa: E402
from workload import (  # noqa: E402
    SETTLE,
    Env,
    Size,
    accepted,
    check_all,
    connections_per_host,
    fault_kind,
    host_cpu,
    lab_names,
    prepare,
    size_env,
)

from remediation.lab import Lab  # noqa: E402

ALL_PEERS = tuple(PEERS)
SMOKE_PEERS = ("guardian", "guardian-installed", "floor", "guardian-floor", "openssh")
BIG = 100  # sizes >= BIG run only the peers that run at scale (guardian, pyinfra, floor)
REFERENCE_SIZE = "40"  # where the targets compare: more runs, both pid-file modes, --dry-run
DEFAULT_SIZES = "10,40,100,200,20@50,40@50"
SHIFT_VAR = "GUARDIAN_TEST_LAB_SHIFT"


def run_peer(peer: Peer, env: Env, rep: int, *, faults: bool = True) -> Run:
    """Prepare the hosts (faulted, or all healthy), run one peer once, check and measure: its
    time, its controller's CPU and memory, and the CPU used inside each host (the processes of
    the host's PID namespace, plus the job's own rusage for a peer started from outside)."""
    lab, names = env.lab, env.names
    label = peer.name if faults else f"{peer.name}-healthy"
    t0 = time.monotonic()
    prepare(lab, names, faults=faults)
    work = env.scratch / f"{label}-{rep}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = work / "out"
    out.mkdir()
    peer.before(env, work)
    prep_s = time.monotonic() - t0
    invocation = peer.setup(env, work, out)
    before, cpu_before = accepted(lab, names), host_cpu(lab, names)
    timing = peer.run(invocation, work / "output.log")
    cpu_after = host_cpu(lab, names)
    conns = connections_per_host(before, accepted(lab, names)) if peer.uses_ssh else None
    verdict = peer.check(env, work, check_all(lab, names), timing.exit_code)
    peer.after(env, work)
    job_cpu = verdict.job_cpu or {}
    per_host = {n: cpu_after[n] - cpu_before[n] + job_cpu.get(n, 0.0) for n in names}
    faulted = [per_host[n] for i, n in enumerate(names) if faults and fault_kind(i)]
    healthy = [per_host[n] for i, n in enumerate(names) if not (faults and fault_kind(i))]
    reported = verdict.runner_cpu or {}
    runner_healthy = [reported[n] for i, n in enumerate(names) if not (faults and fault_kind(i)) and n in reported]
    return Run(
        label,
        env.size.label,
        timing.seconds,
        timing.exit_code,
        verdict.healed,
        len(names),
        verdict.collected,
        conns,
        timing.rss_single_mb,
        timing.rss_tree_mb,
        timing.cpu_s - sum(job_cpu.values()),  # the floors' jobs are its descendants: not the controller
        prep_s,
        verdict.note,
        statistics.mean(healthy) if healthy else None,
        statistics.mean(faulted) if faulted else None,
        statistics.mean(runner_healthy) if runner_healthy else None,
    )


def jobs_for(
    size: Size, rep: int, size_peers: list[str], *, peers: list[str], args: argparse.Namespace, primary: bool = True
) -> list[tuple[Peer, bool]]:
    """What run ``rep`` at ``size`` times, in order: (peer, faults injected?). Peers take turns
    going first; ansible runs only at ``--ansible-sizes`` in the first pid-file mode (``primary``),
    ``--ansible-runs`` times; at the reference size, first mode, Guardian also runs --dry-run
    against a healthy real run once (in turns: dry first), and with ``--noguard`` once with its
    guard off (never with --smoke)."""
    shift = rep % len(size_peers)
    order = size_peers[shift:] + size_peers[:shift]
    if "ansible" in order and (
        size.base not in args.ansible_sizes.split(",") or rep >= args.ansible_runs or not primary
    ):
        order.remove("ansible")
    jobs = [(PEERS[p], True) for p in order]
    reference = size.base == REFERENCE_SIZE and primary and "guardian" in peers and not args.smoke
    if reference and rep == 0 and not args.no_dry_run:
        jobs += [(GUARDIAN_DRY_RUN, True), (PEERS["guardian"], False)]
    if (reference or (size.rtt_ms and primary)) and rep == 0 and getattr(args, "noguard", False):
        jobs.append((GUARDIAN_NO_GUARD, True))  # what the blast-radius guard costs
    return jobs


def plan_sizes(sizes: list[str], modes: list[bool]) -> list[tuple[Size, bool]]:
    """Every size to run, with whether it is in the first pid-file mode: the reference size in
    every mode of ``--pidfiles``, the others in the first one only (the time budget)."""
    planned = []
    for text in sizes:
        base = Size.parse(text)
        for index, mode in enumerate(modes if base.label == REFERENCE_SIZE else modes[:1]):
            planned.append((Size(base.hosts, base.rtt_ms, mode), index == 0))
    return planned


def runs_for(size: Size, primary: bool, args: argparse.Namespace) -> int:
    """Repetitions: ``--runs`` at the reference size in the first pid-file mode, ``--other-runs``
    everywhere else (1 by default: the 15-minute budget)."""
    if args.smoke:
        return 1
    return args.runs if size.base == REFERENCE_SIZE and primary else args.other_runs


def main(argv: list[str] | None = None) -> int:
    """Parse options, bring the lab up, run every size and peer, print (and save) the results."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma list: N or N@RTT_MS")
    parser.add_argument(
        "--pidfiles",
        default="no,yes",
        help="comma list of yes/no: whether the daemons write their pid files where Guardian looks; "
        "the reference size (40) runs every mode, the others the first one",
    )
    parser.add_argument("--runs", type=int, default=2, help="repetitions at 40 hosts in the first pid-file mode")
    parser.add_argument("--other-runs", type=int, default=1, help="repetitions everywhere else (default 1)")
    parser.add_argument("--ansible-runs", type=int, default=1, help="repetitions for ansible (default 1: slow)")
    parser.add_argument("--ansible-sizes", default="40", help="sizes ansible runs at (default 40)")
    parser.add_argument("--peers", default=",".join(ALL_PEERS), help=f"comma list of {', '.join(ALL_PEERS)}")
    parser.add_argument("--smoke", action="store_true", help="4 hosts, 1 run, " + "+".join(SMOKE_PEERS))
    parser.add_argument("--no-dry-run", action="store_true", help="skip the --dry-run vs healthy runs at 40")
    parser.add_argument("--noguard", action="store_true", help="also run Guardian with its guard off at 40")
    parser.add_argument("--workdir", type=Path, help="lab workdir (default /tmp/PREFIX-bench, or a temp dir)")
    parser.add_argument("--save", type=Path, help="write the results (Markdown) to this file")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("fanout: the lab needs root", file=sys.stderr)
        return 3
    try:
        modes = [{"yes": True, "no": False}[m.strip()] for m in args.pidfiles.split(",") if m.strip()]
    except KeyError:
        parser.error("--pidfiles takes a comma list of yes and no")
    if args.smoke:
        planned, peers = [(Size(4, 0, modes[0] if modes else True), True)], list(SMOKE_PEERS)
        prefix, subnet = lab_names("gc", 6)
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"{prefix}-bench-"))
    else:
        planned = plan_sizes([s for s in args.sizes.split(",") if s], modes or [True])
        peers = [p for p in args.peers.split(",") if p]
        prefix, subnet = lab_names("gb", 5)
        workdir = args.workdir or Path(f"/tmp/{prefix}-bench")
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {', '.join(ALL_PEERS)}")
    in_venv = [p for p in peers if PEERS[p].needs_venv]
    if in_venv and not PEERS_VENV.is_dir():
        parser.error(
            f"{'/'.join(in_venv)} need {PEERS_VENV}: python3 -m venv {PEERS_VENV} && "
            f"{PEERS_VENV}/bin/pip install ansible-core pyinfra"
        )

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # so the lab below is torn down on `kill` too, not only on Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()
    lab = Lab(workdir, prefix=prefix, subnet=subnet, inventory_path=workdir / "lab-inventory.yml")
    n_lab = max(s.hosts for s, _ in planned)
    print(f"fanout: bringing up {n_lab} lab hosts ({prefix}, 198.18.{subnet}.0/24) in {workdir}", flush=True)
    all_runs: list[Run] = []
    schedule: list[str] = []
    try:
        for attempt in (1, 2):
            try:
                lab.up(n_lab)
                break
            except Exception as exc:
                if attempt == 2:
                    raise
                print(f"fanout: lab up failed ({exc}); retrying once", flush=True)
                lab.down()
        print(f"fanout: lab up in {time.monotonic() - started:.0f}s", flush=True)
        for size, primary in planned:
            size_peers = [p for p in peers if size.hosts < BIG or PEERS[p].at_scale]
            if size.rtt_ms:
                size_peers = [p for p in size_peers if PEERS[p].uses_ssh]  # the proxy delays SSH only
            if not size_peers:
                continue
            size_runs = runs_for(size, primary, args)
            schedule.append(f"{size.label} x{size_runs}")
            with size_env(lab, size, workdir / "scratch" / size.label) as env:
                for rep in range(size_runs):
                    for peer, faults in jobs_for(size, rep, size_peers, peers=peers, args=args, primary=primary):
                        run = run_peer(peer, env, rep, faults=faults)
                        all_runs.append(run)
                        print(f"  {progress_line(run, rep)}", flush=True)
    finally:
        if not args.keep_lab:
            lab.down()
            if args.smoke or args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
    rows = summarize(all_runs)
    elapsed = time.monotonic() - started
    text = [
        f"Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"Machine: {machine()}",
        f"Versions: {versions()}",
        f"Command: bench/fanout.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip(),
        f"Lab: {prefix}, 198.18.{subnet}.0/24 (GUARDIAN_TEST_LAB_SHIFT={os.environ.get(SHIFT_VAR) or 0})",
        f"Settle {SETTLE:g}s for every peer; forks = hosts; UW fault on 1 host in 4, SIP on the next; "
        f"runs per size (repeats reduced to fit the time budget): {', '.join(schedule)}; "
        f"ansible {args.ansible_runs} run(s), at {args.ansible_sizes} only; "
        f"'-nopid': the daemons write their pid files in run/, where Guardian does not look "
        f"(README defaults, except the signal-style hosts, which cannot restart without them); "
        f"peers alternated; ratios compare medians; total {elapsed:.0f}s; "
        f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
        "",
        table(rows),
        "",
    ]
    if not args.smoke:
        text.append("Targets (issue 18; printed, never asserted):")
        for name, met, numbers in evaluate(rows):
            mark = "MET" if met else "NOT MET" if met is not None else "n/a"
            text.append(f"- {name}: {mark} ({numbers})")
        text.append(f"- Growth: {growth(rows)}")
    notes = [f"{r['size']} {r['peer']}: {n}" for r in rows for n in r["notes"]]
    if notes:
        text += ["", "Notes:", *[f"- {n}" for n in notes]]
    report = "\n".join(text)
    print()
    print(report)
    if args.save:
        args.save.write_text(report + "\n")
    failed = [r for r in rows if r["ok"] != r["runs"]]
    return 1 if failed else 0


def progress_line(run: Run, rep: int) -> str:
    """One line per run while the benchmark goes."""
    conns = f"{run.conns_per_host:.1f}" if run.conns_per_host is not None else "-"
    on_host = "/".join(f"{c:.3f}" if c is not None else "-" for c in (run.host_cpu_healthy, run.host_cpu_faulted))
    return (
        f"{run.size:>14} {run.peer:<19} run {rep + 1}: {run.seconds:6.2f}s "
        f"healed {run.healed}/{run.hosts} collected {run.collected} conns/host {conns} "
        f"(prep {run.prep_s:.1f}s) cpu {run.cpu_s:.1f}s on-host/host {on_host}s "
        + (f"runner+check healthy {run.runner_cpu_healthy:.3f}s " if run.runner_cpu_healthy is not None else "")
        + f"rss {run.rss_single_mb:.0f}/{run.rss_tree_mb:.0f} MB {run.note}"
    )


if __name__ == "__main__":
    sys.exit(main())
