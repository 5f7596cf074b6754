"""The peers the benchmark times, one object each: Guardian (streamed and installed), ansible-core,
pyinfra, OpenSSH, and two floors with no SSH: the peers' shell job and Guardian's own runner.

Each peer does the same job on the same hosts (check, heal, settle, verify, bring the logs
home) and answers three questions for the driver: how to run it for this size (``setup``), how
to run it (``run``, timed) and what came of it (``check``: hosts healed, logs collected).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from measure import Timing, timed
from workload import BENCH, SETTLE, Env, fault_kind

from remediation.lab.model import APP_DIR, HOST_PYTHON

REPO = BENCH.parent
PEERS_VENV = BENCH / ".venv-peers"


@dataclass(frozen=True)
class Invocation:
    """A peer's command for one run, and its environment (None: the benchmark's own)."""

    argv: list[str]
    env: dict[str, str] | None = None


@dataclass(frozen=True)
class Verdict:
    """What one run achieved: hosts healthy afterwards, hosts whose logs came home, and why not;
    for a peer started inside the hosts (no SSH), each host's job CPU from its own rusage."""

    healed: int
    collected: int
    note: str = ""
    job_cpu: Mapping[str, float] | None = None
    runner_cpu: Mapping[str, float] | None = None  # Guardian: each host's runner_cpu (runner + check)


class Peer(Protocol):
    """One tool doing the premarket job on every host of a size."""

    name: str
    uses_ssh: bool  # False: started inside the hosts (no SSH logins to count, no latency proxy)
    at_scale: bool  # runs at the big sizes too
    needs_venv: bool  # lives in bench/.venv-peers

    def setup(self, env: Env, work: Path, out: Path) -> Invocation:
        """Write what this run needs under ``work``; the peer leaves host files in ``out``."""
        ...

    def run(self, invocation: Invocation, log: Path) -> Timing:
        """Run ``invocation`` once, timed, its output in ``log``."""
        ...

    def check(self, env: Env, work: Path, codes: Mapping[str, int], exit_code: int) -> Verdict:
        """Judge the run from the hosts' health check exit codes afterwards, the peer's exit code
        and what it left in ``work`` (``out/``, ``output.log``)."""
        ...

    def before(self, env: Env, work: Path) -> None:
        """Untimed work before the run (after the hosts are prepared): e.g. ``invoke deploy``."""
        ...

    def after(self, env: Env, work: Path) -> None:
        """Untimed work after the run has been judged: e.g. undo the deploy."""
        ...


class CommandPeer:
    """A peer that is one command: timed as is, healed = hosts whose check passes afterwards."""

    name = ""
    uses_ssh = True
    at_scale = False
    needs_venv = False

    def setup(self, env: Env, work: Path, out: Path) -> Invocation:
        raise NotImplementedError

    def run(self, invocation: Invocation, log: Path) -> Timing:
        return timed(invocation.argv, cwd=REPO, env=invocation.env, log=log)

    def before(self, env: Env, work: Path) -> None:
        pass

    def after(self, env: Env, work: Path) -> None:
        pass

    def check(self, env: Env, work: Path, codes: Mapping[str, int], exit_code: int) -> Verdict:
        healed = sum(c == 0 for c in codes.values())
        note = ""
        if healed < len(env.names) or exit_code != 0:
            tail = (work / "output.log").read_text(errors="replace")[-300:].replace("\n", " | ")
            note = f"exit {exit_code}; unhealthy: {[n for n in env.names if codes[n] != 0]}; log: {tail}"
        return Verdict(healed, self.collected(work / "out", env.names), note)

    def collected(self, out: Path, names: Sequence[str]) -> int:
        """Hosts whose tar of logs came home and holds guardian.log."""
        count = 0
        for n in names:
            try:
                with tarfile.open(out / f"{n}.tar") as tar:
                    count += "guardian.log" in tar.getnames()
            except (OSError, tarfile.TarError):
                pass
        return count


def guardian_cli(env: Env, *command: str) -> list[str]:
    """The argv of a Guardian fleet command on the size's hosts, as ``invoke COMMAND`` runs it."""
    argv = [sys.executable, "-c", "from remediation.cli import main; main()", *command]
    return [*argv, "--hosts", "lab", "--inventory", str(env.guardian_inventory), "--ssh-config", ""]


