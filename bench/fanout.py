"""Fan-out benchmark: Guardian premarket against ansible-core, pyinfra, plain OpenSSH and the floor.

Brings up its own lab (prefix "gb", subnet 198.18.5.0/24; "gc"/6 with --smoke), breaks a fixed
share of hosts before every run (UW fault on 1 host in 4, SIP fault on the next), runs each peer
on the same hosts with the same settle time, checks that every host healed, and prints medians,
ratios to Guardian, SSH connections per host and the controller's peak memory.

    .venv/bin/python bench/fanout.py                  # full benchmark (needs bench/.venv-peers)
    .venv/bin/python bench/fanout.py --smoke          # 4 hosts, guardian + floor + openssh, 1 run
    .venv/bin/python bench/fanout.py --sizes 40 --runs 5 --peers guardian,floor,openssh

Sizes: ``N`` (direct) or ``N@MS`` (through bench/latency_proxy.py adding MS/2 each way).
Needs root (the lab). Talks only to the lab's 198.18.5.x hosts and to 127.0.0.1.

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
from workload import SETTLE, Env, Size, accepted, check_all, connections_per_host, prepare, size_env  # noqa: E402

from remediation.lab import Lab  # noqa: E402

ALL_PEERS = tuple(PEERS)
SMOKE_PEERS = ("guardian", "floor", "openssh")
BIG = 100  # sizes >= BIG run only the peers that run at scale (guardian, floor)
REFERENCE_SIZE = "40"  # where the targets compare: more runs, --dry-run and guard-off runs


def run_peer(peer: Peer, env: Env, rep: int, *, faults: bool = True) -> Run:
    """Prepare the hosts (faulted, or all healthy), run one peer once, check and measure."""
    lab, names = env.lab, env.names
    label = peer.name if faults else f"{peer.name}-healthy"
    t0 = time.monotonic()
    prepare(lab, names, faults=faults)
    prep_s = time.monotonic() - t0
    work = env.scratch / f"{label}-{rep}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = work / "out"
    out.mkdir()
    before = accepted(lab, names)
    timing = peer.run(peer.setup(env, work, out), work / "output.log")
    conns = connections_per_host(before, accepted(lab, names)) if peer.uses_ssh else None
    verdict = peer.check(env, work, check_all(lab, names), timing.exit_code)
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
        timing.cpu_s,
        prep_s,
        verdict.note,
    )


def jobs_for(
    size: Size, rep: int, size_peers: list[str], *, peers: list[str], args: argparse.Namespace
) -> list[tuple[Peer, bool]]:
    """What run ``rep`` at ``size`` times, in order: (peer, faults injected?). Peers take turns
    going first; ansible runs only at ``--ansible-sizes``, ``--ansible-runs`` times; at the
    reference size Guardian also runs --dry-run against a healthy real run (twice, in both
    orders: single runs are noise), and once with its guard off (not with --smoke)."""
    shift = rep % len(size_peers)
    order = size_peers[shift:] + size_peers[:shift]
    if "ansible" in order and (size.label not in args.ansible_sizes.split(",") or rep >= args.ansible_runs):
        order.remove("ansible")
    jobs = [(PEERS[p], True) for p in order]
    if size.label == REFERENCE_SIZE and rep < 2 and "guardian" in peers and not args.no_dry_run:
        pair = [(GUARDIAN_DRY_RUN, True), (PEERS["guardian"], False)]
        jobs += pair if rep == 0 else pair[::-1]
    if (size.label == REFERENCE_SIZE or size.rtt_ms) and rep == 0 and "guardian" in peers and not args.smoke:
        jobs.append((GUARDIAN_NO_GUARD, True))  # what the blast-radius guard costs
    return jobs


def main(argv: list[str] | None = None) -> int:
    """Parse options, bring the lab up, run every size and peer, print (and save) the results."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default=f"10,{REFERENCE_SIZE},{BIG},20@50", help="comma list: N or N@RTT_MS")
    parser.add_argument(
        "--runs", type=int, default=2, help="repetitions at 40 hosts and latency sizes; half (>= 1) elsewhere"
    )
    parser.add_argument("--ansible-runs", type=int, default=1, help="repetitions for ansible (default 1: slow)")
    parser.add_argument("--ansible-sizes", default="40", help="sizes ansible runs at (default 40)")
    parser.add_argument("--peers", default=",".join(ALL_PEERS), help=f"comma list of {', '.join(ALL_PEERS)}")
    parser.add_argument("--smoke", action="store_true", help="4 hosts, 1 run, guardian+floor+openssh")
    parser.add_argument("--no-dry-run", action="store_true", help="skip the --dry-run vs healthy runs at 40")
    parser.add_argument("--workdir", type=Path, help="lab workdir (default /tmp/gb-bench, or a temp dir)")
    parser.add_argument("--save", type=Path, help="write the results (Markdown) to this file")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("fanout: the lab needs root", file=sys.stderr)
        return 3
    if args.smoke:
        sizes, runs, peers = [Size(4)], 1, list(SMOKE_PEERS)
        prefix, subnet = "gc", 6
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gc-bench-"))
    else:
        sizes = [Size.parse(s) for s in args.sizes.split(",") if s]
        runs, peers = args.runs, [p for p in args.peers.split(",") if p]
        prefix, subnet = "gb", 5
        workdir = args.workdir or Path("/tmp/gb-bench")
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
    n_lab = max(s.hosts for s in sizes)
    print(f"fanout: bringing up {n_lab} lab hosts ({prefix}, 198.18.{subnet}.0/24) in {workdir}", flush=True)
    all_runs: list[Run] = []
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
        for size in sizes:
            size_peers = [p for p in peers if size.hosts < BIG or PEERS[p].at_scale]
            if size.rtt_ms:
                size_peers = [p for p in size_peers if PEERS[p].uses_ssh]  # the proxy delays SSH only
            with size_env(lab, size, workdir / "scratch" / size.label) as env:
                size_runs = runs if size.label == REFERENCE_SIZE or size.rtt_ms or args.smoke else max(1, runs // 2)
                for rep in range(size_runs):
                    for peer, faults in jobs_for(size, rep, size_peers, peers=peers, args=args):
                        run = run_peer(peer, env, rep, faults=faults)
                        all_runs.append(run)
                        conns = f"{run.conns_per_host:.1f}" if run.conns_per_host is not None else "-"
                        print(
                            f"  {size.label:>8} {run.peer:<17} run {rep + 1}: {run.seconds:6.2f}s "
                            f"healed {run.healed}/{run.hosts} collected {run.collected} conns/host {conns} "
                            f"(prep {run.prep_s:.1f}s) cpu {run.cpu_s:.1f}s "
                            f"rss {run.rss_single_mb:.0f}/{run.rss_tree_mb:.0f} MB {run.note}",
                            flush=True,
                        )
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
        f"Settle {SETTLE:g}s for every peer; forks = hosts; UW fault on 1 host in 4, SIP on the next; "
        f"{runs} run(s) per peer at 40 hosts and with latency, {max(1, runs // 2)} elsewhere "
        f"(ansible {args.ansible_runs}, at {args.ansible_sizes}; "
        f"--dry-run and healthy runs twice at 40, guard off once at 40 and with latency), "
        f"peers alternated; ratios compare medians; total {elapsed:.0f}s; "
        f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
        "",
        table(rows),
        "",
    ]
    if not args.smoke:
        text.append("Targets:")
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


if __name__ == "__main__":
    sys.exit(main())
