"""The fan-out benchmark's parts that need no lab: the peers, the run schedule, the targets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import fanout  # noqa: E402
import peers  # noqa: E402
import targets  # noqa: E402
from workload import Endpoint, Env, Size  # noqa: E402

from remediation.lab import Lab  # noqa: E402


def env_for(tmp_path: Path, rtt_ms: int = 0, *, pidfiles: bool = True) -> Env:
    endpoints = [Endpoint("h01", "198.18.9.11", 22, "supervisor"), Endpoint("h02", "198.18.9.12", 22, "signal")]
    lab = Lab(tmp_path / "lab", prefix="gz", subnet=9)
    return Env(lab, Size(2, rtt_ms, pidfiles), endpoints, tmp_path / "kh", tmp_path, tmp_path / "inv.yml")


def args(*, smoke: bool = False) -> argparse.Namespace:
    """fanout's defaults for the options that shape the schedule."""
    return argparse.Namespace(ansible_sizes="40", ansible_runs=1, no_dry_run=False, noguard=False, smoke=smoke)


def names(jobs: list[tuple[peers.Peer, bool]]) -> list[str]:
    return [p.name if faults else f"{p.name}-healthy" for p, faults in jobs]


def test_every_peer_is_one_object_named_once() -> None:
    assert list(peers.PEERS) == [
        "guardian",
        "guardian-installed",
        "ansible",
        "pyinfra",
        "openssh",
        "floor",
        "guardian-floor",
    ]
    assert all(name == peer.name for name, peer in peers.PEERS.items())
    assert {n for n, p in peers.PEERS.items() if p.at_scale} == {"guardian", "pyinfra", "floor"}
    assert {n for n, p in peers.PEERS.items() if not p.uses_ssh} == {"floor", "guardian-floor"}
    assert {n for n, p in peers.PEERS.items() if p.needs_venv} == {"ansible", "pyinfra"}
    assert set(fanout.SMOKE_PEERS) <= set(peers.PEERS)


def test_the_schedule_at_the_reference_size() -> None:
    everyone = list(peers.PEERS)
    size = Size(40, 0, pidfiles=False)
    first = fanout.jobs_for(size, 0, list(everyone), peers=everyone, args=args())
    assert names(first) == [*everyone, "guardian-dry", "guardian-healthy"]
    second = fanout.jobs_for(size, 1, list(everyone), peers=everyone, args=args())
    assert names(second) == ["guardian-installed", "pyinfra", "openssh", "floor", "guardian-floor", "guardian"]
    # the second pid-file mode: no ansible, no dry-run pair
    other = fanout.jobs_for(Size(40), 0, list(everyone), peers=everyone, args=args(), primary=False)
    assert names(other) == [p for p in everyone if p != "ansible"]
    smoke = fanout.jobs_for(Size(4), 0, list(fanout.SMOKE_PEERS), peers=everyone, args=args(smoke=True))
    assert names(smoke) == list(fanout.SMOKE_PEERS)


def test_the_sizes_and_repeats() -> None:
    """The reference size runs in every pid-file mode, the others in the first; repeats are
    reduced everywhere but the reference size's first mode."""
    planned = fanout.plan_sizes(["10", "40", "20@50"], [False, True])
    assert [(s.label, primary) for s, primary in planned] == [
        ("10-nopid", True),
        ("40-nopid", True),
        ("40", False),
        ("20@50ms-nopid", True),
    ]
    opts = argparse.Namespace(runs=2, other_runs=1, smoke=False)
    assert [fanout.runs_for(s, primary, opts) for s, primary in planned] == [1, 2, 1, 1]


