"""systemd units as facts, and what Guardian may do with one: pure functions of ``systemctl show``.

``systemctl show UNIT --property=...`` prints ``Key=value`` lines. :func:`parse_show` turns them
into :class:`UnitFacts`; :func:`judge` decides, from those facts alone, whether a restart may go
ahead, must be preceded by ``systemctl reset-failed`` (a unit at its start limit refuses every
start, a manual one included, until then), or must not happen at all because the unit is
missing, masked, broken or was stopped on purpose. The manager (``managers.SystemdManager``)
yields the commands; nothing here runs anything.

Names and meanings follow systemd's documentation (``systemd.unit(5)``, ``systemd.service(5)``,
``org.freedesktop.systemd1(5)``): ``LoadState`` ``loaded|not-found|bad-setting|error|masked``;
``ActiveState`` ``active|reloading|inactive|failed|activating|deactivating``; ``Result``
``success|exit-code|signal|core-dump|timeout|watchdog|start-limit-hit|resources|...``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from .records import asdict, record

#: What Guardian reads of a unit, in one ``systemctl show`` call.
SHOW_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "MainPID",
    "InvocationID",
    "NRestarts",
    "UnitFileState",
    "LoadError",
    "ExecMainCode",
    "ExecMainStatus",
    "StateChangeTimestamp",
    "StartLimitBurst",
    "StartLimitIntervalUSec",
    "Restart",
)

#: What :func:`judge` can say. ``restart`` and ``reset-failed`` go ahead (the latter after
#: ``systemctl reset-failed``); the others are refusals.
RESTART = "restart"
RESET_FAILED = "reset-failed"
NOT_FOUND = "not-found"
MASKED = "masked"
BROKEN = "bad-unit"
STOPPED = "stopped"
REFUSALS = (NOT_FOUND, MASKED, BROKEN, STOPPED)

# ExecMainCode is a siginfo si_code: how the main process ended.
_CLD_EXITED, _CLD_KILLED, _CLD_DUMPED = "1", "2", "3"


def unit_name(name: str) -> str:
    """A service name as systemd knows it: ``uw-daemon`` is ``uw-daemon.service``."""
    known = (".service", ".socket", ".timer", ".target", ".mount", ".path", ".scope", ".slice")
    return name if name.endswith(known) else f"{name}.service"


def parse_properties(output: str) -> Dict[str, str]:
    """``Key=value`` lines as a mapping (a value may itself hold ``=``; other lines are ignored)."""
    props: Dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            props[key.strip()] = value.strip()
    return props


def _int(text: str) -> Optional[int]:
    return int(text) if text.isdigit() else None


@record(frozen=True)
class UnitFacts:
    """A unit's state as ``systemctl show`` reports it."""

    unit: str
    load_state: str
    active_state: str
    sub_state: str
    result: str = ""
    main_pid: Optional[int] = None
    invocation_id: str = ""
    n_restarts: Optional[int] = None
    unit_file_state: str = ""
    load_error: str = ""
    exec_main_code: str = ""
    exec_main_status: str = ""
    since: str = ""
    start_limit_burst: Optional[int] = None
    start_limit_interval: str = ""
    restart: str = ""  # the unit's Restart= policy

    @classmethod
    def from_properties(cls, props: Mapping[str, str], unit: str = "") -> UnitFacts:
        pid = _int(props.get("MainPID", ""))
        return cls(
            unit=props.get("Id") or unit,
            load_state=props.get("LoadState", ""),
            active_state=props.get("ActiveState", ""),
            sub_state=props.get("SubState", ""),
            result=props.get("Result", ""),
            main_pid=pid if pid else None,
            invocation_id=props.get("InvocationID", ""),
            n_restarts=_int(props.get("NRestarts", "")),
            unit_file_state=props.get("UnitFileState", ""),
            load_error=props.get("LoadError", ""),
            exec_main_code=props.get("ExecMainCode", ""),
            exec_main_status=props.get("ExecMainStatus", ""),
            since=props.get("StateChangeTimestamp", ""),
            start_limit_burst=_int(props.get("StartLimitBurst", "")),
            start_limit_interval=props.get("StartLimitIntervalUSec", ""),
            restart=props.get("Restart", ""),
        )

    @property
    def running(self) -> bool:
        """Up with a main process: ``active/running`` and a MainPID."""
        return self.active_state == "active" and self.sub_state == "running" and self.main_pid is not None

    @property
    def gave_up(self) -> bool:
        """Whether systemd stopped restarting a failed unit its ``Restart=`` covers: it reached its
        start limit. (``Result`` says ``start-limit-hit`` only when the unit had not failed
        before; a crash loop keeps its first failure's ``exit-code`` there.)"""
        if self.active_state != "failed":
            return False
        if self.result == "start-limit-hit":
            return True
        return self.restart not in ("", "no") and bool(self.n_restarts)

    @property
    def state(self) -> str:
        """``active/running``, or with a failure's result: ``failed/failed (start-limit-hit)``."""
        text = f"{self.active_state or '?'}/{self.sub_state or '?'}"
        if self.result and self.result != "success":
            text += f" ({self.result})"
        return text

    def how_main_ended(self) -> str:
        """How the last main process ended: ``exited with status 3``, ``killed by signal 15``."""
        if self.exec_main_code == _CLD_EXITED:
            return f"exited with status {self.exec_main_status or '?'}"
        if self.exec_main_code in (_CLD_KILLED, _CLD_DUMPED):
            return f"killed by signal {self.exec_main_status or '?'}"
        return ""

    def summary(self) -> Dict[str, Any]:
        """What a report keeps of the unit at a moment: state, pid, invocation and restart count."""
        return {
            "unit": self.unit,
            "state": self.state,
            "main_pid": self.main_pid,
            "invocation_id": self.invocation_id,
            "n_restarts": self.n_restarts,
            "unit_file_state": self.unit_file_state,
        }

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def parse_show(output: str, unit: str = "") -> UnitFacts:
    """Parse ``systemctl show UNIT --property=...`` (see :data:`SHOW_PROPERTIES`)."""
    return UnitFacts.from_properties(parse_properties(output), unit)


