"""Where the runner's events go: JSON lines for the controller, readable lines for a cron log."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Optional

from . import events
from .events import Event
from .watch import ControllerWatch

Emit = Callable[[Event], None]


def json_emitter(stream: Any, watch: Optional[ControllerWatch] = None) -> Emit:
    """JSON lines for the controller. A write that fails (the controller's session is gone:
    EPIPE) never aborts the run; the watch learns of it and the run stops at its next safe point."""

    def emit(event: Event) -> None:
        if watch is not None and watch.lost:
            return
        event.setdefault("t", round(time.time(), 3))
        try:
            stream.write(json.dumps(event, sort_keys=True, default=str) + "\n")
            stream.flush()
        except (OSError, ValueError) as exc:
            if watch is None:
                raise
            watch.mark_lost(f"the controller disconnected (output: {exc})")

    return emit


def text_emitter(stream: Any) -> Emit:
    """Readable lines for a cron log; file contents are summarised, not printed."""

    def emit(event: Event) -> None:
        kind = events.kind(event)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        if kind == events.CHECK:
            line = f"check ({event['which']}): exit {event['exit_code']} -> {event['state']}"
        elif kind == events.ACTION:
            detail = event.get("detail", event.get("reason", ""))
            line = f"{event['kind']} {event['target']}: {event['result']} - {detail}"
        elif kind == events.RESULT:
            line = f"outcome: {event['outcome']} {event.get('reason', '')}".rstrip()
        elif kind == events.PLAN:
            planned = ", ".join(f"{a['kind']} {a['target']}" for a in event["actions"]) or "nothing to do"
            line = "; ".join([f"plan: {planned}", *event["notes"]])
        else:
            return
        stream.write(f"[{stamp}] {line}\n")
        stream.flush()

    return emit