def runners_in_report(run_dir: Path) -> dict[str, str]:
    """Per host, how its runner got there according to ``report.json``: ``installed`` or
    ``streamed``, from whichever field of the host's record says so (issue 18's ``runner:
    installed|streamed``, ``runner_code`` in the work under way, any field saying so otherwise);
    hosts whose record has no such field are left out."""
    try:
        hosts = json.loads((run_dir / "report.json").read_text())["hosts"]
    except (OSError, ValueError, KeyError):
        return {}
    found = {}
    for record in hosts:
        kinds = [record["runner_code"]] if record.get("runner_code") in ("installed", "streamed") else []
        kinds += [v for k, v in record.items() if isinstance(v, str) and v in ("installed", "streamed")]
        if kinds:
            found[str(record.get("host"))] = kinds[0]
    return found


def runner_cpu_in_report(run_dir: Path | None) -> dict[str, float]:
    """Per host, the CPU its runner reported (``runner_cpu``: the runner and the check, from the
    host's own accounting); hosts without it are left out."""
    try:
        hosts = json.loads((run_dir / "report.json").read_text())["hosts"] if run_dir else []
    except (OSError, ValueError, KeyError):
        return {}
    return {str(r.get("host")): float(r["runner_cpu"]) for r in hosts if isinstance(r.get("runner_cpu"), (int, float))}


def runner_note(run_dir: Path | None, hosts: int) -> str:
    """What the report says about the runners: ``runner: installed 40/40``, or that it has no
    such field (then the runner was streamed: this build cannot run an installed one)."""
    kinds = runners_in_report(run_dir) if run_dir else {}
    if not kinds:
        return "runner: streamed (report.json has no installed/streamed field)"
    counts = {k: list(kinds.values()).count(k) for k in ("installed", "streamed") if k in kinds.values()}
    return "runner: " + ", ".join(f"{k} {n}/{hosts}" for k, n in counts.items())


class GuardianPeer(CommandPeer):
    """``guardian premarket``; ``guard=False`` makes the blast-radius guard a no-op
    (``--blast-radius 100``) to show what it costs."""

    at_scale = True

    def __init__(self, name: str = "guardian", *, guard: bool = True) -> None:
        self.name = name
        self.guard = guard

    def argv(self, env: Env, reports: Path) -> list[str]:
        argv = guardian_cli(env, "premarket")
        argv += ["--settle", str(SETTLE), "--forks", str(len(env.endpoints)), "--reports", str(reports)]
        return argv if self.guard else [*argv, "--blast-radius", "100"]

    def setup(self, env: Env, work: Path, out: Path) -> Invocation:
        return Invocation(self.argv(env, out))

    @staticmethod
    def latest_run(out: Path) -> Path | None:
        runs = sorted(p for p in out.iterdir() if not p.is_symlink() and (p / "report.json").is_file())
        return runs[-1] if runs else None

    def collected(self, out: Path, names: Sequence[str]) -> int:
        """Hosts whose guardian.log came home in the latest run's report folder."""
        latest = self.latest_run(out)
        return 0 if latest is None else sum((latest / n / "guardian.log").is_file() for n in names)

    def check(self, env: Env, work: Path, codes: Mapping[str, int], exit_code: int) -> Verdict:
        verdict = super().check(env, work, codes, exit_code)
        latest = self.latest_run(work / "out")
        runner = runner_note(latest, len(env.names))
        note = "; ".join(n for n in (verdict.note, runner) if n)
        return Verdict(verdict.healed, verdict.collected, note, runner_cpu=runner_cpu_in_report(latest))


