"""The blast-radius gate, on the host: announce what this host would act on, then hold (lock
kept, nothing changed) until the controller has seen enough of the fleet to say which signatures
are a common-cause incident.

The protocol: the runner emits ``{"event": "gate", "signatures": [...]}`` and reads one control
line ``{"suppress": {signature: why}}`` on stdin (see ``watch``). No answer (the controller went
away, stdin closed, or the gate timeout passed) means nothing is changed on this host.
"""

from __future__ import annotations

import time
from typing import Dict, List, Sequence

from . import events
from .context import RunContext
from .signatures import SignatureMatch
from .watch import ControllerGone


def await_gate(ctx: RunContext, matches: Sequence[SignatureMatch]) -> Dict[str, str]:
    """Wait for the controller's go/no-go; returns the signatures not to act on, with why.

    Raises:
        ControllerGone: no usable answer came (StopRequested when the controller asked to stop).
    """
    signatures: List[str] = []
    for match in matches:
        if match.signature not in signatures:
            signatures.append(match.signature)
    ctx.phase("gate")
    ctx.emit(events.gate(signatures))
    deadline = time.monotonic() + ctx.job.gate_timeout
    watch = ctx.watch
    while True:
        watch.check()
        answer = next((m for m in watch.messages if "suppress" in m), None)
        if answer is not None:
            break
        if watch.control_closed:
            raise ControllerGone("the controller closed the gate without an answer")
        if time.monotonic() > deadline:
            raise ControllerGone("no go/no-go answer from the controller before the gate timeout")
        watch.poll_control(0.2)
    suppress = answer["suppress"]
    if not isinstance(suppress, dict):
        raise ControllerGone("unreadable gate answer from the controller: suppress must be a mapping")
    ctx.log.write(
        "Fleet-wide incident check: "
        + (f"not acting on {', '.join(sorted(suppress))} (common cause)" if suppress else "go")
    )
    return {str(k): str(v) for k, v in suppress.items()}
