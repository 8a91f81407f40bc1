"""Advies op aanvraag wired into the runtime: the service built from the settings, and the ticker.

``build_service`` is called when the runtime is built; ``start`` once the send queue exists. The ticker
(APScheduler 3.x) only calls ``process_due(now)`` (mail goes through the general mail outbox); the database
holds every deadline, so a restart first carries out whatever fell due during the downtime. Dependencies are
passed in explicitly, so this module does not import the runtime that calls it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from bot.shutdown import cancel_within
from config.settings import Settings
from domain.afdoeningen import Catalogus
from domain.clock import Clock
from domain.veiligheidshuizen import Veiligheidshuizen
from integrations.registry import Registry
from services.aanvraag import AanvraagService, load_config
from services.mail_outbox import MailService
from services.publiek import PubliekService
from storage.audit import Auditor
from storage.db import SessionFactory

log = logging.getLogger(__name__)


def build_service(settings: Settings, *, auditor: Auditor, veiligheidshuizen: Veiligheidshuizen,
                  sessions: SessionFactory, registry: Registry, mail: MailService | None,
                  publiek: PubliekService | None = None, catalogus: Catalogus | None = None) -> AanvraagService:
    return AanvraagService(load_config(settings, veiligheidshuizen), auditor, veiligheidshuizen, sessions,
                           registry=registry, mail=mail, publiek=publiek, catalogus=catalogus)


async def tick(service: AanvraagService, clock: Clock, active: Callable[[], bool] = lambda: True) -> None:
    if not active():
        return  # a standby: the active instance carries out the steps
    try:
        await service.process_due(clock.now())
        await service.roster_check(clock.now())
    except Exception as exc:
        log.error("aanvraag tick failed", extra={"error": type(exc).__name__})


async def start(service: AanvraagService, clock: Clock, stack: AsyncExitStack,
                wake_sender: Callable[[], None] | None, active: Callable[[], bool] = lambda: True) -> None:
    """Recover at once (every overdue step now, marked late), then tick; the ticker stops with ``stack``."""
    if wake_sender is not None:
        service.on_enqueued = wake_sender
    await service.process_due(clock.now())
    if service.config.tick_seconds <= 0:
        return
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    running: set[asyncio.Task[Any]] = set()

    async def tracked_tick() -> None:
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        try:
            await tick(service, clock, active)
        finally:
            running.discard(task)

    # A tick still running when the next falls due is skipped (max_instances=1): normal for a busy tick at a
    # quarter second, not worth a warning four times a second.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(tracked_tick, "interval", seconds=service.config.tick_seconds,
                      max_instances=1, coalesce=True, id="aanvraag-tick")
    scheduler.start()

    async def stop() -> None:
        # The scheduler does not wait for a running tick; a tick left running at exit would be cancelled by
        # asyncio.run in the middle of its query, after the engine is gone. So it is cancelled and awaited here.
        scheduler.shutdown(wait=False)
        await cancel_within(list(running))

    stack.push_async_callback(stop)
