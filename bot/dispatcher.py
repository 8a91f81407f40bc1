"""From a received message to a queued reply, exactly once.

Order of checks, each with its own short Dutch answer: known user (role), stale after downtime, known command,
role allowed, arguments. The handler's effects, the inbox row and the reply commit in one transaction; a
second delivery of the same event finds the inbox row and does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.metrics import Metrics
from bot.ratelimit import WINDOW_S, TokenBucket
from commands.base import CommandSpec, CommandTable, Context, Services
from commands.parsing import parse_args, split_command
from domain.clock import format_local
from domain.errors import UserError
from domain.roles import labels
from domain.suggest import nearest
from services import messages
from services.base import Tx
from services.foreground import Foreground
from services.lookahead import Ahead
from services.messages import INTERACTIVE, NewMessage, Queued, message_content, txn_id_for
from services.reply import Reply, text
from storage import inbox, lookahead, wakes
from storage.audit import NeedsTransaction, one_statement_sessions
from storage.db import SessionFactory, read_only, without_transaction
from storage.leader import Leadership, database_unreachable

log = logging.getLogger(__name__)

MAX_BODY_CHARS = 4000


class CommandTimedOut(Exception):
    """The command ran out of its time budget (``command_timeout_seconds``)."""


@asynccontextmanager
async def _within(deadline: float) -> AsyncIterator[None]:
    """``asyncio.timeout_at``, its expiry told apart from a ``TimeoutError`` of the database driver (a connection
    that timed out): that one is an outage, held and handled again once the database answers, where a command
    that ran out of time is answered that it did."""
    timer = asyncio.timeout_at(deadline)
    try:
        async with timer:
            yield
    except Exception as exc:
        if timer.expired():
            raise CommandTimedOut from exc
        raise


@dataclass(frozen=True)
class IncomingCommand:
    event_id: str
    room_id: str
    sender: str
    body: str
    sent_at: datetime
    thread_root: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: str  # handled | refused | failed | stale | invalid | duplicate | ignored
    command: str | None = None
    # ``time.perf_counter()`` right after the commit of the command's transaction (0: nothing was committed): what
    # follows it (the connection's return, the reply's send on its own lane) is not the command's handling.
    committed_at: float = field(default=0.0, compare=False)


class Dispatcher:
    def __init__(
        self, services: Services, sessions: SessionFactory, metrics: Metrics, *, on_committed: Any = None,
        claim_for: Leadership | None = None, foreground: Foreground | None = None,
    ) -> None:
        self.services = services
        self.sessions = sessions
        self.metrics = metrics
        self.table: CommandTable = services.table
        self.limiter = TokenBucket(services.settings.matrix.commands_per_minute)
        self._on_committed: Any = on_committed or (lambda queued, touched: None)
        # With a sender that is handed the rows after the commit (``on_committed``): the replies and notes are
        # written already claimed by this instance, fenced in the command's transaction, so the sender need not
        # claim them in a transaction of its own before the send (bot.outbound).
        self._claim_for = claim_for
        # PostgreSQL: sessions without a transaction, for commands whose writes all go in the commit's statement.
        self._alone = one_statement_sessions(sessions)
        # Commands in flight, which a report in the background gives way to (services.foreground).
        self._foreground = foreground or Foreground()
        # Events being handled now, by event id (see ``handle``).
        self._in_flight: dict[str, asyncio.Event] = {}

    @property
    def settings(self) -> Any:
        return self.services.settings

    async def handle(self, cmd: IncomingCommand, *, received_at: datetime | None = None) -> Outcome:
        if not cmd.body.lstrip().startswith("!"):
            return Outcome("ignored")
        started = time.perf_counter()
        # ``received_at`` is when the sync first delivered the event, kept across retries after a database outage,
        # so max_command_age_seconds measures the command's age, not the outage's length.
        received = received_at or self.services.clock.now()
        # Duplicates are recognised by the inbox row's primary key, in the commit that would write it. A command
        # that asks an outside registry first (``CommandSpec.ahead``) also reads the inbox before it asks. Within
        # this process a second delivery of an event being handled (a sync that delivers it again meanwhile)
        # waits for the first: it then finds the row, and never asks the registry beside it.
        while (first := self._in_flight.get(cmd.event_id)) is not None:
            await first.wait()
        done = self._in_flight[cmd.event_id] = asyncio.Event()
        try:
            with self._foreground.busy():
                outcome = await self._handle(cmd, received)
        finally:
            del self._in_flight[cmd.event_id]
            done.set()
        # Receipt to the committed answer (what follows the commit, the reply's send, is not the command's).
        self.metrics.command_done(outcome.command or "-", outcome.status,
                                  (outcome.committed_at or time.perf_counter()) - started)
        log.info(
            "command",
            extra={"event": cmd.event_id, "command": outcome.command, "outcome": outcome.status,
                   "ms": round((time.perf_counter() - started) * 1000, 2)},
        )
        return outcome

    async def _handle(self, cmd: IncomingCommand, received: datetime) -> Outcome:
        name, rest = split_command(cmd.body)
        if not self.limiter.knows(cmd.sender):
            # First sight of this user in this process (a start, a takeover): the bucket starts from the user's
            # last minute in the inbox. A database failure here is retried like any other (outage recovery).
            async with read_only(self.sessions) as s:
                recent = await inbox.counted_since(s, cmd.sender, received - timedelta(seconds=WINDOW_S))
            self.limiter.seed(cmd.sender, recent)
        wait = self.limiter.take(cmd.sender)
        if wait > 0:
            msg = (f"U geeft te veel commando's kort na elkaar; dit commando is niet uitgevoerd. "
                   f"Probeer het over {max(1, round(wait))} seconden opnieuw.")
            return await self._answer_only(cmd, received, "limited", name or None, text(msg),
                                           audit=("opdracht.begrensd", {"commando": name}))
        role = self.settings.role_of(cmd.sender)
        if role is None:
            msg = ("U heeft geen rol in de ZSM-afstemmingsbot en kunt geen commando's geven. "
                   "Vraag de beheerder om uw account aan een rol te koppelen.")
            return await self._answer_only(cmd, received, "refused", name or None, text(msg),
                                           audit=("opdracht.geweigerd", {"reden": "geen rol", "commando": name}))
        age = (received - cmd.sent_at).total_seconds()
        if age > self.settings.matrix.max_command_age_seconds:
            minutes = self.settings.matrix.max_command_age_seconds // 60
            msg = (f"Uw commando van {format_local(cmd.sent_at)} is niet uitgevoerd: de bot was onbereikbaar en "
                   f"het is ouder dan {minutes} minuten. Stuur het opnieuw als het nog nodig is.")
            return await self._answer_only(cmd, received, "stale", name or None, text(msg), role=role)
        if len(cmd.body) > MAX_BODY_CHARS:
            msg = f"Dit bericht is te lang ({len(cmd.body)} tekens; maximaal {MAX_BODY_CHARS}). Maak het korter."
            return await self._answer_only(cmd, received, "invalid", name or None, text(msg), role=role)
        spec = self.table.get(name) if name else None
        if spec is None:
            hints = nearest(name, self.table.names()) if name else []
            hint = f" Bedoelde u {' of '.join('!' + h for h in hints)}?" if hints else ""
            msg = f"Onbekend commando '!{name}'.{hint} Typ !help voor alle commando's."
            return await self._answer_only(cmd, received, "invalid", None, text(msg), role=role)
        allowed = self.table.allowed_roles(spec, self.settings)
        if role not in allowed:
            msg = (f"U mag !{spec.name} niet gebruiken: daarvoor is de rol {labels(allowed)} nodig "
                   f"(uw rol: {labels(frozenset({role}))}).")
            return await self._answer_only(
                cmd, received, "refused", spec.name, text(msg), role=role,
                audit=("opdracht.geweigerd", {"reden": "rol", "commando": spec.name}),
            )
        args = parse_args(rest, spec.keywords)
        problem = spec.check_arity(args)
        if problem:
            msg = f"{problem} Gebruik: {spec.usage} — zie !help {spec.name}."
            return await self._answer_only(cmd, received, "invalid", spec.name, text(msg), role=role)
        if spec.reads_only(args):
            return await self._run_read_only(cmd, received, spec, role, args)
        return await self._run(cmd, received, spec, role, args)

    async def _run_read_only(self, cmd: IncomingCommand, received: datetime, spec: CommandSpec, role: str,
                             args: Any) -> Outcome:
        """A command that only reads: the handler runs in a reader transaction (``storage.db.read_only``: no
        write lock held or waited for), then the inbox row, its audit records and the reply commit in one short
        write transaction.

        Exactly once still holds: the handler has no effects, so the only things written are written together,
        after it; a second delivery is recognised by the inbox row's key in that commit, which rolls its audit
        records and reply back with it. A duplicate thus costs a recomputed answer, never a second reply, and
        the common case no lookup. A crash before the commit leaves nothing: the redelivery answers again."""
        deferred: list[dict[str, Any]] = []
        async with read_only(self.sessions) as session:
            ctx = Context(
                sender=cmd.sender, role=role, room_id=cmd.room_id, event_id=cmd.event_id,
                now=self.services.clock.now(), session=session, services=self.services, deferred_audit=deferred,
            )
            failure: Exception | None = None
            deadline = asyncio.get_running_loop().time() + self.settings.matrix.command_timeout_seconds
            try:
                async with _within(deadline):  # no task of its own
                    reply = await spec.handler(ctx, args)
            except Exception as exc:  # answered below, after the reader transaction has ended
                failure = exc
        if failure is not None:
            return await self._failed(cmd, received, spec, role, failure)
        if self._alone is not None and deferred:
            # Only records, the inbox row and the reply are written: in one statement where it can be all of them.
            try:
                return await self._answer_in(self._alone, cmd, received, spec, reply, ctx, deferred)
            except NeedsTransaction:
                self.metrics.rerun_in_transaction.labels(spec.name).inc()
        return await self._answer_in(self.sessions, cmd, received, spec, reply, ctx, deferred)

    async def _answer_in(self, sessions: SessionFactory, cmd: IncomingCommand, received: datetime, spec: CommandSpec,
                         reply: Reply, ctx: Context, deferred: list[dict[str, Any]]) -> Outcome:
        """The write half of a read-only command: its audit records, its inbox row and its reply."""
        async with sessions() as session:
            for record in deferred:
                await self.services.auditor.record(session, **record)
            inbox.claim(session, event_id=cmd.event_id, room_id=cmd.room_id, sender=cmd.sender, command=spec.name,
                        received_at=received, handled_at=self.services.clock.now())
            return await self._commit(session, cmd, spec.name, reply, ctx)

    async def _run(self, cmd: IncomingCommand, received: datetime, spec: CommandSpec, role: str,
                   args: Any) -> Outcome:
        ahead: Ahead = {}
        # One time budget for the whole command: what a slow registry took before the transaction is not given
        # again to the handler, so the asker hears within the timeout either way.
        deadline = asyncio.get_running_loop().time() + self.settings.matrix.command_timeout_seconds
        if spec.ahead is not None and not self.services.registry.in_command_transaction:
            # An outside registry is asked before the transaction: a slow answer then holds no writer's turn. Not
            # for a delivery already handled, so no lookup goes unaudited (the command audits what it uses).
            async with read_only(self.sessions) as s:
                if await inbox.handled_among(s, [cmd.event_id]):
                    return Outcome("duplicate", spec.name)
            try:
                async with _within(deadline):
                    ahead = await spec.ahead(self.services, role, args)
            except UserError:
                pass  # refused as typed: nobody is asked, and the command refuses it in Dutch below, as ever
            except CommandTimedOut as exc:
                return await self._failed(cmd, received, spec, role, exc)
        if self._alone is not None and spec.one_statement:
            # Nothing is written until the one statement, and nothing at all when it cannot be all of the work.
            try:
                return await self._run_in(self._alone, cmd, received, spec, role, args, ahead, deadline)
            except NeedsTransaction:
                self.metrics.rerun_in_transaction.labels(spec.name).inc()
        return await self._run_in(self.sessions, cmd, received, spec, role, args, ahead, deadline)

    async def _run_in(self, sessions: SessionFactory, cmd: IncomingCommand, received: datetime, spec: CommandSpec,
                      role: str, args: Any, ahead: Ahead, deadline: float) -> Outcome:
        async with sessions() as session:
            lookahead.remember(session, ahead)
            ctx = Context(
                sender=cmd.sender, role=role, room_id=cmd.room_id, event_id=cmd.event_id,
                now=self.services.clock.now(), session=session, services=self.services,
            )
            inbox.claim(session, event_id=cmd.event_id, room_id=cmd.room_id, sender=cmd.sender, command=spec.name,
                        received_at=received, handled_at=ctx.now)
            try:
                async with _within(deadline):  # no task of its own
                    reply = await spec.handler(ctx, args)
            except NeedsTransaction:
                raise  # the handler wrote before the commit: nothing ran, and it runs again in a transaction
            except Exception as exc:
                await session.rollback()
                return await self._failed(cmd, received, spec, role, exc)
            return await self._commit(session, cmd, spec.name, reply, ctx)

    async def _commit(self, session: Tx, cmd: IncomingCommand, command: str | None, reply: Reply,
                      ctx: Context | None, status: str = "handled") -> Outcome:
        """The reply queued and the command's transaction committed, inbox row included (every path that answers
        ends here). A second delivery collides here (the inbox row's key, or the reply's txn id) and rolls back
        whole."""
        try:
            async with inbox.exactly_once():
                queued = await self._queue_replies(session, cmd, reply, ctx)
                touched = wakes.written(session)
                await session.commit()
                committed_at = time.perf_counter()
        except inbox.AlreadyRecorded:
            await session.rollback()
            return Outcome("duplicate", command)
        # before the close: the send starts while the connection returns
        self._on_committed([q if isinstance(q, Queued) else q() for q in queued], touched)
        return Outcome(status, command, committed_at)

    async def _failed(self, cmd: IncomingCommand, received: datetime, spec: CommandSpec, role: str,
                      exc: Exception) -> Outcome:
        """The answer to a handler that did not return a reply (its transaction already rolled back)."""
        if database_unreachable(exc):
            raise exc  # nothing was committed: the sync loop holds the event and retries it (no crash reply)
        if isinstance(exc, UserError):
            return await self._answer_only(cmd, received, "invalid", spec.name, text(exc.message), role=role,
                                           audit=exc.audit)
        if isinstance(exc, CommandTimedOut):
            self.metrics.errors.inc()
            msg = f"!{spec.name} duurde te lang en is afgebroken; er is niets vastgelegd. Probeer het opnieuw."
            return await self._answer_only(cmd, received, "failed", spec.name, text(msg), role=role)
        return await self._crashed(cmd, received, spec, role, exc)

    async def _crashed(self, cmd: IncomingCommand, received: datetime, spec: CommandSpec, role: str,
                       exc: Exception) -> Outcome:
        self.metrics.errors.inc()
        ref = uuid.uuid4().hex[:8]
        # Exception messages can carry personal data (SQL parameters, registry answers): log type and frames only.
        frames = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in traceback.extract_tb(exc.__traceback__)]
        log.error("command crashed", extra={"ref": ref, "command": spec.name, "error": type(exc).__name__,
                                            "frames": frames[-6:]})
        msg = (f"Er ging iets mis bij !{spec.name}; er is niets vastgelegd (foutreferentie {ref}). "
               "Probeer het opnieuw of meld de referentie bij de beheerder.")
        return await self._answer_only(cmd, received, "failed", spec.name, text(msg), role=role)

    async def _answer_only(
        self, cmd: IncomingCommand, received: datetime, status: str, command: str | None, reply: Reply,
        *, role: str | None = None, audit: tuple[str, dict[str, Any]] | None = None,
    ) -> Outcome:
        async with self.sessions() as session:
            if audit:
                kind, details = audit
                await self.services.auditor.record(
                    session, kind=kind, at=self.services.clock.now(), actor=cmd.sender, role=role,
                    details={"event": cmd.event_id, **details},
                )
            inbox.claim(session, event_id=cmd.event_id, room_id=cmd.room_id, sender=cmd.sender, command=command,
                        received_at=received, handled_at=self.services.clock.now(), outcome=status)
            return await self._commit(session, cmd, command, reply, None, status)

    async def _queue_replies(self, session: Tx, cmd: IncomingCommand, reply: Reply,
                             ctx: Context | None) -> list[Queued | Callable[[], Queued]]:
        """The reply (one statement, or a part of the commit's on a session without a transaction) and the notes of
        a command, in the interactive lane of the send queue."""
        now = self.services.clock.now()
        subject = ctx.subjects[0] if ctx and ctx.subjects else None
        msg = NewMessage(
            room_id=cmd.room_id, txn_id=txn_id_for(cmd.event_id), in_reply_to=cmd.event_id,
            content=message_content(reply, in_reply_to=cmd.event_id, thread_root=cmd.thread_root),
            case_data=reply.case_data, subject=subject if reply.case_data else None, priority=INTERACTIVE,
            also_about=tuple(ctx.subjects[1:]) if ctx and reply.case_data else (),
        )
        if without_transaction(session):
            if ctx and ctx.notes:  # a note's txn id is looked up and its row written before the reply's
                raise NeedsTransaction("notes")
            return [messages.queue_at_commit(session, msg, now, claim_for=self._claim_for)]
        queued: list[Queued | Callable[[], Queued] | None] = []
        queued.append(await messages.queue(session, msg, now, if_absent=False, claim_for=self._claim_for))
        for i, note in enumerate(ctx.notes if ctx else []):
            queued.append(await messages.queue(session, NewMessage(
                room_id=note.room_id, txn_id=txn_id_for(cmd.event_id, f"note{i}{note.key}"),
                content=message_content(note.reply, mentions=note.mentions), case_data=note.reply.case_data,
                subject=subject if note.reply.case_data else None, priority=INTERACTIVE,
                also_about=tuple(ctx.subjects[1:]) if ctx and note.reply.case_data else (),
            ), now, claim_for=self._claim_for))
        return [q for q in queued if q is not None]
