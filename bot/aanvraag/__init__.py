"""Advies op aanvraag wired into the runtime: configuration, the service, the ticker and the answer form.

``install(runtime)`` is called when the runtime is built; ``start(runtime)`` once the send queue exists. The
ticker (APScheduler 3.x) only calls ``process_due(now)`` (mail goes through the general mail outbox); the
database holds every deadline, so a restart first carries out whatever fell due during the downtime.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from config.aanvraag import with_veiligheidshuizen
from domain.aanvraag import AanvraagConfig
from services.aanvraag import AanvraagService

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)
EXTRA_KEY = "aanvraag"


def load_config(runtime: Runtime) -> AanvraagConfig:
    extras = [(vh.key, vh.extra) for vh in runtime.services.veiligheidshuizen.all()]
    return with_veiligheidshuizen(runtime.settings.aanvraag, extras)


def install(runtime: Runtime) -> AanvraagService:
    from web.aanvraag_form import routes

    service = AanvraagService(load_config(runtime), runtime.auditor, runtime.services.veiligheidshuizen,
                              runtime.sessions, mail=runtime.services.mail)
    runtime.services.extras[EXTRA_KEY] = service
    runtime.extra_routes.extend(routes(service, runtime.clock))
    return service


async def tick(runtime: Runtime, service: AanvraagService) -> None:
    try:
        await service.process_due(runtime.clock.now())
    except Exception as exc:
        log.error("aanvraag tick failed", extra={"error": type(exc).__name__})


async def start(runtime: Runtime) -> None:
    """Recover at once (every overdue step now, marked late), then tick."""
    service: AanvraagService = runtime.services.extras[EXTRA_KEY]
    if runtime.sender is not None:
        service.on_enqueued = runtime.sender.wake
    await service.process_due(runtime.clock.now())
    if service.config.tick_seconds <= 0:
        return
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(tick, "interval", args=(runtime, service), seconds=service.config.tick_seconds,
                      max_instances=1, coalesce=True, id="aanvraag-tick")
    scheduler.start()

    async def stop() -> None:
        scheduler.shutdown(wait=False)

    runtime._stack.push_async_callback(stop)


def config_notes(runtime_settings: object) -> tuple[list[str], list[str]]:
    """Problems and notes for ``zsm-bot check-config`` about ``[aanvraag]``."""
    from config.reference import load_veiligheidshuizen
    from config.settings import Settings
    from domain.errors import ConfigError

    assert isinstance(runtime_settings, Settings)
    problems: list[str] = []
    notes: list[str] = []
    try:
        vhs = load_veiligheidshuizen(runtime_settings.veiligheidshuizen_path)
        cfg = with_veiligheidshuizen(runtime_settings.aanvraag, [(v.key, v.extra) for v in vhs.all()])
    except ConfigError as exc:
        return [str(exc)], notes
    for key, vh in sorted(cfg.per_vh.items()):
        if vhs.get(key) is None:
            problems.append(f"aanvraag.vh.{key}: onbekend veiligheidshuis")
        if vh.doelgroepen and not vh.room_id:
            notes.append(f"aanvraag.vh.{key}: geen room voor de bereikbaarheidsdienst; alleen de mail gaat uit")
    if not cfg.link_key:
        notes.append("aanvraag.link_sleutel niet gezet: geen antwoordformulier via de website; zet "
                     "ZSM_BOT_AANVRAAG_LINK_SLEUTEL")
    elif len(cfg.link_key) < 32:
        problems.append("aanvraag.link_sleutel is te kort: gebruik minstens 32 willekeurige tekens")
    return problems, notes
