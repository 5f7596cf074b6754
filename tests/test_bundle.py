"""The runner script: the program streamed as ``python3 -c``, small enough for one command-line
argument, and able to install (deploy) the very sources it carries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from remediation.agent.bootstrap import own_sources
from remediation.execution.bundle import agent_sources, build_runner, bundle_digest
from remediation.execution.hostrun import JobOptions, runner_command
from remediation.inventory import load_inventory

#: Linux refuses a single command-line argument longer than this (MAX_ARG_STRLEN, 32 pages).
MAX_ARG_STRLEN = 131072
EXIT_LINE = "sys.exit(main(sys.argv[1:], config=_CONFIG))\n"


def test_the_script_names_its_entry_point_and_digest() -> None:
    script = build_runner(None)
    assert script.endswith("from guardian_agent.main import main\n" + EXIT_LINE) and "\n_CONFIG = None\n" in script
    assert f"(bundle {bundle_digest()})" in script.splitlines()[0]


def test_a_running_script_installs_the_sources_it_carries_under_its_digest() -> None:
    """What deploy installs in .guardian/runner/ is the code the controller's script carries."""
    script = build_runner(None)
    probe = script.replace(
        EXIT_LINE,
        "from guardian_agent.bootstrap import own_sources\nimport json\nprint(json.dumps(own_sources()))\n",
    )
    sources, digest = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert digest == bundle_digest() and sorted(sources) == sorted(dict(agent_sources()))
    assert own_sources() == (sources, digest)  # outside a script (the controller, tests): built from the files


def test_the_deploy_command_carries_the_runner_once_and_fits_one_argument(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(json.dumps({"groups": {"g": {"hosts": {"h01": {"address": "192.0.2.1"}}}}}))
    host = load_inventory([path]).hosts["h01"]
    run = runner_command(host, JobOptions(run_id="r"))
    deploy = runner_command(host, JobOptions(run_id="r", action="deploy"))
    assert len(deploy) - len(run) < 8192, "the deploy command must not embed the runner a second time"
    for command in (run, deploy):
        assert len(command) < MAX_ARG_STRLEN * 3 // 4, f"the runner script is {len(command)} bytes: near the limit"


def test_the_carried_sources_are_the_same_and_python39_compatible_whatever_python_builds_them(
    tmp_path: Path,
) -> None:
    """Docstrings, comment and blank lines are cut as whole lines of the text as written, so an
    older or newer Python on the controller carries the same code (and the same digest)."""
    from remediation.agent.bootstrap import compact
    from remediation.execution.bundle import agent_sources

    carried = {name: compact(source) for name, source in agent_sources()}
    assert all('"""' not in text.split("\n", 1)[0] for text in carried.values())  # no module docstring
    (tmp_path / "carried.json").write_text(json.dumps(carried))
    probe = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('b', sys.argv[1]); b = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(b)\n"
        "carried = json.load(open(sys.argv[2]))\n"
        "for name, text in carried.items():\n"
        "    compile(text, name, 'exec')\n"
        "sources = b.read_sources(sys.argv[3])\n"
        "assert {k: b.compact(v) for k, v in sources.items()} == carried\n"
    )
    agent = Path(__file__).resolve().parent.parent / "remediation" / "agent"
    pythons = [*sorted(Path("/root/.pyenv/versions").glob("3.*/bin/python3")), Path("/usr/bin/python3")]
    tried = 0
    for python in pythons:
        version = subprocess.run([str(python), "-c", "import sys; print(sys.version_info[:2] >= (3, 9))"],
                                 capture_output=True, text=True)  # fmt: skip
        if version.stdout.strip() != "True":
            continue
        done = subprocess.run(
            [str(python), "-c", probe, str(agent / "bootstrap.py"), str(tmp_path / "carried.json"), str(agent)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, (python, done.stderr[-2000:])
        tried += 1
    assert tried >= 1


def test_compact_cuts_comments_but_not_what_looks_like_one_in_a_string() -> None:
    from remediation.agent.bootstrap import compact

    source = (
        'def f(x):\n    """Doc."""\n    # alone\n\n    y = "a # b"  # trailing\n'
        "    z = '''\n    # kept: inside a string\n    '''  # after the string\n    return x  # done\n"
    )
    assert compact(source) == "def f(x):\n    y = \"a # b\"\n    z = '''\n    # kept: inside a string\n    '''\n    return x\n"
    namespace: dict[str, object] = {}
    exec(compile(compact(source), "<compact>", "exec"), namespace)
    assert namespace["f"](3) == 3  # type: ignore[operator]


def test_the_compacted_sources_are_cached_by_what_they_were_made_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from remediation.agent.bootstrap import compact
    from remediation.execution import bundle

    monkeypatch.setattr(bundle, "CACHE_DIR", tmp_path / "cache")
    fresh = bundle.compacted_sources()
    assert fresh == {name: compact(source) for name, source in bundle.agent_sources()}
    (cached,) = (tmp_path / "cache").glob("guardian-bundle-*.json")
    first = next(iter(fresh))
    cached.write_text(json.dumps({**fresh, first: "# from the cache\n"}))
    assert bundle.compacted_sources()[first] == "# from the cache\n"  # read back, not compacted again
    changed = (*bundle.agent_sources(), ("guardian_agent.extra", "x = 1  # new\n"))
    monkeypatch.setattr(bundle, "agent_sources", lambda: changed)
    assert bundle.compacted_sources()["guardian_agent.extra"] == "x = 1\n"  # other sources: another key
    assert [p.name for p in (tmp_path / "cache").glob("*.json")] != [cached.name]  # the old one is gone
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setattr(bundle, "CACHE_DIR", blocked / "cache")  # cannot be created: compacts each time
    assert bundle.compacted_sources()["guardian_agent.extra"] == "x = 1\n"
