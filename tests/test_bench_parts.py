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


def env_for(tmp_path: Path, rtt_ms: int = 0) -> Env:
    endpoints = [Endpoint("h01", "198.18.9.11", 22, "supervisor"), Endpoint("h02", "198.18.9.12", 22, "signal")]
    lab = Lab(tmp_path / "lab", prefix="gz", subnet=9)
    return Env(lab, Size(2, rtt_ms), endpoints, tmp_path / "kh", tmp_path, tmp_path / "inv.yml")


def args(*, smoke: bool = False) -> argparse.Namespace:
    """fanout's defaults for the options that shape the schedule."""
    return argparse.Namespace(ansible_sizes="40", ansible_runs=1, no_dry_run=False, smoke=smoke)


def names(jobs: list[tuple[peers.Peer, bool]]) -> list[str]:
    return [p.name if faults else f"{p.name}-healthy" for p, faults in jobs]


def test_every_peer_is_one_object_named_once() -> None:
    assert list(peers.PEERS) == ["guardian", "ansible", "pyinfra", "openssh", "floor"]
    assert all(name == peer.name for name, peer in peers.PEERS.items())
    assert {n for n, p in peers.PEERS.items() if p.at_scale} == {"guardian", "floor"}
    assert {n for n, p in peers.PEERS.items() if not p.uses_ssh} == {"floor"}
    assert {n for n, p in peers.PEERS.items() if p.needs_venv} == {"ansible", "pyinfra"}
    assert set(fanout.SMOKE_PEERS) <= set(peers.PEERS)


def test_the_schedule_at_the_reference_size() -> None:
    everyone = list(peers.PEERS)
    size = Size(40)
    first = fanout.jobs_for(size, 0, list(everyone), peers=everyone, args=args())
    assert names(first) == [*everyone, "guardian-dry", "guardian-healthy", "guardian-noguard"]
    second = fanout.jobs_for(size, 1, list(everyone), peers=everyone, args=args())
    assert names(second) == ["pyinfra", "openssh", "floor", "guardian", "guardian-healthy", "guardian-dry"]
    smoke = fanout.jobs_for(Size(4), 0, ["guardian", "floor", "openssh"], peers=everyone, args=args(smoke=True))
    assert names(smoke) == ["guardian", "floor", "openssh"]


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
        "--settle",
        "1.0",
        "--forks",
        "2",
        "--ssh-config",
        "",
        "--reports",
        str(out),
    ]
    assert peers.GUARDIAN_DRY_RUN.setup(env, tmp_path, out).argv == [*guardian, "--dry-run"]
    assert peers.GUARDIAN_NO_GUARD.setup(env, tmp_path, out).argv == [*guardian, "--blast-radius", "100"]
    openssh = peers.PEERS["openssh"].setup(env, tmp_path, out)
    assert openssh.env is None and openssh.argv[-1] == "1"
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
    assert peers.PEERS["floor"].check(env, tmp_path, {"h01": 0, "h02": 0}, 0) == peers.Verdict(2, 2, "")


ROWS = [
    {"size": "40", "peer": "guardian", "runs": 2, "ok": 2, "median": 2.0, "rss1": 60.0},
    {"size": "40", "peer": "floor", "runs": 2, "ok": 2, "median": 1.8, "rss1": 30.0},
    {"size": "40", "peer": "openssh", "runs": 2, "ok": 2, "median": 3.0, "rss1": 10.0},
    {"size": "40", "peer": "pyinfra", "runs": 2, "ok": 2, "median": 2.5, "rss1": 90.0},
    {"size": "40", "peer": "ansible", "runs": 1, "ok": 1, "median": 30.0, "rss1": 200.0},
    {"size": "40", "peer": "guardian-dry", "runs": 2, "ok": 2, "median": 1.5, "rss1": 60.0},
    {"size": "40", "peer": "guardian-healthy", "runs": 2, "ok": 1, "median": 1.9, "rss1": 60.0},
    {"size": "20@50ms", "peer": "guardian", "runs": 2, "ok": 2, "median": 3.0, "rss1": 60.0},
    {"size": "20@50ms", "peer": "openssh", "runs": 2, "ok": 2, "median": 4.0, "rss1": 10.0},
]


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, ("40 hosts: Guardian <= 1.2x floor", True, "2.00s / 1.80s = 1.11x")),
        (1, ("40 hosts: Guardian <= 0.85x best peer", True, "2.00s / pyinfra 2.50s = 0.80x")),
        (2, ("20@50ms: Guardian <= 0.85x best peer", True, "3.00s / openssh 4.00s = 0.75x")),
        (3, ("40 hosts: ansible / Guardian >= 10", True, "30.00s / 2.00s = 15.0")),
        (4, ("100 hosts: Guardian peak RSS < 100 MB", None, "not measured (or a run failed)")),
        (5, ("40 hosts: --dry-run faster than a healthy real run", None, "not measured (or a run failed)")),
    ],
)
def test_targets(index: int, expected: tuple[str, bool | None, str]) -> None:
    assert targets.evaluate(ROWS)[index] == expected


def test_targets_without_a_latency_size() -> None:
    outcome = targets.evaluate([r for r in ROWS if "@" not in r["size"]])[2]
    assert outcome == ("latency size: Guardian <= 0.85x best peer", None, "not measured (or a run failed)")
