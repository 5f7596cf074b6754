"""Every outcome a host can end a run with, the sets the rest of Guardian reasons with, and the
exit codes. The one definition, imported on both sides of the SSH boundary: the runner, the
fleet, the views, the alerts and the report schema all read it from here.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, Sequence, Tuple

#: Each outcome with the line an operator reads about it (README, schema, view legends).
DESCRIPTIONS: Dict[str, str] = {
    "pending": "not finished yet (a report saved while the run is under way)",
    "running": "a host's journal of a run that has not finished, or whose runner died before it could",
    "healthy": "the check passed; nothing was done",
    "healed": "recovery ran and the re-check passed",
    "still-degraded": "after recovery (or with it held back) the check still says degraded",
    "still-unhealthy": "after recovery (or with it held back) the check still says unhealthy",
    "unexpected": "the check failed in a way that triggers no recovery (odd exit code, timeout, missing)",
    "degraded": "dry run: the check says degraded; nothing was changed",
    "unhealthy": "dry run: the check says unhealthy; nothing was changed",
    "deferred": "a restart was due but not done: a quiet window, safe_to_restart or pre_restart said not now; "
    "the reason and the next try are in the report",
    "busy": "another Guardian run held the host's lock",
    "untrusted": "refused: a file root would run or read (or a directory above it) is writable by another user",
    "failed": "Guardian itself could not finish on this host (deadline, runner error)",
    "interrupted": "the operator stopped the run (Ctrl-C) or a signal stopped the runner",
    "unreachable": "no SSH session could be opened (or it was lost)",
    "host-key-rejected": "the host's SSH key is unknown or changed",
    "changed": "deploy changed files, crontab or permissions",
    "unchanged": "deploy found everything as it should be",
    "would-change": "deploy --dry-run: what it would change",
    "removed": "deploy --remove took Guardian off the host",
    "preflight-failed": "deploy's pre-flight found a problem; nothing was changed",
    "collected": "collect brought the host's logs and journals home",
    "in-sync": "status: Guardian is installed exactly as deploy would write it now",
    "drifted": "status or deploy --check: a file, the crontab block or a mode differs from what deploy writes",
    "not-deployed": "status: Guardian's runner is not installed on the host (run deploy)",
    "held": "a maintenance hold is set: Guardian leaves the host alone",
    "released": "the maintenance hold was lifted",
    "skipped": "not started (a rolling recovery stopped early)",
    "surveyed": "survey only: checked, acting waits for the fleet-wide decision (never final)",
}
OUTCOMES: Tuple[str, ...] = tuple(DESCRIPTIONS)

#: Outcomes that need nobody's attention.
OK_OUTCOMES: FrozenSet[str] = frozenset(
    {
        "healthy",
        "healed",
        "changed",
        "unchanged",
        "would-change",
        "removed",
        "collected",
        "in-sync",
        "held",
        "released",
    }
)
#: Outcomes where no command ran on the host.
UNREACHABLE_OUTCOMES: FrozenSet[str] = frozenset({"unreachable", "host-key-rejected"})
#: Outcomes that need an operator: everything not ok, unreachable ones included.
ATTENTION_OUTCOMES: FrozenSet[str] = frozenset(OUTCOMES) - OK_OUTCOMES - {"pending", "surveyed"}
#: A host still broken after Guardian did what it could (alerted by webhook).
STILL_BAD_OUTCOMES: FrozenSet[str] = frozenset({"still-degraded", "still-unhealthy"})
#: The on-host runner's own exit code is 0 for these (premarket/recover and deploy).
RUNNER_OK: FrozenSet[str] = frozenset({"healthy", "healed"})
DEPLOY_OK: FrozenSet[str] = frozenset({"changed", "unchanged", "would-change", "removed"})

#: Each result an action record can carry (report.json's ``actions[].result``), with its meaning.
ACTION_RESULTS: Dict[str, str] = {
    "ok": "done and, for a restart, confirmed (a new pid that stayed up)",
    "failed": "tried and did not work; the detail says why",
    "skipped": "nothing to do by the time it ran (a lock already gone, an unknown kind)",
    "blocked": "not done: the service's restart budget is spent (breaker open)",
    "deferred": "not done now: a quiet window (needs --force), safe_to_restart (needs --force-unsafe) or a "
    "failing pre_restart hook; the detail has the reason and the next try",
    "refused": "not done: the process manager says the service must not be restarted now (a systemd "
    "unit missing, masked, broken or stopped by an operator); the detail says what to do",
    "planned": "dry run: what a real run would do",
    "started": "begun on the host; its result has not come back (yet)",
    "interrupted": "begun on the host, but the session was cut before its result came back",
}

#: The on-host runner's exit codes (``agent.main``): 0 ok, 2 not ok, 3 bad config, 6 deferred.
RUNNER_EXIT_OK, RUNNER_EXIT_NOT_OK, RUNNER_EXIT_BAD_CONFIG = 0, 2, 3


def runner_exit_code(outcome: str) -> int:
    """The on-host runner's exit code for a premarket/recover run that ended with ``outcome``."""
    if outcome == "deferred":
        return EXIT_DEFERRED  # cron's log and ping tell "put off on purpose" from "broken"
    return RUNNER_EXIT_OK if outcome in RUNNER_OK else RUNNER_EXIT_NOT_OK


EXIT_OK = 0
EXIT_ATTENTION = 2
EXIT_USAGE = 3
EXIT_UNREACHABLE = 4
#: No host needs attention now, but one missed its scheduled cron runs (self-heal silent).
EXIT_SILENT = 5
#: Nothing needs attention but restarts Guardian deliberately put off (deferred).
EXIT_DEFERRED = 6
#: The exit code of a run the operator interrupted (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130
EXIT_CODES: Dict[int, str] = {
    EXIT_OK: "every host ok",
    EXIT_ATTENTION: "a host needs attention",
    EXIT_USAGE: "nothing ran: the command line, inventory or rules are wrong",
    EXIT_UNREACHABLE: "a host unreachable or its key rejected",
    EXIT_SILENT: "hosts ok, but one's self-heal is silent (missed cron runs)",
    EXIT_DEFERRED: "no host needs attention except restarts deferred (quiet window, safe_to_restart, pre_restart)",
    EXIT_INTERRUPTED: "interrupted",
}


def exit_code_for(outcomes: Sequence[str]) -> int:
    """The task's exit code: 4 if any host was unreachable, else 2 if any is not ok (deferred
    aside), else 6 if a restart was deferred, else 0."""
    if any(o in UNREACHABLE_OUTCOMES for o in outcomes):
        return EXIT_UNREACHABLE
    if any(o not in OK_OUTCOMES and o != "deferred" for o in outcomes):
        return EXIT_ATTENTION
    if "deferred" in outcomes:
        return EXIT_DEFERRED
    return EXIT_OK
