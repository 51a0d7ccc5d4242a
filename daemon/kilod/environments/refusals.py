"""Requests the egress proxy refused, made visible: one event per refusal and a counter.

While an attempt with an allowlist runs, its proxy's log is read every few seconds
(tinyproxy logs each refusal with the host). The newest timestamp reported is kept
in the event, so a restarted daemon does not report the same refusal twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kilod.domain import EventKind
from kilod.environments.egress import Egress, Refusal
from kilod.lifecycle import Lifecycle
from kilod.metrics import Metrics

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0
EVENT_KEY = "egress_refused"


def message(refusal: Refusal) -> str:
    if refusal.host.startswith(":"):
        return f"egress refused: CONNECT to port {refusal.host[1:]} (only 443 is allowed)"
    return f"egress refused: {refusal.host} is not on the network allowlist"


class RefusalWatch:
    def __init__(self, egress: Egress, attempt_id: str, after: str,
                 report: Callable[[Refusal], None]) -> None:
        self.egress = egress
        self.attempt_id = attempt_id
        self.after = after
        self.report = report

    @classmethod
    def for_attempt(cls, egress: Egress, lifecycle: Lifecycle, metrics: Metrics | None,
                    attempt_id: str) -> RefusalWatch:
        """Reports as LOG events and `kilod_egress_refused_total`, after what earlier runs reported."""
        seen = [str(e.payload.get("at", "")) for e in lifecycle.store.events_of(attempt_id) if EVENT_KEY in e.payload]

        def report(refusal: Refusal) -> None:
            lifecycle.record(attempt_id, EventKind.LOG, {"message": message(refusal), EVENT_KEY: refusal.host,
                                                         "at": refusal.timestamp})
            if metrics is not None:
                metrics.egress_refused.inc()

        return cls(egress, attempt_id, max(seen, default=""), report)

    async def drain(self) -> int:
        found = await asyncio.to_thread(self.egress.refusals, self.attempt_id, self.after)
        for refusal in found:
            self.report(refusal)
            self.after = max(self.after, refusal.timestamp)
        return len(found)

    async def run(self) -> None:
        """Until cancelled; a last read on the way out catches what the final step provoked."""
        try:
            while True:
                await asyncio.sleep(POLL_SECONDS)
                try:
                    await self.drain()
                except Exception:  # the proxy's log is best effort: never fail the attempt for it
                    log.exception("reading the egress proxy's log failed", extra={"attempt_id": self.attempt_id})
        finally:
            try:
                await self.drain()
            except Exception:
                log.debug("last read of the egress proxy's log failed", exc_info=True)
