"""The on-host half of Guardian.

Everything in this package runs on the droplet itself, either streamed over one SSH session by
the controller or installed by ``invoke deploy`` and run from cron. It therefore uses the
standard library only and stays compatible with Python 3.9, the oldest python3 a host may have.
The controller imports the same modules, so the decision logic is shared by both sides.

The contract across the SSH boundary: ``config`` (every setting and job field, typed, with its
one default), ``events`` (what the runner reports) and ``outcomes``. A run: ``main`` (entry
point) -> ``sequence`` (lock, check, plan, act, settle, verify) with ``context`` (what its steps
share), ``checkrun``, ``signatures``, ``locks``, ``guards``, ``plan`` (the pure decision),
``gate``, ``apply`` (the actions), ``managers`` (the commands a process manager would run) and
``commands`` (the executor that runs them), ``journal`` and ``collect``; ``emit`` and ``watch``
talk to the controller; ``telemetry`` writes each run's Prometheus metrics (``metrics``) and
pings a dead man's switch (``ping``). ``systemd`` holds what a unit's ``systemctl show`` means and
whether it may be restarted (the systemd manager's pure half); ``identity`` is who the check runs
as and ``trust`` whether root may trust a path. ``deploy``, ``cronblock``, ``timers`` (systemd
timers, the other scheduler), ``hostlock``, ``maintenance`` (hold and release) and ``status``
(read-only: cron runs, manifest, drift) are the other actions' parts, with ``cronexpr`` and
``missed`` (when cron should have fired); ``bootstrap`` is the one-file script all of it travels in.
"""

import os

VERSION = "0.1.0"
#: Guardian's own files on a host live in the ``guardian_dir`` setting (relative to the app dir,
#: or absolute: a root-owned directory outside an app dir that the bot's user owns): the
#: installed runner, its config, and the state (host lock, restart budget, hold, journals) in
#: its ``state/``, which every runner on the host (laptop or cron) shares.
GUARDIAN_DIR = ".guardian"  # the ``guardian_dir`` setting's default
STATE_SUBDIR = "state"
STATE_DIR = os.path.join(GUARDIAN_DIR, STATE_SUBDIR)  # with the default guardian_dir
JOURNAL_DIR = "journal"
#: What ``invoke deploy`` installs beside the runner in ``<app>/.guardian/`` and the runners read:
#: the manifest (schedules, version; ``invoke status`` and missed-run detection) and cron's secrets.
RUNNER_FILE = "guardian-runner.py"
MANIFEST_FILE = "deployed.json"
SECRETS_FILE = "secrets.json"
#: The bundle's bootstrap replaces this with the digest of the agent sources it carries, and
#: BUNDLE_PAYLOAD with those sources as it carries them (so deploy can install a copy of itself).
BUNDLE_DIGEST = "dev"
BUNDLE_PAYLOAD = ""
#: Which code a run is: "streamed" (the controller's script carried it) or "installed" (deploy's
#: precompiled package, started by cron's launcher or chosen by the script's probe). The script
#: sets RUNNER_NOTE when it found this very code installed but could not use it, and why.
RUNNER_CODE = "streamed"
RUNNER_NOTE = ""
