"""The shape of ``report.json``, written once: every record a run's report holds, as typed dicts.

A record is what the wire carries (the runner's events, the saved report), so these are
``TypedDict``s: a record read back from an older or newer Guardian keeps keys this version does
not know (an action's ``argv``, say), and nothing is converted on the way in or out.
``HostReport.to_dict()`` and ``RunReport.to_dict()`` return them; the views read them;
``docs/report.schema.json`` is generated from them (``python -m remediation.reporting.schema``).

``Annotated`` markers say what a plain type cannot: the values a string may take (:class:`OneOf`),
a pattern, a constant, a description. Keys marked ``NotRequired`` may be missing from a record
(older reports, a run cut short); the others are always written.
"""

# No ``from __future__ import annotations`` here, unlike elsewhere: Python 3.11 computes a
# TypedDict's required keys from its annotations as written, and cannot see ``NotRequired``
# inside a string.
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired, TypedDict

from ..agent.installed import RUNNER_CODES
from ..agent.outcomes import ACTION_RESULTS, EXIT_CODES, OUTCOMES
from ..agent.plan import DEGRADED, HEALTHY, UNEXPECTED, UNHEALTHY


@dataclass(frozen=True)
class OneOf:
    """The string is one of ``values``; a ``name`` makes it a shared definition in the schema."""

    values: tuple[str, ...]
    name: str = ""
    description: str = ""


@dataclass(frozen=True)
class Pattern:
    """The string matches ``regex``."""

    regex: str


@dataclass(frozen=True)
class Const:
    """The value is always ``value``."""

    value: int | str


@dataclass(frozen=True)
class Doc:
    """What the value means, for the schema's readers."""

    text: str


#: ``report.json``'s ``schema_version``: raised when a change would break its readers.
SCHEMA_VERSION = 1
#: What the commands that write a report are called (``RunReport.command``).
COMMANDS = ("premarket", "recover", "deploy", "collect", "status", "hold", "release")
#: What a health check's run is said to be (``agent.plan.check_state``).
CHECK_STATES = (HEALTHY, DEGRADED, UNHEALTHY, UNEXPECTED)
#: The kinds of action a plan holds (``agent.plan.decide``).
ACTION_KINDS = ("remove_lock", "restart", "alert", "breaker_open", "defer")
TRANSPORTS = ("ssh", "local")

Outcome = Annotated[
    str,
    OneOf(OUTCOMES, name="outcome", description="a host's outcome: agent/outcomes.py DESCRIPTIONS says each one"),
]
CheckStateName = Annotated[str, OneOf(CHECK_STATES)]
ActionKind = Annotated[str, OneOf(ACTION_KINDS)]
ActionResult = Annotated[str, OneOf(tuple(ACTION_RESULTS), description="agent/outcomes.py ACTION_RESULTS")]
Sha256 = Annotated[str, Pattern("^[0-9a-f]{64}$")]


#: A manager with two ways to be reached (supervisor: its socket, or supervisorctl) says which.
VIA_DOC = "how the manager was reached: xmlrpc (supervisord's unix socket, no program run) or supervisorctl"
VIA_REASON_DOC = "why supervisorctl and not the socket: the config names none, the socket is missing or refused"


class PhaseRecord(TypedDict):
    """A phase the host's run entered, stamped by the controller when it read the event."""

    phase: str
    t: float


class MatchRecord(TypedDict):
    """A line of check output that matched a failure signature."""

    signature: str
    pattern: str
    line_no: int
    line: str


class CheckRecord(TypedDict, total=False):
    """One run of the health check (before recovery, or the re-check after it)."""

    argv: list[str]
    exit_code: int | None
    timed_out: bool
    error: str
    duration: float
    output_bytes: int
    tail: str
    state: CheckStateName
    reason: str
    matches: list[MatchRecord]
    user: Annotated[str, Doc("who the check ran as, when not the runner itself (run_as)")]


class PlannedActionRecord(TypedDict):
    """One step of a plan, with the reason an operator reads."""

    kind: ActionKind
    target: str
    reason: str
    detail: NotRequired[dict[str, Any]]
    command: NotRequired[
        Annotated[
            dict[str, Any],
            Doc("the command a real run would run: {argv: [...]}, {signal, pid} or XML-RPC calls {rpc: [...], socket}"),
        ]
    ]
    commands_before: NotRequired[
        Annotated[list[dict[str, Any]], Doc("commands a real run would run first (systemctl reset-failed)")]
    ]
    command_error: NotRequired[Annotated[str, Doc("why no restart command can be built (e.g. no verified pid)")]]
    via: NotRequired[Annotated[str, Doc(VIA_DOC)]]
    via_reason: NotRequired[Annotated[str, Doc(VIA_REASON_DOC)]]


class PlanRecord(TypedDict, total=False):
    """What Guardian decided to do on the host (also what ``--dry-run`` shows)."""

    state: CheckStateName
    recover: bool
    verify: bool
    settle_seconds: float
    actions: list[PlannedActionRecord]
    notes: list[str]
    held_back: bool


