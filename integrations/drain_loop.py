"""The loop shared by the durable queues (Matrix messages, mail): drain what is due, then sleep until woken
or until the next row falls due. A failing drain is logged by type and retried; it never ends the loop."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class DrainLoop:
    loop_name = "queue"
    error_delay_s = 2.0

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def wake(self) -> None:
        self._wake.set()

    async def drain(self) -> float:
        """Do what is due; return the seconds until the next item falls due."""
        raise NotImplementedError

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay = await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("queue error", extra={"queue": self.loop_name, "error": type(exc).__name__})
                delay = self.error_delay_s
            await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        """Until woken or ``delay`` passed. Not ``asyncio.wait_for(event.wait())``: on Python 3.11 a cancel that
        reaches wait_for while it cancels its inner wait could leave the loop 'cancelling' for ever, and a stop
        (SIGTERM, asyncio.run's exit) then hung on it."""
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=delay)
        finally:
            waiter.cancel()
