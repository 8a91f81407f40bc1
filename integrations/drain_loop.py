"""The loop shared by the durable queues (Matrix messages, mail): drain what is due, then sleep until woken
or until the next row falls due. A failing drain is logged by type and retried; it never ends the loop."""

from __future__ import annotations

import asyncio
import contextlib
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
