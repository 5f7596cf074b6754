"""The floor: Guardian's on-host runner started inside every lab host at once, with no SSH.

Usage: floor.py --lab WORKDIR --inventory FILE [--settle S] [--dry-run]

Builds exactly the runner script Guardian streams over SSH (same config, same signatures) and
runs it in each host's namespaces through ``Lab.exec`` (nsenter), all hosts in parallel.
Prints one JSON line: {host: outcome}. Exit 0 when every host ended healthy or healed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import shlex
import sys
from pathlib import Path

from remediation.execution.hostrun import JobOptions, runner_command
from remediation.inventory import HostSpec, load_inventory
from remediation.lab import Lab
from remediation.reporting.report import new_run_id
from remediation.rules import load_rules, rules_data


def outcome_of(stdout: str) -> str:
    """The outcome in the runner's ``result`` event, or ``failed``."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{") and '"event": "result"' in line:
            return str(json.loads(line).get("outcome", "failed"))
    return "failed"


def main(argv: list[str] | None = None) -> int:
    """Run the runner in every host of the inventory's ``lab`` group."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", type=Path, required=True, help="the lab's workdir")
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--out", type=Path, help="keep each host's runner output here (NAME.jsonl)")
    args = parser.parse_args(argv)
    lab = Lab(args.lab, prefix=json.loads((args.lab / "lab.json").read_text())["prefix"])
    hosts = load_inventory([args.inventory], overrides={"settle_seconds": args.settle}).select("lab")
    job = JobOptions(run_id=new_run_id(), dry_run=args.dry_run, signatures=rules_data(load_rules([])))

    def one(host: HostSpec) -> str:
        proc = lab.exec(host.name, shlex.split(runner_command(host, job)), timeout=300, check=False)
        if args.out:
            (args.out / f"{host.name}.jsonl").write_text(proc.stdout + proc.stderr)
        return outcome_of(proc.stdout)

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        outcomes = dict(zip([h.name for h in hosts], pool.map(one, hosts)))
    print(json.dumps(outcomes, sort_keys=True))
    good = ("healthy", "healed", "degraded", "unhealthy") if args.dry_run else ("healthy", "healed")
    return 0 if all(o in good for o in outcomes.values()) else 2


if __name__ == "__main__":
    sys.exit(main())
