"""Build the on-host runner: one self-contained Python script carrying the agent package.

The controller runs it as ``python3 -c <script>`` over a single SSH session (or locally). The
script embeds the agent's sources and imports them from memory, so the host needs nothing but
python3 (>= 3.9); on a host where ``invoke deploy`` installed this very code, the script runs
that instead, precompiled (``agent/installed.py``), and decodes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import lru_cache
from pathlib import Path

from ..agent import VERSION
from ..agent.bootstrap import ENTRY_MODULE, PACKAGE, compact, encode, probe_source, read_sources, render
from ..agent.config import RunnerConfig

#: The package name the agent's modules get in the script, and the module whose main it runs.
BUNDLE_PACKAGE, ENTRY_POINT = PACKAGE, f"{PACKAGE}.{ENTRY_MODULE}"
AGENT_DIR = Path(__file__).resolve().parent.parent / "agent"


@lru_cache(maxsize=1)
def agent_sources() -> tuple[tuple[str, str], ...]:
    """(module name, source) for every module of the agent package, renamed for the bundle."""
    return tuple(read_sources(str(AGENT_DIR)).items())


#: Where the compacted sources are kept between controller runs: beside the agent's bytecode.
CACHE_DIR = AGENT_DIR / "__pycache__"


@lru_cache(maxsize=1)
def _payload() -> tuple[str, str]:
    return encode(compacted_sources())


def compacted_sources() -> dict[str, str]:
    """The agent's sources as the script carries them (:func:`bootstrap.compact`), from the cache
    when it holds these very sources.

    Compacting tokenizes and parses every module, 0.2-0.3 CPU-s on each controller run. Like
    Python's own bytecode, the result is kept in the package's ``__pycache__``, named by a hash of
    the sources, of the compacting code and of the Python version, so a changed source or a
    changed ``compact`` never reuses it; a cache that cannot be read or written is compacted again.
    """
    sources = dict(agent_sources())
    recipe = [sorted(sources.items()), (AGENT_DIR / "bootstrap.py").read_text(encoding="utf-8"), sys.version]
    key = hashlib.sha256(json.dumps(recipe).encode("utf-8")).hexdigest()[:20]
    cache = CACHE_DIR / f"guardian-bundle-{key}.json"
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
        usable = isinstance(cached, dict) and set(cached) == set(sources)
        if usable and all(isinstance(v, str) for v in cached.values()):
            return dict(cached)
    except (OSError, ValueError):
        pass
    compacted = {name: compact(source) for name, source in sources.items()}
    try:
        CACHE_DIR.mkdir(exist_ok=True)
        for old in CACHE_DIR.glob("guardian-bundle-*.json"):
            old.unlink()  # another version's: one cache file at a time
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(compacted), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only install: compact on every run, as before
    return compacted


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
