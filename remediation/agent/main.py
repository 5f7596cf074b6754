"""The on-host runner's entry point, for the controller's ``python3 -c`` bundle (its config
embedded) and for the runner ``invoke deploy`` installs, which cron starts as
``guardian-runner.py --config .guardian/config.json --runner cron --format text --check SCRIPT``.

Progress and results go to stdout as JSON lines (``--format json``) or as readable lines for a
cron log (``--format text``). Exit code: 0 ok, 2 not ok, 3 bad config.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any, Dict, Optional, Sequence

from . import BUNDLE_DIGEST, RUNNER_CODE, RUNNER_NOTE, SECRETS_FILE, VERSION, events
from .collect import collect_only
from .config import HostSettings, RunnerConfig, RunnerConfigError
from .context import RunContext
from .emit import Emit, json_emitter, text_emitter
from .installed import runner_tree
from .outcomes import DEPLOY_OK, RUNNER_EXIT_BAD_CONFIG, RUNNER_EXIT_NOT_OK, RUNNER_EXIT_OK, runner_exit_code
from .sequence import Runner
from .signatures import RuleError
from .watch import ControllerWatch

EXIT_OK, EXIT_NOT_OK, EXIT_BAD_CONFIG = RUNNER_EXIT_OK, RUNNER_EXIT_NOT_OK, RUNNER_EXIT_BAD_CONFIG


def _options(argv: Optional[Sequence[str]], config: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The command-line flags. The controller's ``python3 -c`` bundle passes none (its config is
    embedded), so argparse (10 ms of start-up on every host run) is loaded only for the deployed
    runner that cron starts with ``--config``."""
    if config is not None and not argv:
        return {"config": None, "format": "json", "runner": None, "check": None}
    import argparse

    parser = argparse.ArgumentParser(prog="guardian-runner", description=__doc__)
    parser.add_argument("--config", help="JSON config written by `invoke deploy`")
    parser.add_argument("--format", choices=("json", "text"), default="json")
    parser.add_argument("--runner", help="who runs this: laptop or cron")
    parser.add_argument("--check", help="health-check script to run (default: the config's)")
    parser.add_argument("--version", action="version", version=f"guardian-runner {VERSION} (bundle {BUNDLE_DIGEST})")
    args = parser.parse_args(argv)
    if config is None and not args.config:
        parser.error("--config is required")
    return vars(args)


def _load(opts: Dict[str, Any], config: Optional[Dict[str, Any]], cron_config: Any) -> RunnerConfig:
    """The run's config: the controller's, or cron's config.json (the host's settings alone, the
    job's defaults), with the command line's ``--runner`` and ``--check`` applied."""
    if config is not None:
        loaded = RunnerConfig.from_dict(config)
    elif isinstance(cron_config, dict):
        loaded = RunnerConfig(settings=HostSettings.from_cron_config(cron_config))
    else:
        raise RunnerConfigError(f"{opts['config']} holds no JSON object")
    if opts["runner"]:
        loaded = loaded.with_settings(runner=opts["runner"])
    if opts["check"]:
        loaded = loaded.with_settings(check=opts["check"])
    if loaded.job.run_id is None or opts["config"]:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        loaded = loaded.with_job(run_id=f"{stamp}-{loaded.settings.runner}-{os.getpid()}")
    return loaded


