"""Operator alerts over a Slack-compatible webhook: breaker open, unhealthy after recovery, a
restart deferred or not stable, common-cause incidents. Optional; the URL (which usually embeds a
token) never appears in logs, reports or error messages.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from ..agent.outcomes import STILL_BAD_OUTCOMES
from .report import RunReport
from .selfheal import silence_line
from .views.host import deferred_text


def alert_messages(report: RunReport) -> list[str]:
    """Pure: the alert texts a run calls for (empty when nothing needs a human)."""
    record = report.to_dict()
    messages: list[str] = []
    for incident in record["incidents"]:
        forced = " (forced: acted anyway)" if incident.get("forced") else "; no restarts were done"
        messages.append(
            f":rotating_light: Guardian {report.command} {report.run_id}: common-cause incident "
            f"{incident['signature']} on {len(incident['hosts'])} of {incident['selected']} hosts "
            f"({', '.join(incident['hosts'])}){forced}"
        )
    for host in record["hosts"]:
        for action in host["actions"]:
            if action.get("kind") == "breaker_open":
                breaker = action.get("breaker") or {}
                messages.append(
                    f":no_entry: Guardian {report.run_id}: breaker OPEN on {host['host']} for {action.get('target')}: "
                    f"{breaker.get('description', '')}"
                )
        for entry in host.get("deferred") or []:
            messages.append(f":hourglass: Guardian {report.run_id}: {host['host']}: {deferred_text(entry)}")
        for unstable in host.get("unstable") or []:
            problem = unstable.get("problem")
            messages.append(f":warning: Guardian {report.run_id}: {host['host']}: not stable: {problem}")
        if host["outcome"] in STILL_BAD_OUTCOMES:
            messages.append(f":warning: Guardian {report.run_id}: {host['host']} is {host['outcome']} after recovery")
        silent = silence_line(host.get("self_heal") or {})
        if silent:
            messages.append(f":zzz: Guardian {report.run_id}: {host['host']}: {silent}")
    return messages


def send_webhook(url: str, messages: Sequence[str], *, retries: int = 3, timeout: float = 5.0) -> list[str]:
    """POST each message as ``{"text": ...}``; retry with backoff. Returns problems (URL-free)."""
    problems: list[str] = []
    if not url.startswith(("http://", "https://")):
        return ["webhook alert not sent: the webhook URL must start with http:// or https://"]
    for message in messages:
        body = json.dumps({"text": message}).encode()
        for attempt in range(1, retries + 1):
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only, checked above
                    if 200 <= response.status < 300:
                        break
                    error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                error = type(reason).__name__ if not isinstance(reason, str) else "unreachable"
            if attempt == retries:
                problems.append(f"webhook alert not delivered after {retries} attempts ({error})")
            else:
                time.sleep(0.5 * 2 ** (attempt - 1))
    return problems
