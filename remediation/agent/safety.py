"""Safe to act: what a service says before and after Guardian restarts it.

Each service may name, in its inventory entry, argument lists run on the host from the app dir
(as the health check is: as ``run_as``, with a clean environment and a timeout):

- ``safe_to_restart``: asked before the plan is made and again just before the restart. Exit 0
  means go; anything else, or no answer within its timeout, defers the restart, and its output
  (e.g. "3 orders in flight") is the reason. It must only read.
- ``pre_restart`` (e.g. cancel open orders, snapshot positions): a failure cancels the restart
  (deferred, with its output as the reason).
- ``post_restart`` (e.g. reconcile): a failure means the host is not healed, whatever the check says.

and a ``heartbeat`` file whose mtime the daemon advances while it works: verification calls a
restart good only if that file moves (see ``sequence``). Hooks have no shell: each is run as its
argument list.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .checkrun import run_check
from .identity import Identity
from .records import record
from .watch import ControllerWatch

HOOKS = ("safe_to_restart", "pre_restart", "post_restart")
#: Each hook's timeout when the inventory gives none (seconds).
DEFAULT_TIMEOUTS: Dict[str, float] = {"safe_to_restart": 10.0, "pre_restart": 30.0, "post_restart": 30.0}
#: How long a restarted service's heartbeat may stand still before it counts as hung (seconds).
DEFAULT_HEARTBEAT_MAX_AGE = 10.0
#: Programs that run a script: the script is what they execute (for the trust check).
INTERPRETERS = ("python", "python3", "sh", "bash", "dash", "perl", "ruby", "node")
OUTPUT_CHARS = 2000


class SafetyConfigError(ValueError):
    """A service's hook or heartbeat entry is not what the runner can use."""


@record(frozen=True)
class Hook:
    """One command a service runs around its restart."""

    name: str
    argv: Tuple[str, ...]
    timeout: float

    def to_dict(self) -> Dict[str, Any]:
        return {"run": list(self.argv), "timeout": self.timeout}

    def files(self, app_dir: str) -> List[str]:
        """The files this hook executes: its program when given as a path, and the script an
        interpreter is given (``python3 bin/safe.py``), relative to the app dir."""
        found = []
        first = self.argv[0]
        if "/" in first:
            found.append(first)
        interpreter = os.path.basename(first).rstrip("0123456789.") in INTERPRETERS
        if interpreter and len(self.argv) > 1 and not self.argv[1].startswith("-"):
            found.append(self.argv[1])
        return [os.path.join(app_dir, f) for f in found]


@record(frozen=True)
class ServiceSafety:
    """What one service declares for a safe restart."""

    service: str
    hooks: Dict[str, Hook]
    heartbeat: str = ""  # relative to the app dir; "" none
    heartbeat_max_age: float = DEFAULT_HEARTBEAT_MAX_AGE

    def hook(self, name: str) -> Optional[Hook]:
        return self.hooks.get(name)

    def to_dict(self) -> Dict[str, Any]:
        shown: Dict[str, Any] = {name: hook.to_dict() for name, hook in self.hooks.items()}
        if self.heartbeat:
            shown.update(heartbeat=self.heartbeat, heartbeat_max_age=self.heartbeat_max_age)
        return shown


def _hook(service: str, name: str, raw: Any) -> Hook:
    timeout = DEFAULT_TIMEOUTS[name]
    if isinstance(raw, Mapping):
        timeout = raw.get("timeout", timeout)
        raw = raw.get("run")
    if not isinstance(raw, list) or not raw or not all(isinstance(a, str) and a for a in raw):
        raise SafetyConfigError(f"service {service}: {name} must be a non-empty list of arguments, got {raw!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise SafetyConfigError(f"service {service}: {name} timeout must be a number of seconds > 0")
    return Hook(name, tuple(raw), float(timeout))


def safety_of(service: str, spec: Mapping[str, Any]) -> ServiceSafety:
    """The safety part of a service's settings (validated again: the runner trusts no input)."""
    hooks = {name: _hook(service, name, spec[name]) for name in HOOKS if spec.get(name)}
    heartbeat = spec.get("heartbeat") or ""
    max_age = spec.get("heartbeat_max_age", DEFAULT_HEARTBEAT_MAX_AGE)
    if not isinstance(heartbeat, str):
        raise SafetyConfigError(f"service {service}: heartbeat must be a path, got {heartbeat!r}")
    if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or max_age <= 0:
        raise SafetyConfigError(f"service {service}: heartbeat_max_age must be a number of seconds > 0")
    return ServiceSafety(service, hooks, heartbeat, float(max_age))


@record(frozen=True)
class HookRun:
    """What one hook said."""

    name: str
    argv: List[str]
    exit_code: Optional[int]
    timed_out: bool
    error: str
    output: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.error

    def why(self) -> str:
        """The hook's own words (its last output lines), else how it ended."""
        return answer_text(self.to_dict())

    def to_dict(self) -> Dict[str, Any]:
        return {
            "hook": self.name,
            "argv": self.argv,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "error": self.error,
            "output": self.output,
            "duration": round(self.duration, 3),
            "ok": self.ok,
        }


def answer_text(run: Mapping[str, Any]) -> str:
    """A hook's answer (``HookRun.to_dict``) in a line: its last output lines, else how it ended."""
    output = str(run.get("output") or "").strip().splitlines()
    said = " / ".join(line.strip() for line in output[-3:] if line.strip())[:300]
    if run.get("error"):
        ended = str(run["error"])
    elif run.get("timed_out"):
        ended = "no answer within its timeout"
    else:
        ended = f"exit {run.get('exit_code')}"
    return f"{ended}: {said}" if said else ended


def run_hook(
    hook: Hook,
    *,
    app_dir: str,
    identity: Optional[Identity],
    watch: Optional[ControllerWatch] = None,
) -> HookRun:
    """Run ``hook`` from the app dir, as the health check runs (``identity``, clean environment,
    its whole process group ended at the timeout). Never raises for the hook's own failure."""
    program, *args = hook.argv
    if "/" in program and not os.path.isabs(program):
        program = os.path.join(app_dir, program)  # a program of the app's own, not one on PATH
    argv = [program, *args]
    done = run_check(
        argv,
        cwd=app_dir,
        timeout=hook.timeout,
        signatures=[],
        log_path=None,
        watch=watch,
        identity=identity,
        what=hook.name,
    )
    return HookRun(
        hook.name,
        argv,
        done.exit_code,
        done.timed_out,
        done.error,
        done.tail[-OUTPUT_CHARS:],
        done.duration,
    )


def heartbeat_mtime(app_dir: str, heartbeat: str) -> Optional[float]:
    """The heartbeat file's mtime, or None when it is missing."""
    try:
        return os.stat(os.path.join(app_dir, heartbeat)).st_mtime
    except OSError:
        return None
