"""The runner as ``invoke deploy`` installs it: the agent package as files, compiled for the
host's own python at deploy time, so that a run starts without decoding or compiling anything.

In the install dir (the ``guardian_dir`` setting)::

    guardian-runner.py                         the launcher cron (or a timer) starts
    runner/bundle.json                         which code this is: {"bundle": digest, "version": ...}
    runner/guardian_agent/*.py                 the sources the controller's bundle carries, as it carries them
    runner/guardian_agent/__pycache__/*.pyc    compiled by deploy with the host's python (PEP 552
                                               hash-based and checked: a changed source is never
                                               run from a stale pyc)

The controller's script (``bootstrap.TEMPLATE``) runs :func:`probe` first: when ``bundle.json``
names the very bundle the script carries and root may trust the tree, it imports this package
instead of decoding its own payload. Neither path writes bytecode, so a run leaves the tree as
deploy wrote it. Standard library only; the compiling half is loaded by deploy alone.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Tuple

from . import RUNNER_FILE

#: The installed package's directory in the install dir, and the record of which bundle it is.
RUNNER_DIR = "runner"
RECORD_FILE = "bundle.json"
#: The package name the agent's modules have (the bundle's ``bootstrap.PACKAGE``).
PACKAGE = "guardian_agent"
#: The actions that run the installed code when it is the controller's (premarket, recover,
#: collect); deploy, status, hold and release always run the code they were sent.
INSTALLED_ACTIONS = ("run", "collect")
#: Which code a run was (a result's ``runner_code``): deploy's installed package, or the code the
#: controller's script carried (agent ``RUNNER_CODE``).
RUNNER_CODES = ("installed", "streamed")


def probe(config: Mapping[str, Any], digest: str) -> Tuple[str, str]:
    """Where the installed runner's package lives, when a run with ``config`` should use it.

    Runs first in the controller's script (its source is embedded there), before the script
    decodes its payload, so it uses nothing but ``os`` and ``json`` and costs no round trip: one
    small read and a few ``lstat`` calls. Root may run the tree only when every path in it and
    every directory above it is owned by root or this user and writable by no one else (the
    :mod:`trust` rule, stricter here: any symlink declines, and the run falls back to the code
    it was sent, whose full check of the same tree then reports what is wrong).

    Returns:
        ``(directory for sys.path, "")`` to run the installed code; ``("", "")`` when there is
        none for this run or it is other code; ``("", why)`` when it is this code but unusable.
    """
    import json

    if config.get("action", "run") not in INSTALLED_ACTIONS:
        return "", ""
    app = os.path.abspath(os.path.expanduser(str(config.get("app_dir") or ".")))
    # as context.guardian_dir resolves the setting
    top = os.path.join(
        os.path.normpath(os.path.join(app, os.path.expanduser(str(config.get("guardian_dir") or ".guardian")))),
        RUNNER_DIR,
    )
    try:
        with open(os.path.join(top, RECORD_FILE), "rb") as fh:
            if json.loads(fh.read()).get("bundle") != digest:
                return "", ""
    except (OSError, ValueError, AttributeError):
        return "", ""
    uid = os.getuid()
    package = os.path.join(top, PACKAGE)
    cache = os.path.join(package, "__pycache__")
    try:
        paths = [os.path.join(top, RECORD_FILE), package, cache]
        paths += [os.path.join(package, n) for n in os.listdir(package)] + [
            os.path.join(cache, n) for n in os.listdir(cache)
        ]
        step = top
        while True:
            paths.append(step)
            if os.path.dirname(step) == step:
                break
            step = os.path.dirname(step)
        for path in paths:
            st = os.lstat(path)
            kind = st.st_mode & 0o170000
            if kind == 0o120000:
                return "", f"{path} is a symlink"
            if st.st_uid not in (0, uid):
                return "", f"{path} is owned by uid {st.st_uid}"
            if st.st_mode & 0o022 and not (kind == 0o040000 and st.st_mode & 0o1000 and st.st_uid == 0):
                return "", f"{path} is writable by another user"
    except OSError as exc:
        return "", f"{exc.filename}: {exc.strerror}"
    return top, ""


def runner_tree(install_dir: str) -> List[str]:
    """Every path of the installed runner that exists, for the trust check: the launcher, the
    record, the package's directories and every file in them (whatever root could import)."""
    top = os.path.join(install_dir, RUNNER_DIR)
    package = os.path.join(top, PACKAGE)
    cache = os.path.join(package, "__pycache__")
    paths = [os.path.join(install_dir, RUNNER_FILE), top, os.path.join(top, RECORD_FILE)]
    for directory in (package, cache):
        if os.path.isdir(directory) and not os.path.islink(directory):
            paths.append(directory)
            paths += [os.path.join(directory, name) for name in sorted(os.listdir(directory))]
        elif os.path.lexists(directory):
            paths.append(directory)
    return [p for p in paths if os.path.lexists(p)]


