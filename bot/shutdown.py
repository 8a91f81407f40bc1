"""Stopping within a bound: SIGTERM and SIGINT set an event, and every task the bot started is cancelled and given
a grace period, never waited on for ever.

A task cancelled in the middle of a query normally ends at once (the driver's future is cancelled and the session
rolls back); the grace period is for the rare one that does not, so a stuck query cannot keep the process alive.
Tasks are awaited before the engine is disposed, so their connections are back in the pool and closed with it
(an aiosqlite connection left open keeps a non-daemon thread, and the interpreter, alive at exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Iterable
from typing import Any

log = logging.getLogger(__name__)

GRACE_S = 10.0


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (where the loop supports signal handlers) instead of interrupting
    whatever await happens to be running."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def cancel_within(tasks: Iterable[asyncio.Task[Any]], grace_s: float = GRACE_S) -> None:
    """Cancel the tasks and wait for them at most ``grace_s``; one that does not end in time is logged and left."""
    pending = {t for t in tasks if not t.done()}
    for t in pending:
        t.cancel()
    if pending:
        _, late = await asyncio.wait(pending, timeout=grace_s)
        for t in late:
            log.error("task did not stop in time", extra={"task": t.get_name(), "grace_s": grace_s})
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()  # retrieved: a task that failed while stopping is not reported again at exit


async def within(work: Awaitable[Any], what: str, grace_s: float = GRACE_S) -> None:
    """Await a closing step (disposing the engine, draining handlers) at most ``grace_s``."""
    try:
        await asyncio.wait_for(work, timeout=grace_s)
    except TimeoutError:
        log.error("shutdown step did not finish in time", extra={"step": what, "grace_s": grace_s})
