"""Measure the on-host runner's CPU on a healthy lab host: the code streamed (as main builds it,
and as this checkout builds it) against the runner ``invoke deploy`` installed, in turn.

Brings up a 1-host lab of its own (prefix gz + GUARDIAN_TEST_LAB_SHIFT, as the tests move
theirs), deploys this checkout, and runs the exact command the controller would send
(``runner_command``) inside the host with no SSH, N times per variant, alternating. Each figure
is user+sys CPU from ``wait4`` inside the host: the runner and everything it waited for (the
check). Also one ``-X importtime`` run per variant. Usage (root)::

    .venv/bin/python scripts/startup_cpu.py [--runs 15] [--before-tree DIR]

``--before-tree`` is a checkout of the code to compare with (e.g. ``git archive main``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remediation import jobs  # noqa: E402
from remediation.lab import Lab  # noqa: E402

# Runs inside the host: the runner with its output in files, reaped by wait4 for its CPU.
MEASURE = """\
import json, os, subprocess, sys
argv = json.load(open(sys.argv[1]))
out = open("/tmp/startup-out.txt", "wb")
err = open("/tmp/startup-err.txt", "wb")
proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd="/root")
_, status, usage = os.wait4(proc.pid, 0)
result = [json.loads(l) for l in open("/tmp/startup-out.txt") if '"result"' in l]
code = result[-1].get("runner_code", "-") if result else "none"
outcome = result[-1]["outcome"] if result else "none"
print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime, "code": code, "outcome": outcome}))
"""


def command(tree: Path, inventory: Path, run_id: str) -> list[str]:
    """The controller's command for h01, as the code in ``tree`` builds it."""
    probe = (
        "import json, shlex, sys\n"
        f"sys.path.insert(0, {str(tree)!r})\n"
        "from pathlib import Path\n"
        "from remediation.execution.hostrun import JobOptions, runner_command\n"
        "from remediation.inventory import load_inventory\n"
        "from remediation.rules import load_rules, rules_data\n"
        f"host = load_inventory([Path({str(inventory)!r})]).hosts['h01']\n"
        f"job = JobOptions(run_id={run_id!r}, signatures=rules_data(load_rules([])))\n"
        "print(json.dumps(shlex.split(runner_command(host, job))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tree).stdout
    return list(json.loads(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--before-tree", type=Path)
    args = parser.parse_args()
    shift = int(os.environ.get("GUARDIAN_TEST_LAB_SHIFT", "0") or 0)
    prefix, subnet = f"gz{shift}", 9 + 10 * shift
    workdir = Path(tempfile.mkdtemp(prefix="startup-lab-"))
    lab = Lab(workdir, prefix=prefix, subnet=subnet, inventory_path=workdir / "inventory.yml")
    try:
        lab.up(1, managers=["supervisor"])
        request = jobs.FleetRequest(hosts="h01", inventory=[lab.inventory_path], reports=workdir / "r", ssh_config=None)
        assert jobs.deploy(request, console=Console(file=io.StringIO())) == 0, "deploy failed"
        variants: dict[str, list[str]] = {}
        if args.before_tree:
            variants["before (streamed)"] = command(args.before_tree, lab.inventory_path, "startup-before")
        variants["streamed"] = command(ROOT, lab.inventory_path, "startup-streamed")
        variants["installed"] = command(ROOT, lab.inventory_path, "startup-installed")
        lab.path("h01", "/tmp/startup-measure.py").write_text(MEASURE)
        record = lab.path("h01", "/root/stock-bot/.guardian/runner/bundle.json")
        hidden = record.with_name("bundle.json.off")
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for name, argv in variants.items():
            lab.path("h01", f"/tmp/startup-{len(name)}.json").write_text(json.dumps(argv))
            print(f"{name}: command {sum(len(a) + 1 for a in argv)} bytes", flush=True)
        for _ in range(args.runs):
            for name in variants:
                if name == "streamed":
                    record.rename(hidden)  # the installed runner is not this code: stream
                out = lab.exec("h01", ["/usr/bin/python3", "/tmp/startup-measure.py", f"/tmp/startup-{len(name)}.json"])
                if name == "streamed":
                    hidden.rename(record)
                row = json.loads(out.stdout)
                assert row["outcome"] == "healthy", row
                expected = "installed" if name == "installed" else ("streamed" if name == "streamed" else "-")
                assert row["code"] == expected, (name, row)
                cpu[name].append(row["cpu"])
        for name, values in cpu.items():
            print(
                f"{name}: median {statistics.median(values):.3f} CPU-s, min {min(values):.3f}, max {max(values):.3f} "
                f"({len(values)} runs)"
            )
        for name, argv in variants.items():
            best: dict[str, int] = {}  # each module's smallest self time over the runs (the load varies)
            for _ in range(5):
                if name == "streamed":
                    record.rename(hidden)
                timed = [argv[0], "-X", "importtime", *argv[1:]]
                lab.path("h01", "/tmp/startup-it.json").write_text(json.dumps(timed))
                lab.exec("h01", ["/usr/bin/python3", "/tmp/startup-measure.py", "/tmp/startup-it.json"])
                if name == "streamed":
                    hidden.rename(record)
                for line in lab.path("h01", "/tmp/startup-err.txt").read_text().splitlines():
                    if line.startswith("import time:") and "|" in line and "self" not in line:
                        self_us, _cum, mod = (x.strip() for x in line[len("import time:") :].split("|"))
                        best[mod] = min(best.get(mod, 1 << 40), int(self_us))
            total = sum(best.values()) / 1000
            agent = sum(us for mod, us in best.items() if mod.startswith("guardian_agent")) / 1000
            top = ", ".join(f"{m} {u / 1000:.1f}" for m, u in sorted(best.items(), key=lambda kv: -kv[1])[:6])
            print(f"{name}: imports {total:.1f} ms (agent modules {agent:.1f} ms, {len(best)} modules); top: {top}")
    finally:
        lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
