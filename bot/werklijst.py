"""The werklijst reminder's ticker: APScheduler only calls ``WerklijstService.remind_due``; the slot's transaction id
keeps it exactly once, so the scheduler holds no state."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from domain.clock import Clock
from services.werklijst import WerklijstService

log = logging.getLogger(__name__)


async def tick(service: WerklijstService, clock: Clock) -> None:
    try:
        await service.remind_due(clock.now())
        await service.digest_due(clock.now())
    except Exception as exc:  # a failed tick is retried at the next one; the slot is still open
        log.error("werklijst tick failed", extra={"error": type(exc).__name__})


async def start(service: WerklijstService, clock: Clock, stack: AsyncExitStack, every_s: float) -> None:
    reminder = bool(service.settings.herinneringen) and service.room is not None
    if every_s <= 0 or not (reminder or service.digest_rooms):
        return
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(tick, "interval", args=(service, clock), seconds=max(every_s, 30.0), max_instances=1,
                      coalesce=True, id="werklijst-tick")
    scheduler.start()

    async def stop() -> None:
        scheduler.shutdown(wait=False)

    stack.push_async_callback(stop)