def main(argv: Optional[Sequence[str]] = None, config: Optional[Dict[str, Any]] = None) -> int:
    """Entry point for the on-host runner. Exit code: 0 ok, 2 not ok, 3 bad config, 6 deferred."""
    opts = _options(argv, config)
    cron_config: Optional[Dict[str, Any]] = None
    if config is None:
        try:
            with open(opts["config"], encoding="utf-8") as fh:
                cron_config = json.load(fh)
        except (OSError, ValueError) as exc:
            print(f"guardian-runner: cannot read config {opts['config']}: {exc}", file=sys.stderr)
            return EXIT_BAD_CONFIG
    try:
        runner_config = _load(opts, config, cron_config)
    except RunnerConfigError as exc:
        _emitter(opts, None)(events.result({"outcome": "failed", "reason": f"bad runner config: {exc}"}))
        return EXIT_BAD_CONFIG
    job = runner_config.job
    watch = ControllerWatch(control=job.control or job.gate or job.secrets_on_stdin)
    emit = _emitter(opts, watch)
    secrets: Dict[str, str] = {}
    if job.secrets_on_stdin:
        try:
            runner_config = runner_config.with_secrets(_secrets_from_controller(watch))
        except RunnerConfigError as exc:
            emit(events.result({"outcome": "failed", "reason": f"bad runner config: {exc}"}))
            return EXIT_BAD_CONFIG
    elif opts["config"]:
        # cron: the secrets deploy wrote beside config.json (mode 0600), the ping URL.
        from .telemetry import read_secrets

        secrets, warning = read_secrets(os.path.join(os.path.dirname(opts["config"]), SECRETS_FILE))
        if warning:
            print(f"guardian-runner: warning: {warning}", file=sys.stderr)

    def on_signal(signum: int, frame: Any) -> None:
        watch.request_stop(f"{signal.Signals(signum).name} received")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        if job.action == "deploy":
            from .deploy import Installer  # only deploy needs it: keeps every other run's start-up small

            record = Installer(runner_config, emit).run()
            return EXIT_OK if record["outcome"] in DEPLOY_OK else EXIT_NOT_OK
        ctx = RunContext(runner_config, emit, watch)
        ctx.secrets = secrets
        ctx.record["runner_code"] = RUNNER_CODE  # which code this run is: installed or streamed
        if opts["config"]:  # cron: the runner, its config and secrets are read as root
            here = os.path.dirname(os.path.abspath(opts["config"]))
            ctx.installed_files = [os.path.abspath(sys.argv[0]), os.path.abspath(opts["config"])]
            # and what root's logrotate line reads beside them, and the package the launcher runs
            ctx.installed_files += [os.path.join(here, name) for name in (SECRETS_FILE, "logrotate.conf")]
            ctx.installed_files += [p for p in runner_tree(here) if p not in ctx.installed_files]
        elif RUNNER_NOTE:
            # The installed package is this code, but the script's probe would not run it: this run
            # judges all of it as cron's runs do, and refuses if root may not trust it (cron would
            # run it). When the probe did choose it, the probe judged it, before running it.
            ctx.installed_files = runner_tree(ctx.guardian_dir)
            ctx.warn(f"the installed runner is this code but was not used ({RUNNER_NOTE}); ran the code sent")
        if job.action == "status":
            from .status import report_status

            return report_status(ctx)
        runner = Runner(ctx)
    except (RuleError, ValueError) as exc:  # RunnerConfigError, an unknown manager among them
        emit(events.result({"outcome": "failed", "reason": f"bad runner config: {exc}"}))
        return EXIT_BAD_CONFIG
    if job.action == "collect":
        collect_only(ctx)
        return EXIT_OK
    if job.action in ("hold", "release"):
        from .maintenance import change_hold

        return change_hold(ctx, job.action)
    return runner_exit_code(str(runner.run()["outcome"]))


#: How long a runner started with ``secrets_on_stdin`` waits for them on stdin (they are the controller's
#: first line, sent as the session opens).
SECRETS_WAIT = 30.0


def _secrets_from_controller(watch: ControllerWatch) -> Dict[str, Any]:
    """The secrets the controller sends as its first control line, ``{"secrets": {...}}``."""
    deadline = time.monotonic() + SECRETS_WAIT
    while True:
        found = next((m for m in watch.messages if "secrets" in m), None)
        if found is not None:
            watch.messages.remove(found)
            value = found["secrets"]
            if not isinstance(value, dict):
                raise RunnerConfigError("the controller's secrets line holds no mapping")
            return value
        if watch.control_closed or time.monotonic() > deadline:
            raise RunnerConfigError("the controller did not send the secrets this run needs on stdin")
        watch.poll_control(0.2)


def _emitter(opts: Dict[str, Any], watch: Optional[ControllerWatch]) -> Emit:
    return json_emitter(sys.stdout, watch) if opts["format"] == "json" else text_emitter(sys.stdout)