class BreakerRecord(TypedDict, total=False):
    """A service's restart budget: its recent restarts and whether the budget is spent."""

    service: str
    open: bool
    recent: list[float]
    max_restarts: int
    window: float
    description: str


class HookRecord(TypedDict):
    """What a service's hook (safe_to_restart, pre_restart, post_restart) said."""

    hook: str
    argv: list[str]
    exit_code: int | None
    timed_out: bool
    error: str
    output: Annotated[str, Doc("its last 2000 characters of output")]
    duration: float
    ok: bool


class ActionRecord(TypedDict):
    """An action that started on the host, with its result (or ``started``/``interrupted`` when
    the run was cut before its result came back)."""

    kind: ActionKind
    target: str
    reason: str
    result: ActionResult
    index: NotRequired[int]
    detail: NotRequired[str]
    duration: NotRequired[float]
    at: NotRequired[str]
    t: NotRequired[float]
    command: NotRequired[
        Annotated[
            dict[str, Any],
            Doc("the command that was run: {argv: [...]}, {signal, pid} or XML-RPC calls {rpc: [...], socket}"),
        ]
    ]
    via: NotRequired[Annotated[str, Doc(VIA_DOC)]]
    via_reason: NotRequired[Annotated[str, Doc(VIA_REASON_DOC)]]
    commands_before: NotRequired[
        Annotated[list[dict[str, Any]], Doc("commands run before it, in order (systemctl reset-failed)")]
    ]
    systemd: NotRequired[
        Annotated[
            dict[str, Any],
            Doc("a systemd restart: the unit before and after (state, MainPID, InvocationID, NRestarts)"),
        ]
    ]
    new_pid: NotRequired[int | None]
    confirmed: NotRequired[bool]
    content: NotRequired[Annotated[str, Doc("a removed lock's content (its first 512 characters)")]]
    file: NotRequired[Annotated[str, Doc("the alert file written")]]
    breaker: NotRequired[BreakerRecord | None]
    state_after_settle: NotRequired[dict[str, Any]]
    state_when_lost: NotRequired[
        Annotated[dict[str, Any], Doc("the service's state at the verification pass that found it gone")]
    ]
    defer: NotRequired[Annotated[str, Doc("why a restart was deferred: quiet-window, unsafe or pre-restart")]]
    gate: NotRequired[Annotated[dict[str, Any], Doc("the quiet-window verdict and safe_to_restart answer")]]
    safe_to_restart: NotRequired[HookRecord]
    pre_restart: NotRequired[HookRecord]
    post_restart: NotRequired[HookRecord]


class LockRecord(TypedDict):
    """A lock file in the app's lock dir and the verdict on it."""

    name: str
    stale: bool
    reason: str
    pid: int | None


class HolderRecord(TypedDict, total=False):
    """Who holds the host's Guardian lock (a busy host)."""

    runner: str
    pid: int
    run_id: str
    since: float
    since_iso: str


class HoldRecord(TypedDict, total=False):
    """A maintenance hold on the host."""

    until: float
    until_iso: str
    reason: str
    by: str
    since: float


class GuardsRecord(TypedDict, total=False):
    """The host's guard state: breakers with recent restarts, and a maintenance hold."""

    breakers: dict[str, BreakerRecord]
    hold: HoldRecord


class PreflightRecord(TypedDict):
    """One of deploy's pre-flight checks (a failed non-fatal one is a warning)."""

    check: str
    ok: bool
    detail: str
    fatal: bool


class ChangeRecord(TypedDict):
    """One item deploy compared, and what it did to it."""

    item: str
    action: str
    detail: str
    diff: NotRequired[str]


class CronActionRecord(TypedDict, total=False):
    """An action of a cron run, as the host's journal has it (a value may be missing: null)."""

    kind: str | None
    target: str | None
    result: str | None
    detail: str | None
    reason: str | None
    at: str | None


class CronRunRecord(TypedDict, total=False):
    """A cron run on the host, summarized from its journal. Its outcome is the journal's: a run
    killed outright still says ``running``."""

    run_id: str | None
    outcome: str | None
    reason: str | None
    started_at: str | None
    check: str
    actions: list[CronActionRecord]


class SilenceRecord(TypedDict):
    """One schedule whose newest due fire time no cron run served (``agent.missed.Silence``)."""

    schedule: str
    expression: str
    last_run: Annotated[str | None, Doc("start of the newest cron run seen, ISO UTC")]
    expected: Annotated[list[str], Doc("due fire times with no run, oldest first, ISO UTC")]
    message: str


class LastCronRunRecord(TypedDict, total=False):
    run_id: str | None
    started_at: str | None
    outcome: str | None
    check: str | None


