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
talk to the controller. ``systemd`` holds what a unit's ``systemctl show`` means and whether it
may be restarted (the systemd manager's pure half). ``deploy``, ``cronblock``, ``timers`` (systemd
timers, the other scheduler), ``hostlock`` and ``maintenance`` (hold and release) are the other
actions' parts; ``bootstrap`` is the one-file script all of it travels in.
"""

import os

VERSION = "0.1.0"
#: Guardian's own state on a host (host lock, restart budget, hold, journals), relative to the
#: app dir. Fixed, apart from ``lock_dir`` (the app's locks that Guardian sweeps), so that every
#: runner on the host (laptop or cron, whatever its settings) shares one lock and one history.
STATE_DIR = os.path.join(".guardian", "state")
JOURNAL_DIR = "journal"
#: The bundle's bootstrap replaces this with the digest of the agent sources it carries, and
#: BUNDLE_PAYLOAD with those sources as it carries them (so deploy can install a copy of itself).
BUNDLE_DIGEST = "dev"
BUNDLE_PAYLOAD = ""
