"""The one outbound Matrix queue: durable rows, sent in order, 429s honoured, transaction ids reused.

A reply is written to ``outgoing_message`` in the same transaction as the command's effects and its inbox
row. Its transaction id is derived from the command's event id, so a resend after a crash or a 429 is
recognised by the homeserver as the same message and never appears twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.metrics import Metrics
from bot.transport import RateLimited, SendFailed, Transport
from commands.reply import Reply
from domain.clock import Clock
from integrations.drain_loop import DrainLoop
from storage.audit import Auditor
from storage.db import SessionFactory
from storage.models import OutgoingMessage

log = logging.getLogger(__name__)

MAX_PERMANENT_FAILURES = 5
MAX_BACKOFF_S = 30.0


def txn_id_for(source_event_id: str, purpose: str = "reply") -> str:
    digest = hashlib.sha256(f"{source_event_id}\x00{purpose}".encode()).hexdigest()[:40]
    return f"zsm{digest}"


def message_content(
    reply: Reply,
    *,
    in_reply_to: str | None = None,
    thread_root: str | None = None,
    mentions: tuple[str, ...] = (),
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "msgtype": "m.notice",
        "body": reply.text,
        "format": "org.matrix.custom.html",
        "formatted_body": reply.html,
        "m.mentions": {"user_ids": list(mentions)} if mentions else {},
    }
    if in_reply_to:
        content["m.relates_to"] = {
            "rel_type": "m.thread",
            "event_id": thread_root or in_reply_to,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": in_reply_to},
        }
    return content


@dataclass(frozen=True)
class Queued:
    """A just-committed row, handed to the sender in memory so a reply does not wait for a database poll."""

    id: int
    room_id: str
    content: dict[str, Any]
    txn_id: str


async def enqueue(
    session: AsyncSession,
    *,
    room_id: str,
    content: dict[str, Any],
    txn_id: str,
    now: datetime,
    in_reply_to: str | None = None,
    case_data: bool = False,
    subject: str | None = None,
    if_absent: bool = True,
) -> Queued | None:
    """Queue inside the caller's transaction; the txn id is the idempotency key.

    With ``if_absent`` (the default) a message already queued under this txn id is left alone and None is
    returned. The dispatcher passes False: its inbox row already guarantees one reply per event, and a
    duplicate then raises IntegrityError, rolling back the duplicate delivery as a whole.
    """
    if if_absent:
        exists = (
            await session.execute(select(OutgoingMessage.id).where(OutgoingMessage.txn_id == txn_id))
        ).first()
        if exists:
            return None
    row = OutgoingMessage(
        txn_id=txn_id, room_id=room_id, content=content, status="pending", attempts=0,
        next_attempt_at=now, created_at=now, in_reply_to=in_reply_to, carries_case_data=case_data,
        subject=subject if case_data else None,
    )
    session.add(row)
    await session.flush()
    return Queued(row.id, room_id, content, txn_id)


async def enqueue_many(session: AsyncSession, items: list[tuple[str, dict[str, Any], str, str | None]],
                       now: datetime, *, case_data: bool = False, subjects: dict[str, str] | None = None) -> None:
    """``enqueue`` for a batch of (room_id, content, txn_id, in_reply_to): one lookup for existing txn ids.
    ``subjects`` maps an in_reply_to event to the person's keyed hash, for case-data messages."""
    if not items:
        return
    existing = set((await session.execute(
        select(OutgoingMessage.txn_id).where(OutgoingMessage.txn_id.in_([i[2] for i in items]))
    )).scalars())
    for room_id, content, txn_id, in_reply_to in items:
        if txn_id in existing:
            continue
        existing.add(txn_id)
        session.add(OutgoingMessage(
            txn_id=txn_id, room_id=room_id, content=content, status="pending", attempts=0, next_attempt_at=now,
            created_at=now, in_reply_to=in_reply_to, carries_case_data=case_data,
            subject=(subjects or {}).get(in_reply_to or "") if case_data else None,
        ))