class GuardianInstalledPeer(GuardianPeer):
    """``invoke deploy`` on the size's hosts first (untimed), then ``guardian premarket``: with the
    installed runner where its digest is the controller's (issue 18). The deploy is taken out
    again after the run, so that the ``guardian`` row keeps streaming its runner. Whether the
    runner really was the installed one is read from report.json (see :func:`runner_note`)."""

    at_scale = False  # a deploy of every host per run: too slow for the big sizes' budget

    def __init__(self) -> None:
        super().__init__("guardian-installed")

    def deploy(self, env: Env, work: Path, *extra: str) -> None:
        log = work / f"deploy{'-remove' if extra else ''}.log"
        argv = [*guardian_cli(env, "deploy"), "--reports", str(work / "deploy-reports"), *extra]
        with open(log, "wb") as fh:
            proc = subprocess.run(argv, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, check=False, timeout=600)
        if proc.returncode != 0:
            tail = log.read_text(errors="replace")[-500:]
            raise RuntimeError(f"deploy {' '.join(extra)} failed (exit {proc.returncode}): {tail}")

    def before(self, env: Env, work: Path) -> None:
        self.deploy(env, work)

    def after(self, env: Env, work: Path) -> None:
        self.deploy(env, work, "--remove")


class GuardianDryRunPeer(GuardianPeer):
    """``guardian premarket --dry-run``: passes when it changed nothing on any host."""

    def __init__(self) -> None:
        super().__init__("guardian-dry")

    def setup(self, env: Env, work: Path, out: Path) -> Invocation:
        return Invocation([*self.argv(env, out), "--dry-run"])

    def check(self, env: Env, work: Path, codes: Mapping[str, int], exit_code: int) -> Verdict:
        # Nothing may change: faulted hosts stay faulted and no Guardian log is written.
        untouched = all(
            (codes[n] != 0) == (fault_kind(i) is not None)
            and not env.lab.path(n, f"{APP_DIR}/logs/guardian.log").exists()
            for i, n in enumerate(env.names)
        )
        note = "dry-run: hosts untouched" if untouched else "dry-run CHANGED a host"
        return Verdict(len(env.names) if untouched else 0, len(env.names), note)


class FloorPeer(CommandPeer):
    """A job started inside every host at once, no SSH (``bench/floor.py``): the peers' shell job
    (``floor``: what the job itself costs) or Guardian's own runner (``guardian-floor``: what
    Guardian's on-host program costs). Each host's job CPU comes from its rusage."""

    uses_ssh = False
    at_scale = True

    def __init__(self, name: str = "floor", job: str = "shell") -> None:
        self.name = name
        self.job = job
        self.at_scale = job == "shell"  # 100+ Python runners at once only measure the machine

    def setup(self, env: Env, work: Path, out: Path) -> Invocation:
        argv = [sys.executable, str(BENCH / "floor.py"), "--lab", str(env.lab.workdir), "--job", self.job]
        argv += ["--inventory", str(env.guardian_inventory), "--settle", str(SETTLE), "--pid-dir", env.pid_dir]
        return Invocation([*argv, "--out", str(out)])

    def check(self, env: Env, work: Path, codes: Mapping[str, int], exit_code: int) -> Verdict:
        verdict = super().check(env, work, codes, exit_code)
        job_cpu: dict[str, float] = {}
        for line in (work / "output.log").read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    job_cpu = {str(k): float(v) for k, v in json.loads(line).get("cpu", {}).items()}
                except (ValueError, AttributeError):
                    pass
        return Verdict(verdict.healed, verdict.collected, verdict.note, job_cpu)

    def collected(self, out: Path, names: Sequence[str]) -> int:
        if self.job == "guardian":
            return len(names)  # the runner sends the files on its stdout; not stored
        return super().collected(out, names)


class OpenSSHPeer(CommandPeer):
    """Plain parallel OpenSSH: one ``ssh`` and one tar stream per host (``bench/ssh_fanout.sh``)."""

    name = "openssh"

    def setup(self, env: Env, work: Path, out: Path) -> Invocation:
        hosts_file = work / "hosts.txt"
        hosts_file.write_text("".join(f"{t.name} {t.address} {t.port} {t.manager}\n" for t in env.endpoints))
        argv = ["bash", str(BENCH / "ssh_fanout.sh"), str(hosts_file), str(env.lab.key_path), str(env.known_hosts)]
        return Invocation([*argv, str(out), f"{SETTLE:g}", env.pid_dir])


