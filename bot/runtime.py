"""Wiring: settings to engine, services, dispatcher, send queue, health server and a transport.

Both backends (Matrix and console) go through ``Runtime``, so what the console proves about a command
holds for the room as well.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from aiohttp import web

from bot import aanvraag
from bot.dispatcher import Dispatcher
from bot.metrics import Metrics
from bot.outbound import Sender
from bot.redaction import Redactor
from bot.shutdown import cancel_within, within
from bot.transport import Transport
from commands import default_table
from commands.base import Services
from commands.vh_view import compose_batch
from config.reference import load_afdoeningen, load_veiligheidshuizen
from config.settings import Settings
from domain.clock import Clock, SystemClock, local
from domain.errors import ConfigError
from integrations.registry.config import build_registry
from services import messages
from services.aanmelden import AanmeldService
from services.base import Tx
from services.besluit import BesluitService
from services.check import CheckService
from services.instroom import InstroomService, SignaalResult
from services.mail_outbox import MailService, MailWorker, OutboxService, RoomNotice
from services.messages import NewMessage, Queued, message_content, txn_id_for
from services.rapport import RapportService
from services.reply import text
from services.vrijgave import VrijgaveService
from storage.audit import Auditor
from storage.db import SessionFactory, create_engine, ping, session_factory
from storage.migrate import upgrade
from storage.outgoing import subjects_of_replies
from storage.purge import REDACT_KEY, purge
from storage.statistiek_fold import fold_facts
from web import aanvraag_form, instroom_api
from web import rapport as rapport_web
from web.ops import ReadyCheck, build_app, start_site

log = logging.getLogger(__name__)


def audit_key(settings: Settings) -> bytes:
    """The configured key; for the embedded default a generated key file beside the configuration."""
    if settings.audit.key:
        return settings.audit.key.encode()
    path = settings.source.resolve().parent / "var" / "audit.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        log.warning("audit key generated in a file; set ZSM_BOT_AUDIT_KEY in production", extra={"path": str(path)})
    return path.read_text().strip().encode()


@dataclass
class Runtime:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        check = self.settings.check
        self.engine = create_engine(self.settings.database_url)
        self.sessions: SessionFactory = session_factory(self.engine)
        self.auditor = Auditor(audit_key(self.settings))
        vhs = load_veiligheidshuizen(self.settings.veiligheidshuizen_path)
        registry = build_registry(self.settings.registry, self.sessions)
        velden, regio = self.settings.velden, self.settings.regio
        # a bad release term stops the start, not the first !vrijgeven
        regios = sorted({vh.regio for vh in vhs.all()})
        if regio is not None and regio not in regios:
            raise ConfigError(f"zsm.regio: onbekende regio {regio!r}; kies uit {', '.join(regios)}")
        # a bad release term stops the start, not the first !vrijgeven
        vrijgave = VrijgaveService(check, registry, vhs, self.auditor, velden, regio,
                                   self.settings.privacy.vrijgave_dagen)
        instroom_service = InstroomService(check, registry, vhs, self.auditor, self.sessions, self.clock, velden, regio)
        rapport_service = RapportService(self.sessions, self.auditor, vhs, self.clock)
        self.mail_settings = self.settings.mail
        mail = MailService(self.mail_settings)
        self.aanvraag = aanvraag.build_service(self.settings, auditor=self.auditor, veiligheidshuizen=vhs,
                                               sessions=self.sessions, registry=registry, mail=mail)
        self.services = Services(
            settings=self.settings, auditor=self.auditor, clock=self.clock, table=default_table(),
            veiligheidshuizen=vhs, registry=registry,
            check=CheckService(check, registry, vhs, vrijgave), vrijgave=vrijgave, instroom=instroom_service,
            rapport=rapport_service, aanvraag=self.aanvraag,
            besluit=BesluitService(auditor=self.auditor, catalogus=load_afdoeningen(self.settings.afdoeningen_path),
                                   veiligheidshuizen=vhs, registry=registry, mail=mail),
            aanmelden=AanmeldService(auditor=self.auditor, veiligheidshuizen=vhs, mail=mail),
            outbox=OutboxService(self.auditor),
        )
        self.mail_worker: MailWorker | None = None
        self.sender: Sender | None = None
        self.redactor: Redactor | None = None
        self.dispatcher: Dispatcher | None = None
        self.ready_checks: list[ReadyCheck] = []
        self.extra_routes: list[web.RouteDef] = []
        self._stack = AsyncExitStack()
        closer = getattr(self.services.registry, "close", None)
        if closer is not None:
            self._stack.push_async_callback(closer)
        instroom = self.settings.instroom
        if instroom is not None:
            self.extra_routes.extend(instroom_api.routes(instroom_service, instroom, self._post_signal,
                                                         self._wake_sender))
        self.extra_routes.extend(aanvraag_form.routes(self.aanvraag, self.clock))
        self.rapport_pages = rapport_web.install(rapport_service, self.settings, vhs, self.clock)
        self.extra_routes.extend(self.rapport_pages.routes())
        self.retention = self.settings.privacy.bewaren

    async def purge_now(self, now: datetime | None = None) -> dict[str, int]:
        """``now`` lets an operator test (or a test) purge as of a later day; the daily job uses the clock."""
        async with self.sessions() as s, s.begin():
            counts = await purge(s, self.auditor, self.retention, now or self.clock.now())
        if self.redactor and counts.get(REDACT_KEY):
            self.redactor.wake()
        return counts

    async def fold_now(self) -> int:
        """Fold the day's anonymous facts into day counts, so reports over long periods stay fast."""
        async with self.sessions() as s, s.begin():
            return await fold_facts(s, self.clock.now())

    async def _purge_daily(self) -> None:
        """The daily purge; first a minute after start so a restart loop does not hammer the database."""
        await asyncio.sleep(60)
        while True:
            try:
                counts = await self.purge_now()
                log.info("purge", extra={"removed": sum(n for k, n in counts.items() if k != REDACT_KEY),
                                         "to_redact": counts.get(REDACT_KEY, 0)})
            except Exception as exc:
                log.error("purge failed", extra={"error": type(exc).__name__})
            try:
                log.info("statistics folded", extra={"facts": await self.fold_now()})
            except Exception as exc:
                log.error("statistics fold failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(24 * 3600)

    async def start(self, transport: Transport, *, http: bool = True) -> None:
        await upgrade(self.engine)
        self.sender = Sender(self.sessions, transport, self.clock, self.auditor, self.metrics)
        self.redactor = Redactor(self.sessions, transport, self.clock, self.auditor, self.metrics)
        self.mail_worker = MailWorker(self.sessions, self.mail_settings, self.clock, self.auditor,
                                      notify=self._notify_room, on_committed=self.sender.wake)
        self.dispatcher = Dispatcher(self.services, self.sessions, self.metrics, on_committed=self._committed)
        if self.mail_settings.enabled:
            task = asyncio.create_task(self.mail_worker.run(), name="mail-outbox")
            self._stack.push_async_callback(_cancel, task)
        async with self.sessions() as s, s.begin():
            await self.auditor.record(s, kind="configuratie.geladen", at=self.clock.now(),
                                      details={"bron": str(self.settings.source)})
        await aanvraag.start(self.aanvraag, self.clock, self._stack, self.sender.wake)
        purge_task = asyncio.create_task(self._purge_daily(), name="purge")
        self._stack.push_async_callback(_cancel, purge_task)
        if http and self.settings.http.enabled:
            app = build_app(partial(ping, self.sessions), self.metrics.render, self.ready_checks, self.extra_routes)
            runner = await start_site(app, self.settings.http.host, self.settings.http.port)
            self._stack.push_async_callback(runner.cleanup)
            self.http_port = _bound_port(runner)

    async def _post_signal(self, tx: Tx, result: SignaalResult, source: str, key: str) -> None:
        """The instroom API's signal, composed as !instroom composes it, in the send queue in the API's transaction
        (idempotent per ``key``)."""
        assert result.zicht is not None and result.now is not None and self.settings.instroom is not None
        reply = compose_batch(result.items, today=local(result.now).date(),
                              veiligheidshuizen=self.services.veiligheidshuizen, system=result.system,
                              zicht=result.zicht, known_only=True, source=source)
        await messages.queue(tx, NewMessage(room_id=self.settings.instroom.room, content=message_content(reply),
                                            txn_id=txn_id_for(key, "signaal"), case_data=True), result.now)

    def _wake_sender(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    def _committed(self, queued: list[Queued]) -> None:
        if self.sender:
            self.sender.offer(queued)
        if self.mail_worker:
            self.mail_worker.wake()
        if self.redactor:
            self.redactor.wake()  # a sepot 01 may have marked earlier messages

    async def _notify_room(self, session: Tx, notices: list[RoomNotice]) -> None:
        """The mail worker's way to speak in the room: thread replies to the command, via the send queue.

        They are about the command's case (a mail sent or failed), so they carry case data and the person of the
        command's reply, and are redacted with it (retention, sepot 01)."""
        if not notices:
            return
        subjects = await subjects_of_replies(session, (n.in_reply_to for n in notices))
        await messages.queue_many(session, [NewMessage(
            room_id=n.room_id, content=message_content(text(n.text), in_reply_to=n.in_reply_to),
            txn_id=txn_id_for(n.in_reply_to, n.purpose), in_reply_to=n.in_reply_to, case_data=True,
            subject=subjects.get(n.in_reply_to)) for n in notices], self.clock.now())

    async def close(self) -> None:
        """Stop the tickers and loops (each within a grace period), then close the database connections."""
        await self._stack.aclose()
        await within(self.engine.dispose(), "engine.dispose")


async def _cancel(task: asyncio.Task[None]) -> None:
    await cancel_within([task])


def _bound_port(runner: web.AppRunner) -> int | None:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    return None


def default_var_dir(settings: Settings) -> Path:
    return settings.source.resolve().parent / "var"
