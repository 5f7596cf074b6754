"""The StrictModes rule for what root executes: real files, real owners and modes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from remediation.agent.trust import trust_problems, untrusted

NOBODY = 65534


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / ".guardian").mkdir(parents=True)
    for path in (tmp_path, app, app / ".guardian"):
        path.chmod(0o755)
    (app / "check.py").write_text("print('ok')\n")
    (app / "check.py").chmod(0o644)
    return app


def test_a_root_owned_tree_under_a_sticky_tmp_is_trusted(tree: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to own the files")
    assert trust_problems(str(tree / "check.py")) == []


def test_a_group_or_world_writable_file_or_directory_is_named(tree: Path) -> None:
    (tree / "check.py").chmod(0o666)
    problems = trust_problems(str(tree / "check.py"))
    assert [p.path for p in problems] == [str(tree / "check.py")]
    assert "writable by group and others" in problems[0].describe() and "-rw-rw-rw-" in problems[0].describe()
    (tree / "check.py").chmod(0o644)
    tree.chmod(0o775)
    assert [(p.path, p.why) for p in trust_problems(str(tree / "check.py"))] == [(str(tree), "writable by its group")]


def test_a_file_owned_by_another_user_is_refused_unless_that_user_is_allowed(tree: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    os.chown(tree / "check.py", NOBODY, NOBODY)
    problems = trust_problems(str(tree / "check.py"))
    assert len(problems) == 1 and "not by root or the runner's user" in problems[0].why
    assert trust_problems(str(tree / "check.py"), owners=[NOBODY]) == []


def test_a_symlink_is_judged_by_where_it_leads(tree: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "writable"
    elsewhere.mkdir()
    elsewhere.chmod(0o777)
    (elsewhere / "real.py").write_text("")
    (tree / "hook.py").symlink_to(elsewhere / "real.py")
    problems = trust_problems(str(tree / "hook.py"))
    assert [p.path for p in problems] == [str(elsewhere)]


def test_missing_paths_and_each_directory_once(tree: Path) -> None:
    tree.chmod(0o777)
    (tree / "a.py").write_text("")
    (tree / "b.py").write_text("")
    for name in ("a.py", "b.py"):
        (tree / name).chmod(0o644)
    problems = untrusted([str(tree / "a.py"), str(tree / "b.py"), str(tree / "gone.py")])
    assert [p.path for p in problems] == [str(tree), str(tree / "gone.py")]
    assert "cannot be checked" in problems[1].why


def test_a_root_owned_symlink_in_a_directory_another_user_owns_is_not_trusted(tree: Path, tmp_path: Path) -> None:
    """Found in review: ``app/.guardian -> /opt/guardian`` (the link root's, the target root's) in
    an app dir the bot owns; the bot can swap the link, so what it leads to now proves nothing."""
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    target = tmp_path / "opt-guardian"
    target.mkdir()
    app = tmp_path / "bot-app"
    app.mkdir()
    (app / ".guardian").symlink_to(target)
    os.chown(app, NOBODY, NOBODY)
    problems = trust_problems(str(app / ".guardian"))
    assert [p.path for p in problems] == [str(app)] and "not by root" in problems[0].why
