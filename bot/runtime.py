"""Wiring: settings to engine, services, dispatcher, send queue, health server and a transport.

Both backends (Matrix and console) go through ``Runtime``, so what the console proves about a command
holds for the room as well.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from aiohttp import web

from bot import aanvraag, werklijst
from bot.audit_witness import AuditWitness
from bot.coldstart import Waiting, until_reachable
from bot.dispatcher import Dispatcher
from bot.metrics import Metrics
from bot.outbound import Sender
from bot.redaction import Redactor
from bot.shutdown import cancel_within, within
from bot.transport import Transport
from bot.transport.console import CONSOLE_ROOM
from commands import default_table
from commands.base import Services
from commands.vh_view import compose_batch, signal_notice
from config.reference import load_afdoeningen, load_veiligheidshuizen
from config.settings import Settings, database_kind
from domain.clock import Clock, SystemClock, local
from domain.errors import ConfigError
from domain.veiligheidshuizen import Veiligheidshuizen
from integrations.registry.config import build_registry
from services import messages
from services.aanmelden import AanmeldService
from services.base import Tx
from services.besluit import BesluitService
from services.check import CheckService
from services.foreground import Foreground
from services.informeren import InformerenService
from services.instroom import InstroomService, SignaalResult
from services.mail_outbox import MailService, MailWorker, OutboxService, RoomNotice
from services.messages import NewMessage, Queued, message_content, txn_id_for
from services.publiek import PubliekService
from services.rapport import RapportService
from services.reply import text
from services.vrijgave import VrijgaveService
from services.werklijst import WerklijstService
from storage import wakes
from storage.audit import Auditor
from storage.besluit_queries import release_mail_claims
from storage.db import SessionFactory, WalCheckpointer, create_engine, is_sqlite, ping, session_factory, sqlite_file
from storage.inbox import senders_of
from storage.leader import SOLO, Leadership
from storage.migrate import upgrade
from storage.outgoing import release_claims, subjects_of_replies
from storage.purge import REDACT_KEY, purge
from storage.statistiek_fold import fold_facts
from web import aanvraag_form, instroom_api
from web import rapport as rapport_web
from web.ops import ReadyCheck, build_app, build_metrics_app, start_site

log = logging.getLogger(__name__)


def audit_key_path(settings: Settings) -> Path:
    """Where the generated key lives when ``audit.key`` is not set: ``var/`` beside the configuration file."""
    return default_var_dir(settings) / "audit.key"


def audit_key(settings: Settings) -> bytes:
    """The configured key; for the embedded default a generated key file beside the configuration."""
    if settings.audit.key:
        return settings.audit.key.encode()
    path = audit_key_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        log.warning("auditsleutel aangemaakt in een bestand; zet ZSM_BOT_AUDIT_KEY in productie",
                    extra={"path": str(path)})
    return path.read_text().strip().encode()


def settle_heap() -> None:
    """Once a bot process is up: what start-up built (modules, settings, compiled statements, the Matrix client's
    state) leaves the collector's view (``gc.freeze``). A full collection otherwise walks all of it again and
    again, tens of milliseconds that land on whatever command is being handled then. For a process that runs one
    bot (``zsm-bot run``, the benchmarks), not for a test process that starts hundreds: what is frozen is never
    collected."""
    gc.collect()
    gc.freeze()


@dataclass
class Runtime:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    metrics: Metrics = field(default_factory=Metrics)
    # Who may act on the database; a standby (PostgreSQL) syncs and waits, its queues and tickers stay idle.
    leader: Leadership = SOLO

    def __post_init__(self) -> None:
        check = self.settings.check
        self.engine = create_engine(self.settings.database_url, checkpoints_apart=True)
        self.metrics.set_database(database_kind(self.settings.database_url))
        self.metrics.known_commands(default_table().names())
        self.sessions: SessionFactory = session_factory(self.engine)
        # The commands in flight, counted by the dispatcher and read by the report worker (services.foreground).
        self.foreground = Foreground()
        self.auditor = Auditor(audit_key(self.settings))
        self.witness = AuditWitness(self.sessions, self.clock, self.settings.audit, self._wake_sender)
        vhs = load_veiligheidshuizen(self.settings.veiligheidshuizen_path)
        registry = build_registry(self.settings.registry, self.sessions)
        velden, regio = self.settings.velden, self.settings.regio
        # a bad release term stops the start, not the first !vrijgeven
        regios = sorted({vh.regio for vh in vhs.all()})
        if regio is not None and regio not in regios:
            raise ConfigError(f"zsm.regio: onbekende regio {regio!r}; kies uit {', '.join(regios)}")
        # a bad release term stops the start, not the first !vrijgeven
        self.publiek = PubliekService(self.settings.users, velden, self.settings.matrix.user_id,
                                      frozenset({CONSOLE_ROOM}))
        vrijgave = VrijgaveService(check, registry, vhs, self.auditor, velden, regio,
                                   self.settings.privacy.vrijgave_dagen, self.publiek)
        rooms = self.settings.matrix.rooms
        self.werklijst = WerklijstService(self.settings.werklijst, self.auditor, vhs, self.sessions,
                                          self.settings.werklijst.ruimte or (rooms[0] if rooms else None))
        instroom_service = InstroomService(
            check, registry, vhs, self.auditor, self.sessions, self.clock, velden, regio, self.publiek,
            self.settings.instroom.room if self.settings.instroom is not None else None, werklijst=self.werklijst)
        # Each report in a worker process: its Python never competes with the event loop for the interpreter, and
        # it gives way to the commands in flight (services.foreground).
        rapport_service = RapportService(self.sessions, self.auditor, vhs, self.clock, in_worker=True,
                                         foreground=self.foreground)
        self.rapport = rapport_service
        self.mail_settings = self.settings.mail
        mail = MailService(self.mail_settings)
        catalogus = load_afdoeningen(self.settings.afdoeningen_path)
        self.aanvraag = aanvraag.build_service(self.settings, auditor=self.auditor, veiligheidshuizen=vhs,
                                               sessions=self.sessions, registry=registry, mail=mail,
                                               publiek=self.publiek, catalogus=catalogus)
        self._wire_digest(vhs)
        self.services = Services(
            settings=self.settings, auditor=self.auditor, clock=self.clock, table=default_table(),
            veiligheidshuizen=vhs, registry=registry,
            check=CheckService(check, registry, vhs, vrijgave, self.publiek, werklijst=self.werklijst),
            vrijgave=vrijgave, instroom=instroom_service, werklijst=self.werklijst,
            rapport=rapport_service, aanvraag=self.aanvraag,
            besluit=BesluitService(auditor=self.auditor, catalogus=catalogus,
                                   veiligheidshuizen=vhs, registry=registry, mail=mail, publiek=self.publiek),
            aanmelden=AanmeldService(auditor=self.auditor, veiligheidshuizen=vhs, mail=mail),
            informeren=InformerenService(auditor=self.auditor, publiek=self.publiek),
            outbox=OutboxService(self.auditor),
        )
        self.mail_worker: MailWorker | None = None
        self.sender: Sender | None = None
        self.redactor: Redactor | None = None
        self.dispatcher: Dispatcher | None = None
        # What the start is waiting for (the database, the homeserver): /readyz says it while it lasts.
        self.waiting = Waiting()
        # Set once the database is reachable and upgraded: until then the web feature routes answer 503.
        self.database_ready = False
        self.ready_checks: list[ReadyCheck] = [self.waiting.ready_check]
        self.extra_routes: list[web.RouteDef] = []
        self._stack = AsyncExitStack()
        self._stack.push_async_callback(self.services.registry.close)
        instroom = self.settings.instroom
        if instroom is not None:
            self.extra_routes.extend(instroom_api.routes(instroom_service, instroom, self._post_signal,
                                                         self._wake_sender))
        self.extra_routes.extend(aanvraag_form.routes(self.aanvraag, self.clock))
        self.rapport_pages = rapport_web.install(rapport_service, self.settings, vhs, self.clock)
        self.extra_routes.extend(self.rapport_pages.routes())
        self.retention = self.settings.privacy.bewaren
        self.became_active = asyncio.Event()
        self._takeovers: set[asyncio.Task[None]] = set()
        self.leader.add_listener(self._leadership_changed)
        self.metrics.active_instance.set(1 if self.leader.active else 0)
        self.ready_checks.append(self._standby_check)

    def _leadership_changed(self, active: bool) -> None:
        """Called by the election: the gauge, and the queues woken so a new active instance drains at once."""
        self.metrics.active_instance.set(1 if active else 0)
        if active:
            self.became_active.set()
            for loop in (self.sender, self.mail_worker, self.redactor):
                if loop is not None:
                    loop.wake()
            task = asyncio.create_task(self._take_over_claims(self.leader.takeover_grace_s), name="take-over")
            self._takeovers.add(task)
            task.add_done_callback(self._takeovers.discard)

    async def _take_over_claims(self, grace_s: float) -> None:
        """Rows a predecessor claimed but never finished (killed mid-send) go again: under the same txn id or
        Message-ID, so a copy that had reached the homeserver or relay is recognisable as the same message."""
        await asyncio.sleep(grace_s)
        try:
            async with self.sessions() as s, s.begin():
                await self.leader.fence(s)
                released = await release_claims(s) + await release_mail_claims(s)
        except Exception as exc:
            log.warning("claims not taken over", extra={"error": type(exc).__name__})
            return
        if released:
            log.info("claims taken over", extra={"rows": released})
            for loop in (self.sender, self.mail_worker):
                if loop is not None:
                    loop.wake()

    def _is_active(self) -> bool:
        return self.leader.active

    async def _standby_check(self) -> str | None:
        if self.leader.active:
            return None
        return "standby: een ander exemplaar is actief; dit exemplaar synchroniseert en neemt het over als dat stopt"

    async def purge_now(self, now: datetime | None = None) -> dict[str, int]:
        """``now`` lets an operator test (or a test) purge as of a later day; the daily job uses the clock."""
        async with self.sessions() as s, s.begin():
            await self.leader.fence(s)
            counts = await purge(s, self.auditor, self.retention, now or self.clock.now())
        await self.witness.try_publish("purge")
        if self.redactor and counts.get(REDACT_KEY):
            self.redactor.wake()
        return counts

    async def fold_now(self) -> int:
        """Fold the day's anonymous facts into day counts, so reports over long periods stay fast."""
        async with self.sessions() as s, s.begin():
            await self.leader.fence(s)
            return await fold_facts(s, self.clock.now())

    async def _purge_daily(self) -> None:
        """The daily purge; first a minute after start so a restart loop does not hammer the database."""
        await asyncio.sleep(60)
        while True:
            await self.became_active.wait()  # a standby leaves the day's purge to the active instance
            if not self.leader.active:
                await asyncio.sleep(60)
                continue
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

    async def start(self, transport: Transport, *, http: bool = True, wait: bool = False) -> None:
        """``wait``: the long-running bot waits for an unreachable database (cold start); a one-off command
        fails at once with its one line instead."""
        if http and self.settings.http.enabled:
            # Up before the database, so /readyz can say that the bot waits for it (cold start).
            await self._start_http()
        if wait:
            await until_reachable("database", partial(upgrade, self.engine), self.waiting)
        else:
            await upgrade(self.engine)
        prepare = self.services.registry.prepare  # a shared registry database: migrate it too
        if wait:
            await until_reachable("registerdatabase", prepare, self.waiting)
        else:
            await prepare()
        self.database_ready = True
        self.sender = Sender(self.sessions, transport, self.clock, self.auditor, self.metrics, self.leader)
        self.redactor = Redactor(self.sessions, transport, self.clock, self.auditor, self.metrics, self.leader,
                                 replies_first=self.sender.replies_sent)
        self.mail_worker = MailWorker(self.sessions, self.mail_settings, self.clock, self.auditor,
                                      notify=self._notify_room, on_committed=self.sender.wake, leader=self.leader)
        self.dispatcher = Dispatcher(self.services, self.sessions, self.metrics, on_committed=self._committed,
                                     claim_for=self.leader, foreground=self.foreground)
        if self.mail_settings.enabled:
            task = asyncio.create_task(self.mail_worker.run(), name="mail-outbox")
            self._stack.push_async_callback(_cancel, task)
        async with self.sessions() as s, s.begin():
            await self.auditor.record(s, kind="configuratie.geladen", at=self.clock.now(),
                                      details={"bron": str(self.settings.source)})
        if self.leader.active and not self.became_active.is_set():
            self._leadership_changed(True)  # a single process (Solo): nobody announced it
            # No predecessor can still be sending (no grace): what a killed run left claimed is given back before
            # the first command, not beside it, where it would also take the claims of this run's own replies.
            if not self.leader.takeover_grace_s:
                await asyncio.gather(*list(self._takeovers))
        if self.leader.active:
            await self._start_active_work()
        else:
            # The deadline steps are claimed row by row (storage.aanvraag_queries); a standby starts the ticker,
            # the werklijst reminder and the audit witness once it first wins the lock.
            ticker = asyncio.create_task(self._start_ticker_when_active(), name="aanvraag-start")
            self._stack.push_async_callback(_cancel, ticker)
        purge_task = asyncio.create_task(self._purge_daily(), name="purge")
        self._stack.push_async_callback(_cancel, purge_task)
        self._checkpoint_apart()

    def _checkpoint_apart(self) -> None:
        """SQLite: the write-ahead log is copied into the file on a thread of its own (``WalCheckpointer``); an
        in-memory database has none. At close the engine's last connection makes the final checkpoint, as SQLite
        always does."""
        path = sqlite_file(self.settings.database_url) if is_sqlite(self.settings.database_url) else None
        if path is None:
            return
        task = asyncio.create_task(WalCheckpointer(path).run(), name="wal-checkpoint")
        self._stack.push_async_callback(_cancel, task)

    async def _start_http(self) -> None:
        http = self.settings.http
        scrape = partial(self.metrics.scrape, self.sessions, self.clock)
        separate = http.metrics_port is not None
        app = build_app(partial(ping, self.sessions), None if separate else scrape, self.ready_checks,
                        self.extra_routes, database_ready=lambda: self.database_ready)
        runner = await start_site(app, http.host, http.port)
        self._stack.push_async_callback(runner.cleanup)
        self.http_port = _bound_port(runner)
        self.metrics_port = self.http_port
        if http.metrics_port is not None:
            metrics_runner = await start_site(build_metrics_app(scrape), http.metrics_host, http.metrics_port)
            self._stack.push_async_callback(metrics_runner.cleanup)
            self.metrics_port = _bound_port(metrics_runner)

    async def _start_ticker_when_active(self) -> None:
        await self.became_active.wait()
        await self._start_active_work()

    async def _start_active_work(self) -> None:
        """What only the active instance does, so a standby beside it neither steps, reminds nor publishes twice."""
        assert self.sender is not None
        await aanvraag.start(self.aanvraag, self.clock, self._stack, self.sender.wake, self._is_active)
        witness_task = asyncio.create_task(self.witness.run(), name="audit-witness")
        self._stack.push_async_callback(_cancel, witness_task)
        self.werklijst.on_enqueued = self.sender.wake
        await werklijst.start(self.werklijst, self.clock, self._stack, self.aanvraag.config.tick_seconds)

    async def _post_signal(self, tx: Tx, result: SignaalResult, source: str, key: str) -> None:
        """The instroom API's signal, composed as !instroom composes it, in the send queue in the API's transaction
        (idempotent per ``key``)."""
        assert result.zicht is not None and result.now is not None and self.settings.instroom is not None
        reply = signal_notice(len(result.items), source) if result.verborgen else compose_batch(
            result.items, today=local(result.now).date(), veiligheidshuizen=self.services.veiligheidshuizen,
            system=result.system, zicht=result.zicht, known_only=True, source=source)
        about = tuple(self.auditor.subject_of(i.person.value) for i in result.known)
        await messages.queue(tx, NewMessage(room_id=self.settings.instroom.room, content=message_content(reply),
                                            txn_id=txn_id_for(key, "signaal"), case_data=True,
                                            subject=about[0] if about else None, also_about=about[1:]), result.now)

    async def members_changed(self, room_id: str, joined: frozenset[str]) -> None:
        """The transport's membership feed: the room's audience stored, a newcomer announced when needed."""
        async with self.sessions() as s, s.begin():
            told = await self.publiek.members_changed(s, room_id, joined, self.clock.now())
        if told:
            self._wake_sender()

    def _wake_sender(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    def _committed(self, queued: list[Queued], touched: frozenset[wakes.Queue]) -> None:
        """After a command's commit: its replies to the sender's lane, and a wake for each other queue it wrote
        to (only those: a wake is a poll on the path of the next command)."""
        if self.sender:
            self.sender.offer(queued)
            if wakes.Queue.MATRIX in touched:
                self.sender.wake()
        if self.mail_worker and wakes.Queue.MAIL in touched:
            self.mail_worker.wake()
        if self.redactor and wakes.Queue.REDACTION in touched:
            self.redactor.wake()  # a sepot 01 marked earlier messages

    def _wire_digest(self, vhs: Veiligheidshuizen) -> None:
        """The shift-start digest ([werklijst] dienststart) uses the office hours and on-call rooms of [aanvraag];
        the list and its reminder follow the room's audience."""
        rooms: dict[str, str] = {}
        for key in self.settings.werklijst.dienststart:
            if vhs.get(key) is None:
                raise ConfigError(f"werklijst.dienststart: onbekend veiligheidshuis {key!r}")
            room = self.aanvraag.config.vh(key).room_id
            if room is None:
                raise ConfigError(f"werklijst.dienststart: {key} heeft geen dienstruimte; zet [aanvraag] "
                                  f"vh.{key}.room")
            rooms[key] = room
        self.werklijst.calendar = self.aanvraag.config.calendar
        self.werklijst.digest_rooms = rooms
        self.werklijst.publiek = self.publiek

    async def _notify_room(self, session: Tx, notices: list[RoomNotice]) -> None:
        """The mail worker's way to speak in the room: thread replies to the command, via the send queue.

        They are about the command's case (a mail sent or failed), so they carry case data and the person of the
        command's reply, and are redacted with it (retention, sepot 01)."""
        if not notices:
            return
        subjects = await subjects_of_replies(session, (n.in_reply_to for n in notices))
        senders = await senders_of(session, (n.in_reply_to for n in notices))
        now = self.clock.now()
        routed: list[NewMessage] = []
        for n in notices:  # they name the house: shown as far as every reader may see that (services.publiek)
            asker = senders.get(n.in_reply_to)
            routed += await self.publiek.route(session, NewMessage(
                room_id=n.room_id, content=message_content(text(n.text), in_reply_to=n.in_reply_to),
                txn_id=txn_id_for(n.in_reply_to, n.purpose), in_reply_to=n.in_reply_to, case_data=True,
                subject=subjects.get(n.in_reply_to)), text(n.text), asker=asker, notice=n.notice(asker),
                needed=("veiligheidshuis",), minor=None, now=now)
        await messages.queue_many(session, routed, now)

    async def close(self) -> None:
        """Stop the tickers and loops (each within a grace period), the report worker (also in the middle of a
        report), then close the database connections."""
        await cancel_within(list(self._takeovers))
        await self._stack.aclose()
        await within(self.rapport.close(), "rapport worker")
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
