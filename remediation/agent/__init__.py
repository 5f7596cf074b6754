"""The on-host half of Guardian.

Everything in this package runs on the droplet itself, either streamed over one SSH session by
the controller or installed by ``invoke deploy`` and run from cron. It therefore uses the
standard library only and stays compatible with Python 3.9, the oldest python3 a host may have.
The controller imports the same modules, so the decision logic is shared by both sides.
"""

VERSION = "0.1.0"
#: The bundle's bootstrap replaces this with the digest of the agent sources it carries.
BUNDLE_DIGEST = "dev"