class SelfHealRecord(TypedDict, total=False):
    """Whether the host still heals itself (``reporting.selfheal.assess``): from deploy's manifest,
    the cron runs' journals and the controller's clock. Empty when the run brought no facts home."""

    deployed: Annotated[bool, Doc("deploy's manifest is on the host")]
    tz: Annotated[str, Doc("the zone cron fires in on the host")]
    clock_skew: Annotated[float, Doc("host clock minus the controller's, seconds")]
    last_cron_run: LastCronRunRecord | None
    version: str
    bundle: Annotated[str, Doc("the digest of the runner deploy installed")]
    controller_bundle: Annotated[str, Doc("the digest of the runner the controller would deploy now")]
    scheduler: str
    silent: Annotated[list[SilenceRecord], Doc("schedules that missed their runs: empty when all came")]
    next_due: Annotated[str | None, Doc("the next fire time of any schedule, ISO UTC")]
    problem: str
    problems: list[str]


class DeferredRecord(TypedDict):
    """A restart put off on purpose, and when Guardian tries again."""

    service: str
    kind: Annotated[str, Doc("quiet-window, unsafe (safe_to_restart said no) or pre-restart (its hook failed)")]
    reason: str
    retry_at: Annotated[str | None, Doc("the next scheduled run that will try again (after the window), ISO UTC")]
    retry: Annotated[str, Doc("the next try, in words")]


class VerifyRecord(TypedDict):
    """Healed means stable: the verification passes after recovery."""

    passes_wanted: Annotated[int, Doc("verify_passes: passing checks in a row that make a heal")]
    window: Annotated[float, Doc("verify_window: the seconds they are spread over")]
    passes: Annotated[list[dict[str, Any]], Doc("each check: {pass, at, exit_code, state}")]
    stable: NotRequired[bool]


class UnstableRecord(TypedDict):
    """Why a recovered host is not stable: a restarted service died, was restarted again, hung
    (heartbeat still), or its post_restart hook failed."""

    service: str
    problem: str
    down: Annotated[bool, Doc("the service died or hung (not only its hook)")]


class FileRecord(TypedDict):
    """A file brought home from the host (``CollectedFile``)."""

    name: str
    path: Annotated[str, Doc("relative to the run folder: <host>/<name>")]
    size: Annotated[int, Doc("the file's size on the host")]
    collected_bytes: int
    sha256: Sha256
    truncated: Annotated[bool, Doc("only the file's tail was brought home")]


class IncidentRecord(TypedDict):
    """A common-cause incident: one signature on more than the blast radius of the hosts."""

    signature: str
    hosts: list[str]
    selected: int
    threshold_percent: float
    forced: bool


class HostRecord(TypedDict):
    """Everything about one host in one run (``HostReport``)."""

    host: str
    address: str
    transport: Annotated[str, OneOf(TRANSPORTS)]
    outcome: Outcome
    reason: str
    started_at: NotRequired[str]
    duration: float
    phases: list[PhaseRecord]
    before: CheckRecord | None
    after: CheckRecord | None
    plan: PlanRecord | None
    actions: list[ActionRecord]
    locks: list[LockRecord]
    files: list[FileRecord]
    busy_holder: NotRequired[HolderRecord | None]
    runner: NotRequired[Annotated[str, Doc("laptop, or cron for a run the host started itself")]]
    remote_version: NotRequired[str]
    runner_code: NotRequired[
        Annotated[
            str,
            OneOf((*RUNNER_CODES, "")),
            Doc(
                "which code ran: `installed` (what deploy installed, compiled on the host, when it is the "
                "controller's bundle) or `streamed` (the code the controller sent); empty when no runner reported"
            ),
        ]
    ]
    runner_cpu: NotRequired[
        Annotated[
            float | None,
            Doc(
                "CPU seconds (user + system, getrusage) the runner used on the host up to its result, with every "
                "child it waited for (the check, hooks, manager commands); null when no runner reported"
            ),
        ]
    ]
    warnings: NotRequired[list[str]]
    preflight: NotRequired[list[PreflightRecord]]
    changes: NotRequired[list[ChangeRecord]]
    cron_runs: NotRequired[Annotated[list[CronRunRecord], Doc("the cron runs' journals, newest first")]]
    guards: NotRequired[GuardsRecord]
    self_heal: NotRequired[SelfHealRecord]
    deferred: NotRequired[Annotated[list[DeferredRecord], Doc("restarts deferred in this run")]]
    verify: NotRequired[VerifyRecord | None]
    unstable: NotRequired[list[UnstableRecord]]
    matched_signatures: list[str]


_EXIT_HELP = "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items())


class RunRecord(TypedDict):
    """One Guardian run over a set of hosts (``RunReport``): all of ``report.json``."""

    schema_version: Annotated[int, Const(SCHEMA_VERSION)]
    run_id: Annotated[str, Pattern("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    command: Annotated[str, OneOf(COMMANDS)]
    guardian_version: str
    started_at: str
    finished_at: str
    complete: Annotated[bool, Doc("false while the run is in progress or if it could not finish writing")]
    interrupted: bool
    exit_code: Annotated[int | None, Doc(_EXIT_HELP)]
    options: dict[str, Any]
    outcomes: dict[str, Outcome]
    incidents: list[IncidentRecord]
    stopped_reason: Annotated[str, Doc("why a rolling recovery stopped early")]
    hosts: list[HostRecord]