def test_a_report_says_which_runner_ran(tmp_path: Path) -> None:
    """guardian-installed reads report.json: whichever host field says installed or streamed."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text('{"hosts": [{"host": "h01", "runner": "laptop"}]}')
    assert peers.runner_note(run, 2) == "runner: streamed (report.json has no installed/streamed field)"
    (run / "report.json").write_text(
        '{"hosts": [{"host": "h01", "runner_source": "installed"}, {"host": "h02", "runner_source": "streamed"}]}'
    )
    assert peers.runner_note(run, 2) == "runner: installed 1/2, streamed 1/2"


def test_the_runners_own_cpu_comes_from_the_report(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(
        '{"hosts": [{"host": "h01", "runner_cpu": 0.07}, {"host": "h02", "runner_cpu": null}, {"host": "h03"}]}'
    )
    assert peers.runner_cpu_in_report(run) == {"h01": 0.07}
    assert peers.runner_cpu_in_report(tmp_path / "missing") == {}


def test_peer_commands(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    out = tmp_path / "out"
    guardian = peers.PEERS["guardian"].setup(env, tmp_path, out).argv
    assert guardian[3:] == [
        "premarket",
        "--hosts",
        "lab",
        "--inventory",
        str(tmp_path / "inv.yml"),
        "--ssh-config",
        "",
        "--settle",
        "1.0",
        "--forks",
        "2",
        "--reports",
        str(out),
    ]
    assert peers.GUARDIAN_DRY_RUN.setup(env, tmp_path, out).argv == [*guardian, "--dry-run"]
    assert peers.PEERS["guardian-installed"].setup(env, tmp_path, out).argv == guardian
    assert peers.GUARDIAN_NO_GUARD.setup(env, tmp_path, out).argv == [*guardian, "--blast-radius", "100"]
    openssh = peers.PEERS["openssh"].setup(env, tmp_path, out)
    assert openssh.env is None and openssh.argv[-2:] == ["1", "state"]
    floor = peers.PEERS["floor"].setup(env, tmp_path, out).argv
    assert floor[floor.index("--job") + 1] == "shell" and floor[floor.index("--pid-dir") + 1] == "state"
    nopid = env_for(tmp_path, pidfiles=False)
    assert peers.PEERS["openssh"].setup(nopid, tmp_path, out).argv[-1] == "run"
    assert (tmp_path / "hosts.txt").read_text() == "h01 198.18.9.11 22 supervisor\nh02 198.18.9.12 22 signal\n"
    pyinfra = peers.PEERS["pyinfra"].setup(env, tmp_path, out)
    assert pyinfra.env is not None and not any(k.startswith("PYINFRA_") for k in pyinfra.env)
    assert "'ssh_config_file': '/dev/null'" in (tmp_path / "inventory.py").read_text()


def test_a_failed_run_says_why(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "output.log").write_text("line 1\nboom\n")
    verdict = peers.PEERS["openssh"].check(env, tmp_path, {"h01": 0, "h02": 2}, 1)
    assert (verdict.healed, verdict.collected) == (1, 0)
    assert verdict.note == "exit 1; unhealthy: ['h02']; log: line 1 | boom | "
    (tmp_path / "output.log").write_text('{"outcomes": {}, "cpu": {"h01": 0.05, "h02": 0.25}}\n')
    floor = peers.PEERS["guardian-floor"].check(env, tmp_path, {"h01": 0, "h02": 0}, 0)
    assert floor == peers.Verdict(2, 2, "", {"h01": 0.05, "h02": 0.25})


ROWS = [
    {"size": "40-nopid", "peer": p, "runs": 2, "ok": 2, "median": m, "cpu": c, "rss1": 60.0, "host_cpu_healthy": h + 0.03, "runner_cpu_healthy": h}
    for p, m, c, h in (
        ("guardian", 2.2, 3.0, 0.12),
        ("guardian-installed", 2.0, 2.0, 0.09),
        ("floor", 1.8, 0.5, 0.05),
        ("openssh", 3.0, 5.0, 0.08),
        ("pyinfra", 2.5, 2.5, 0.08),
    )
] + [
    {"size": "40-nopid", "peer": "ansible", "runs": 1, "ok": 1, "median": 30.0, "rss1": 200.0},
    {"size": "40", "peer": "guardian-installed", "runs": 1, "ok": 1, "median": 2.0, "rss1": 60.0},
    {"size": "200-nopid", "peer": "guardian", "runs": 1, "ok": 1, "median": 10.0, "rss1": 120.0},
    {"size": "20@50ms-nopid", "peer": "guardian-installed", "runs": 2, "ok": 2, "median": 3.0, "rss1": 60.0},
    {"size": "20@50ms-nopid", "peer": "openssh", "runs": 2, "ok": 2, "median": 4.0, "rss1": 10.0},
]


def outcome(name: str) -> tuple[bool | None, str]:
    found = [(met, numbers) for title, met, numbers in targets.evaluate(ROWS) if title == name]
    assert len(found) == 1, [t for t, _, _ in targets.evaluate(ROWS)]
    return found[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("40-nopid: guardian-installed <= 0.85x pyinfra", (True, "2.00s / 2.50s = 0.80x")),
        ("40-nopid: guardian-installed <= 1.3x the shell-job floor", (True, "2.00s / 1.80s = 1.11x")),
        ("40 hosts: guardian-installed <= 0.85x pyinfra", (None, "not measured (or a run failed)")),
        ("20@50ms-nopid: guardian-installed <= 1.0x plain OpenSSH", (True, "3.00s / 4.00s = 0.75x")),
        ("40-nopid: healthy host runner+check CPU <= 0.10 CPU-s, installed", (True, "0.090 CPU-s")),
        ("40-nopid: healthy host runner+check CPU <= 0.15 CPU-s, streamed", (True, "0.120 CPU-s")),
        ("40-nopid: controller CPU per host: guardian <= pyinfra", (False, "3.00 CPU-s / 2.50 CPU-s = 1.20x")),
        ("200-nopid: Guardian controller peak RSS < 150 MB", (True, "120 MB")),
        ("200-nopid: Guardian time per host no worse than at 40", (True, "50 ms/host vs 55 ms/host at 40-nopid")),
        ("40-nopid: ansible-core / Guardian >= 12", (True, "30.00s / 2.00s = 15.0")),
        ("40 hosts: guardian-installed <= 1.3x the shell-job floor", (None, "not measured (or a run failed)")),
    ],
)
def test_targets(name: str, expected: tuple[bool | None, str]) -> None:
    assert outcome(name) == expected


def test_the_guardian_floor_runs_exactly_the_streamed_command(tmp_path: Path) -> None:
    """floor.py builds the runner's argv as a list (fast); quoted, it is the command that goes
    over SSH (compared joined: shlex.split of the 45 KB command takes seconds)."""
    import shlex

    import floor

    from remediation.execution.hostrun import JobOptions, runner_command
    from remediation.inventory import load_inventory

    inv = tmp_path / "inv.yml"
    inv.write_text("groups:\n  lab:\n    hosts:\n      h01: {address: 198.18.9.11, manager: supervisor}\n")
    host = load_inventory([inv]).select("lab")[0]
    job = JobOptions(run_id="20261202T000000Z-abcd")
    assert shlex.join(floor.runner_argv(host, job)) == runner_command(host, job)