def peer_env() -> dict[str, str]:
    """The environment for the venv peers: their venv first, no ANSIBLE_/PYINFRA_ settings or agent."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PYINFRA_", "SSH_AUTH"))}
    env["PATH"] = f"{PEERS_VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


class AnsiblePeer(CommandPeer):
    """An ansible-core playbook (``bench/premarket.yml``) with pipelining and ControlPersist."""

    name = "ansible"
    needs_venv = True

    def __init__(self) -> None:
        self.control: Path | None = None

    def setup(self, env: Env, work: Path, out: Path) -> Invocation:
        inv = work / "hosts.ini"
        inv.write_text(
            "[lab]\n"
            + "".join(
                f"{t.name} ansible_host={t.address} ansible_port={t.port} manager={t.manager}\n" for t in env.endpoints
            )
            + f"[lab:vars]\nsettle={SETTLE:g}\nout_dir={out}\npid_dir={env.pid_dir}\n"
        )
        self.control = control = Path(tempfile.mkdtemp(prefix="gb-acp-"))
        cfg = work / "ansible.cfg"
        cfg.write_text(
            "[defaults]\n"
            f"inventory = {inv}\n"
            f"forks = {len(env.endpoints)}\n"
            "host_key_checking = True\n"
            "gathering = explicit\n"
            f"interpreter_python = {HOST_PYTHON}\n"
            f"private_key_file = {env.lab.key_path}\n"
            "remote_user = root\n"
            "retry_files_enabled = False\n"
            "timeout = 30\n"
            f"local_tmp = {work / 'tmp'}\n"
            "[ssh_connection]\n"
            "pipelining = True\n"
            f"control_path_dir = {control}\n"
            "ssh_args = -F /dev/null -o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=yes "
            f"-o UserKnownHostsFile={env.known_hosts} -o IdentitiesOnly=yes\n"
        )
        penv = peer_env()
        penv.update(ANSIBLE_CONFIG=str(cfg), ANSIBLE_HOME=str(work / "home"), ANSIBLE_NOCOLOR="1")
        return Invocation([str(PEERS_VENV / "bin" / "ansible-playbook"), str(BENCH / "premarket.yml")], penv)

    def run(self, invocation: Invocation, log: Path) -> Timing:
        try:
            return super().run(invocation, log)
        finally:
            self.close_control_masters()

    def close_control_masters(self) -> None:
        """Stop ansible's ControlPersist masters so they do not linger into the next run."""
        if self.control is None:
            return
        for sock in self.control.iterdir():
            subprocess.run(
                ["ssh", "-F", "/dev/null", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                capture_output=True,
                check=False,
                timeout=10,
            )
        shutil.rmtree(self.control, ignore_errors=True)
        self.control = None


class PyinfraPeer(CommandPeer):
    """A pyinfra deploy (``bench/pyinfra_deploy.py``), one parallel worker per host; at the big
    sizes too, as the controller-CPU and memory yardstick."""

    name = "pyinfra"
    needs_venv = True
    at_scale = True

    def setup(self, env: Env, work: Path, out: Path) -> Invocation:
        inv = work / "inventory.py"
        hosts = [
            (
                t.name,
                {
                    "ssh_hostname": t.address,
                    "ssh_port": t.port,
                    "ssh_user": "root",
                    "ssh_key": str(env.lab.key_path),
                    "ssh_known_hosts_file": str(env.known_hosts),
                    "ssh_strict_host_key_checking": "yes",
                    "ssh_config_file": "/dev/null",
                    "manager": t.manager,
                    "settle": SETTLE,
                    "out_dir": str(out),
                    "pid_dir": env.pid_dir,
                },
            )
            for t in env.endpoints
        ]
        inv.write_text(f"lab = {hosts!r}\n")
        argv = [str(PEERS_VENV / "bin" / "pyinfra"), "-y", "--parallel", str(len(env.endpoints)), str(inv)]
        return Invocation([*argv, str(BENCH / "pyinfra_deploy.py")], peer_env())


#: The peers ``--peers`` can name, in the order the help lists them.
PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        GuardianPeer(),
        GuardianInstalledPeer(),
        AnsiblePeer(),
        PyinfraPeer(),
        OpenSSHPeer(),
        FloorPeer(),
        FloorPeer("guardian-floor", "guardian"),
    )
}
#: Guardian's extra runs at 40 hosts: --dry-run, and the blast-radius guard turned off.
GUARDIAN_DRY_RUN: Peer = GuardianDryRunPeer()
GUARDIAN_NO_GUARD: Peer = GuardianPeer("guardian-noguard", guard=False)