@record(frozen=True)
class UnitVerdict:
    """What may be done with a unit now, and the sentence an operator reads about it."""

    verdict: str  # RESTART, RESET_FAILED, or one of REFUSALS
    reason: str

    @property
    def refused(self) -> bool:
        return self.verdict in REFUSALS


def judge(facts: UnitFacts) -> UnitVerdict:
    """Whether Guardian may restart this unit (pure).

    Refused: a unit systemd does not have (``not-found``), one an operator ``masked``, one whose
    unit file does not load, and one that is ``inactive`` — stopped with ``systemctl stop``, or a
    unit whose ``Restart=`` did not bring it back after a clean exit: someone meant it to be
    down, and Guardian does not start what an operator stopped. A ``failed`` unit gets
    ``systemctl reset-failed`` before its restart (the restart budget already allowed that
    restart): it may be inside its start limit, where systemd refuses even a manual start, and
    systemd does not reliably say so (``Result`` keeps the first failure's reason, and the refused
    ``systemctl start`` blames "the control process"); when ``Restart=`` covered it and systemd
    stopped restarting it, the reason names ``start-limit-hit``. Anything else (running,
    activating, auto-restart, deactivating) is restarted as it is.
    """
    unit = facts.unit
    if facts.load_state == "not-found":
        return UnitVerdict(
            NOT_FOUND,
            f"systemd has no unit {unit} (LoadState=not-found); not restarted: if the service has "
            "another unit name, set its `name` in the inventory's `services`",
        )
    if facts.load_state == "masked" or facts.unit_file_state in ("masked", "masked-runtime"):
        return UnitVerdict(
            MASKED,
            f"{unit} is masked (an operator disabled it); not restarted: `systemctl unmask {unit}` if it should run",
        )
    if facts.load_state not in ("loaded", ""):
        error = f": {facts.load_error}" if facts.load_error else ""
        return UnitVerdict(
            BROKEN,
            f"{unit} does not load (LoadState={facts.load_state}{error}); not restarted: fix the unit "
            "file, then `systemctl daemon-reload`",
        )
    if facts.active_state == "failed":
        if facts.gave_up:
            limit = ""
            if facts.start_limit_burst:
                limit = f": more than {facts.start_limit_burst} starts within {_interval(facts.start_limit_interval)}"
            why = (
                f"start-limit-hit: systemd gave up restarting {unit} (Restart={facts.restart or '?'}, "
                f"NRestarts={facts.n_restarts}{limit}) and refuses every start, a manual one too, until "
                f"`systemctl reset-failed {unit}`"
            )
        else:
            why = f"{unit} failed ({facts.result or 'no result'})"
        return UnitVerdict(RESET_FAILED, why)
    if facts.active_state == "inactive":
        ended = facts.how_main_ended()
        since = f" since {facts.since}" if facts.since else ""
        how = f"; its main process {ended}" if ended else ""
        return UnitVerdict(
            STOPPED,
            f"{unit} is stopped (inactive{since}{how}): stopped by an operator or ended cleanly; "
            f"Guardian does not start a stopped unit: `systemctl start {unit}` if it should run",
        )
    return UnitVerdict(RESTART, f"{unit} is {facts.state}")


def unit_preflight(props: Mapping[str, str], name: str) -> Tuple[bool, bool, str]:
    """Deploy's pre-flight of one service's unit: (ok, fatal, detail). A unit systemd does not
    have, or cannot load, fails it; a masked one is a warning (its restarts will be refused)."""
    facts = UnitFacts.from_properties(props, unit_name(name))
    verdict = judge(facts)
    if verdict.verdict in (NOT_FOUND, BROKEN):
        return False, True, verdict.reason
    if verdict.verdict == MASKED:
        return False, False, verdict.reason
    enabled = f", {facts.unit_file_state}" if facts.unit_file_state else ""
    return True, False, f"{facts.unit} {facts.load_state}{enabled}, {facts.state}"


def _interval(usec: str) -> str:
    """``StartLimitIntervalUSec`` as systemd prints it (``10s``), or a number of microseconds."""
    if usec.isdigit():
        return f"{int(usec) / 1_000_000:g}s"
    return usec or "its interval"


def restart_note(before: UnitFacts, after: UnitFacts) -> str:
    """What a confirmed restart changed, for the action's detail: the invocation and the count of
    systemd's own restarts (``Restart=``), which a restart by Guardian does not raise."""
    parts: List[str] = []
    if after.invocation_id:
        old = before.invocation_id[:12] or "none"
        parts.append(f"InvocationID {old} -> {after.invocation_id[:12]}")
    if after.n_restarts is not None:
        parts.append(f"NRestarts {after.n_restarts}")
    return ", ".join(parts)
