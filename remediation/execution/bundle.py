"""Build the on-host runner: one self-contained Python script carrying the agent package.

The controller runs it as ``python3 -c <script>`` over a single SSH session (or locally). The
script embeds the agent's sources and imports them from memory, so the host needs nothing but
python3 (>= 3.9); on a host where ``invoke deploy`` installed this very code, the script runs
that instead, precompiled (``agent/installed.py``), and decodes nothing.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..agent import VERSION
from ..agent.bootstrap import ENTRY_MODULE, PACKAGE, encode, probe_source, read_sources, render
from ..agent.config import RunnerConfig

#: The package name the agent's modules get in the script, and the module whose main it runs.
BUNDLE_PACKAGE, ENTRY_POINT = PACKAGE, f"{PACKAGE}.{ENTRY_MODULE}"
AGENT_DIR = Path(__file__).resolve().parent.parent / "agent"


@lru_cache(maxsize=1)
def agent_sources() -> tuple[tuple[str, str], ...]:
    """(module name, source) for every module of the agent package, renamed for the bundle."""
    return tuple(read_sources(str(AGENT_DIR)).items())


@lru_cache(maxsize=1)
def _payload() -> tuple[str, str]:
    return encode(dict(agent_sources()))


@lru_cache(maxsize=1)
def _probe() -> str:
    return probe_source((AGENT_DIR / "installed.py").read_text(encoding="utf-8"))


def bundle_digest() -> str:
    """Identifies the agent code; the deployed runner and the controller compare it."""
    return _payload()[1]


def build_runner(config: RunnerConfig | None = None) -> str:
    """The runner script. With ``config`` it runs that config; without, it reads ``--config``."""
    payload, digest = _payload()
    literal = "None" if config is None else f"json.loads({json.dumps(config.to_dict(), sort_keys=True)!r})"
    return render(payload, digest, VERSION, literal, _probe())
