"""Push pings to a healthchecks.io-compatible dead man's switch, so a host that stops healing
itself is noticed even when no laptop runs Guardian.

The runner pings ``URL/start`` when it starts and ``URL`` (success) or ``URL/fail`` when it ends,
or ``URL/<exit status>`` where an exit status says more, as healthchecks.io documents for its
ping API; a short summary goes in the request body. One attempt per ping with a short timeout:
a monitoring service that is down must never slow a heal or cause a retry storm on a fleet.

The URL is a secret (anyone holding it can fake a ping): it is never logged, reported or put on
a command line; messages name only its host. Standard library only.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from typing import Optional, Union

#: What healthchecks.io accepts in a ping body (100 kB); we send far less.
MAX_BODY = 10_000
TIMEOUT = 5.0


def redacted(url: str) -> str:
    """``https://hc-ping.com/<secret>`` -> ``https://hc-ping.com/…``: safe to print."""
    try:
        parts = urllib.parse.urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or '?'}/…"
    except ValueError:
        return "(a malformed URL)"


def ping_url(base: str, event: Union[str, int]) -> str:
    """The URL for ``event``: ``start``, ``success``, ``fail``, ``log`` or an exit status 0-255."""
    base = base.rstrip("/")
    if event == "success":
        return base
    if isinstance(event, int):
        if not 0 <= event <= 255:
            raise ValueError(f"exit status {event} is outside 0-255")
        return f"{base}/{event}"
    if event not in ("start", "fail", "log"):
        raise ValueError(f"unknown ping event {event!r}")
    return f"{base}/{event}"


def send_ping(base: str, event: Union[str, int], body: str = "", *, timeout: float = TIMEOUT) -> Optional[str]:
    """Ping once; returns None on success, else a message that does not contain the URL (nor
    an exception's text, which may quote it). Never raises: a ping never fails a run."""
    try:
        url = ping_url(base, event)
        scheme = urllib.parse.urlsplit(url).scheme
    except ValueError:
        return f"ping {event} not sent: the ping URL is malformed"
    if scheme not in ("http", "https"):
        return f"ping to {redacted(url)} not sent: only http and https URLs are allowed"
    data = body.encode("utf-8", errors="replace")[:MAX_BODY]
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=data, method="POST", headers={"User-Agent": "guardian-runner"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            response.read(1024)
    except urllib.error.HTTPError as exc:
        return f"ping {event} to {redacted(url)} failed: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        text = getattr(reason, "strerror", None) or type(reason).__name__
        return f"ping {event} to {redacted(url)} failed: {text}"
    except Exception as exc:
        return f"ping {event} to {redacted(url)} failed: {type(exc).__name__}"
    return None