class Sender(DrainLoop):
    """Drains the queue through a transport. One instance per process; ``offer``/``wake`` after every commit."""

    loop_name = "matrix"

    def __init__(
        self, sessions: SessionFactory, transport: Transport, clock: Clock, auditor: Auditor, metrics: Metrics
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.clock = clock
        self.auditor = auditor
        self.metrics = metrics
        super().__init__()
        self._fresh: deque[Queued] = deque()
        # By txn id, not row id: SQLite reuses the highest row id once the purge has removed that row, and a new
        # message under a reused id must not be taken for one already sent.
        self._recently_sent: deque[str] = deque(maxlen=10_000)

    def offer(self, queued: list[Queued]) -> None:
        """Called after the commit that wrote these rows; the database stays the source of truth."""
        self._fresh.extend(queued)
        self._wake.set()

    async def pending_count(self) -> int:
        async with self.sessions() as s:
            n = await s.scalar(
                select(func.count()).select_from(OutgoingMessage).where(OutgoingMessage.status == "pending")
            )
            return int(n or 0)

    async def drain(self) -> float:
        """Send everything that is due, oldest first. Returns seconds until the next row falls due."""
        async with self._lock:
            while self._fresh:
                q = self._fresh.popleft()
                if q.txn_id not in self._recently_sent:
                    await self._send_one(q.id, q.room_id, q.content, q.txn_id, 0)
            while True:
                now = self.clock.now()
                async with self.sessions() as s:
                    rows = (
                        await s.execute(
                            select(OutgoingMessage.id, OutgoingMessage.room_id, OutgoingMessage.content,
                                   OutgoingMessage.txn_id, OutgoingMessage.attempts, OutgoingMessage.next_attempt_at)
                            .where(OutgoingMessage.status == "pending")
                            .order_by(OutgoingMessage.id)
                            .limit(50)
                        )
                    ).all()
                    await s.rollback()
                self.metrics.send_queue_length.set(len(rows))
                if not rows:
                    return 30.0
                due = [r for r in rows if r.next_attempt_at <= now]
                if not due:
                    return float(max(0.05, min((r.next_attempt_at - now).total_seconds() for r in rows)))
                for row in due:
                    if row.txn_id in self._recently_sent:
                        continue
                    await self._send_one(row.id, row.room_id, row.content or {}, row.txn_id, row.attempts)

    async def _send_one(self, row_id: int, room_id: str, content: dict[str, Any], txn_id: str, attempts: int) -> None:
        while True:
            try:
                event_id = await self.transport.send(room_id, content, txn_id)
            except RateLimited as exc:
                self.metrics.rate_limited.inc()
                await asyncio.sleep(min(exc.retry_after_s, 60.0))
                continue
            except SendFailed as exc:
                await self._failed(row_id, attempts + 1, exc.reason, exc.permanent)
                return
            except Exception as exc:
                await self._failed(row_id, attempts + 1, type(exc).__name__, False)
                return
            await self._sent(row_id, room_id, event_id, txn_id)
            return

    async def _sent(self, row_id: int, room_id: str, event_id: str, txn_id: str) -> None:
        self._recently_sent.append(txn_id)
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            row = await s.get(OutgoingMessage, row_id)
            if row is None:
                return
            row.status = "sent"
            row.sent_at = now
            row.event_id = event_id
            row.content = None
            row.attempts += 1
            await self.auditor.record(
                s, kind="bericht.verzonden", at=now, details={"room": room_id, "event": event_id, "txn": row.txn_id},
            )
        self.metrics.messages_sent.inc()

    async def _failed(self, row_id: int, attempts: int, reason: str, permanent: bool) -> None:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            row = await s.get(OutgoingMessage, row_id)
            if row is None:
                return
            row.attempts = attempts
            row.last_error = reason[:255]
            if permanent and attempts >= MAX_PERMANENT_FAILURES:
                row.status = "dead"
                row.content = None
                await self.auditor.record(
                    s, kind="bericht.mislukt", at=now, details={"room": row.room_id, "txn": row.txn_id,
                                                                 "reason": reason[:120]},
                )
                log.error("message dead", extra={"txn": row.txn_id, "reason": reason[:120]})
            else:
                backoff = min(MAX_BACKOFF_S, 0.5 * 2 ** min(attempts, 8))
                row.next_attempt_at = now + timedelta(seconds=backoff)
                log.warning("send failed, will retry", extra={"txn": row.txn_id, "attempt": attempts,
                                                              "reason": reason[:120]})
        self.metrics.send_errors.inc()
