"""The floors: a job started inside every lab host at once, with no SSH.

Usage: floor.py --lab WORKDIR --inventory FILE [--job shell|guardian] [--settle S] [--pid-dir D]
                [--dry-run] [--out DIR]

``--job shell`` (the ``floor`` row) runs the peers' own job, ``bench/peer_job.sh``, in each host:
what the job costs with no SSH and no tool around it. ``--job guardian`` (the ``guardian-floor``
row) runs exactly the runner script Guardian streams over SSH (same config, same signatures).
Both go into each host's namespaces through nsenter, all hosts in parallel; each job's CPU (user
+ system of it and everything it waited for, from ``wait4``) is measured here, because a process
started from outside the host is reaped outside it.

Prints one JSON line: {"outcomes": {host: outcome}, "cpu": {host: CPU seconds}}. Exit 0 when
every host ended healthy or healed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from remediation.execution.bundle import build_runner  # noqa: E402
from remediation.execution.hostrun import PYTHON_FLAGS, JobOptions, runner_config  # noqa: E402
from remediation.inventory import HostSpec, load_inventory  # noqa: E402
from remediation.lab import Lab  # noqa: E402
from remediation.lab.model import HOST_ENV  # noqa: E402
from remediation.reporting.report import new_run_id  # noqa: E402
from remediation.rules import load_rules, rules_data  # noqa: E402

PEER_JOB = BENCH / "peer_job.sh"


def outcome_of(stdout: str) -> str:
    """The outcome in the runner's ``result`` event, or ``failed``."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{") and '"event": "result"' in line:
            return str(json.loads(line).get("outcome", "failed"))
    return "failed"


def runner_argv(host: HostSpec, job: JobOptions) -> list[str]:
    """The argv of the command Guardian runs on ``host`` (``hostrun.runner_invocation``, whose
    ``shlex.join`` of it goes over SSH), built as a list: ``shlex.split`` of that ~45 KB string is
    pure Python, and for 40 hosts it cost this script ~13 CPU-s before the last runner started."""
    config, _ = runner_config(host, job).split_secrets()
    return [str(host.get("python")), *PYTHON_FLAGS, "-c", build_runner(config)]


def run_inside(init_pid: int, argv: list[str], *, stdin: bytes, timeout: float) -> tuple[int, bytes, bytes, float]:
    """Run ``argv`` in the namespaces of ``init_pid`` (as ``Lab.exec`` does) with ``stdin``;
    returns (exit code, stdout, stderr, CPU seconds of the job and everything it waited for).
    The child is reaped here with ``wait4`` (not by Popen) so that its rusage is its own."""
    cmd = ["nsenter", "-t", str(init_pid), "-n", "-p", "-m", "-u", "--wd=/root", "--", *argv]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=HOST_ENV,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    chunks: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda k=k, f=f: chunks.__setitem__(k, f.read()), daemon=True)
        for k, f in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(stdin)
    proc.stdin.close()
    killer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    return proc.returncode, chunks.get("out", b""), chunks.get("err", b""), usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    """Run the job in every host of the inventory's ``lab`` group."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lab", type=Path, required=True, help="the lab's workdir")
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--job", choices=("shell", "guardian"), default="shell")
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--pid-dir", default="state", help="where the daemons' pid files are (shell job)")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--out", type=Path, help="keep each host's output here (NAME.jsonl, or NAME.tar)")
    args = parser.parse_args(argv)
    lab = Lab(args.lab, prefix=json.loads((args.lab / "lab.json").read_text())["prefix"])
    hosts = load_inventory([args.inventory], overrides={"settle_seconds": args.settle}).select("lab")
    job = JobOptions(run_id=new_run_id(), dry_run=args.dry_run, signatures=rules_data(load_rules([])))
    script = PEER_JOB.read_bytes()
    argvs = {h.name: runner_argv(h, job) for h in hosts} if args.job == "guardian" else {}

    def one(host: HostSpec) -> tuple[str, float]:
        init_pid = lab.init_pid(host.name)
        if args.job == "guardian":
            code, out, err, cpu = run_inside(init_pid, argvs[host.name], stdin=b"", timeout=300)
            if args.out:
                (args.out / f"{host.name}.jsonl").write_bytes(out + err)
            return outcome_of(out.decode(errors="replace")), cpu
        manager = str(host.get("manager"))
        shell = ["sh", "-s", "--", manager, f"{args.settle:g}", "-", args.pid_dir]
        code, out, err, cpu = run_inside(init_pid, shell, stdin=script, timeout=300)
        if args.out:
            (args.out / f"{host.name}.tar").write_bytes(out)
        return ("healed" if code == 0 else "failed"), cpu

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        results = dict(zip([h.name for h in hosts], pool.map(one, hosts)))
    outcomes = {name: outcome for name, (outcome, _) in results.items()}
    print(json.dumps({"outcomes": outcomes, "cpu": {n: round(c, 4) for n, (_, c) in results.items()}}, sort_keys=True))
    good = ("healthy", "healed", "degraded", "unhealthy") if args.dry_run else ("healthy", "healed")
    return 0 if all(o in good for o in outcomes.values()) else 2


if __name__ == "__main__":
    sys.exit(main())