def module_path(install_dir: str, module: str) -> str:
    """Where the installed source of ``module`` (``guardian_agent.X``) lives."""
    package = os.path.join(install_dir, RUNNER_DIR, PACKAGE)
    stem = "__init__" if module == PACKAGE else module[len(PACKAGE) + 1 :]
    return os.path.join(package, stem + ".py")


def pyc_path(source_path: str) -> str:
    """The bytecode file the host's python reads for ``source_path`` (``__pycache__/X.<tag>.pyc``)."""
    import importlib.util

    return importlib.util.cache_from_source(source_path)


def pyc_bytes(source: bytes, source_path: str) -> bytes:
    """``source`` compiled by this python, as a checked hash-based pyc (PEP 552): the import
    system runs it only while the source beside it hashes the same."""
    import importlib.util
    import marshal

    code = compile(source, source_path, "exec", dont_inherit=True)
    flags = 0b11  # hash-based, check the source
    return (
        importlib.util.MAGIC_NUMBER
        + flags.to_bytes(4, "little")
        + importlib.util.source_hash(source)
        + marshal.dumps(code)
    )


def pyc_current(old: bytes, new: bytes) -> bool:
    """Whether the pyc on the host (``old``) is the one :func:`pyc_bytes` makes now (``new``): the
    same bytes, or the same header (this python, this source) and equal code. marshal's bytes
    vary from one process to the next (it marks objects referenced twice, and how often an
    interned name is referenced depends on what the process has loaded), the code does not."""
    if old == new:
        return True
    if old[:16] != new[:16]:
        return False
    import marshal

    try:
        # Deploy's own file, in a directory pre-flight found only root or this user can write.
        return bool(marshal.loads(old[16:]) == marshal.loads(new[16:]))  # noqa: S302
    except (ValueError, EOFError, TypeError):
        return False


def record(digest: str, version: str) -> bytes:
    """The text of ``bundle.json``."""
    import json
    import sys

    data = {"bundle": digest, "version": version, "python": sys.implementation.cache_tag}
    return json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"


def desired_tree(install_dir: str, sources: Dict[str, str], digest: str, version: str) -> List[Dict[str, Any]]:
    """What deploy writes for the installed package: each source, its pyc, and the record last
    (a run trusts the record only once the code it names is in place)."""
    files: List[Dict[str, Any]] = []
    for module in sorted(sources):
        path = module_path(install_dir, module)
        data = sources[module].encode("utf-8")
        files.append({"path": path, "data": data, "mode": 0o640})
        files.append({"path": pyc_path(path), "data": pyc_bytes(data, path), "mode": 0o640, "pyc": True})
    files.append(
        {
            "path": os.path.join(install_dir, RUNNER_DIR, RECORD_FILE),
            "data": record(digest, version),
            "mode": 0o640,
        }
    )
    return files


def tree_dirs(install_dir: str) -> List[str]:
    """The installed runner's directories, outermost first."""
    top = os.path.join(install_dir, RUNNER_DIR)
    return [top, os.path.join(top, PACKAGE), os.path.join(top, PACKAGE, "__pycache__")]


def tree_changes(files: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[str]]:
    """Compare deploy's ``files`` (:func:`desired_tree`) with the host.

    Returns:
        The entries to write (missing, different, or another mode), in order, and the files in
        the package's directories that deploy did not write (a module an older version had, the
        pyc of a python the host no longer runs), to remove. Directories are never listed.
    """
    import stat

    writes: List[Dict[str, Any]] = []
    wanted = {str(f["path"]) for f in files}
    for entry in files:
        path = str(entry["path"])
        try:
            st = os.lstat(path)
            with open(path, "rb") as fh:
                old = fh.read()
        except OSError:
            writes.append(entry)
            continue
        same = pyc_current(old, entry["data"]) if entry.get("pyc") else old == entry["data"]
        if not same or not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != entry["mode"]:
            writes.append(entry)
    stale: List[str] = []
    for directory in {os.path.dirname(p) for p in wanted}:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            if path not in wanted and not (os.path.isdir(path) and not os.path.islink(path)):
                stale.append(path)
    return writes, sorted(stale)
