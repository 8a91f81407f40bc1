"""Marking the bot's own room messages for redaction. Only marks rows: the redaction itself is done by the bot's
redaction loop through the transport, so callers (the purge, ``!besluit ... 01``) stay free of Matrix.

A row is marked at most once (``redaction IS NULL``), so a second purge or a repeated sepot 01 queues nothing new.
A marked row has no ``redaction_next_at``: it is due at once by whatever clock the redaction loop runs on.
The loop's own bookkeeping (what is due, done, failed) is here too, at the end, so the loop holds no SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import wakes
from storage.models import OutgoingMessage, OutgoingSubject

RETENTION = "bewaartermijn"
SEPOT_01 = "technisch sepot 01"
FINISHED = ("done", "failed")


async def mark_expired(session: AsyncSession, *, before: datetime) -> int:
    """Sent case-data messages created before ``before``: their retention has ended."""
    result = await session.execute(
        update(OutgoingMessage)
        .where(OutgoingMessage.carries_case_data.is_(True), OutgoingMessage.status == "sent",
               OutgoingMessage.event_id.is_not(None), OutgoingMessage.redaction.is_(None),
               OutgoingMessage.created_at < before)
        .values(redaction="pending", redaction_reason=RETENTION, redaction_next_at=None)
        .execution_options(synchronize_session=False)
    )
    wakes.wrote(session, wakes.Queue.REDACTION)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def mark_case(session: AsyncSession, *, room_id: str, subject: str, event_ids: Sequence[str],
                    also: Sequence[str] = ()) -> int:
    """The bot's messages about one person (written with that subject, or naming it among others, or with one of
    ``also``: the person's hash under another identifier, such as the SKN), in whatever room (an advice request
    pings the veiligheidshuis's on-call room, details go to a direct room), and those in this room in reply to
    the given commands (the decision and the notices that followed it). Sent ones are queued for redaction at
    once; ones not yet sent are withdrawn, so nothing about the case still reaches a room, and one whose send was
    already on its way is redacted as soon as that send is recorded."""
    subjects = list(dict.fromkeys([subject, *also]))
    about: list[ColumnElement[bool]] = [
             OutgoingMessage.subject.in_(subjects),
             OutgoingMessage.txn_id.in_(select(OutgoingSubject.txn_id).where(OutgoingSubject.subject.in_(subjects)))]
    if event_ids:
        about.append(and_(OutgoingMessage.room_id == room_id, OutgoingMessage.in_reply_to.in_(list(event_ids))))
    scope = or_(*about)
    sent = await session.execute(
        update(OutgoingMessage)
        .where(scope, OutgoingMessage.status == "sent", OutgoingMessage.event_id.is_not(None),
               OutgoingMessage.redaction.is_(None))
        .values(redaction="pending", redaction_reason=SEPOT_01, redaction_next_at=None)
        .execution_options(synchronize_session=False)
    )
    # Not yet sent: withdrawn. Its reason stays on the row: a send already on its way (the homeserver took it, the
    # bot has not heard back) is recorded later, and the record then queues its redaction (``outgoing.mark_sent``).
    await session.execute(
        update(OutgoingMessage)
        .where(scope, OutgoingMessage.status == "pending")
        .values(status="dead", content=None, subject=None, last_error="ingetrokken: technisch sepot 01",
                redaction_reason=SEPOT_01, redaction_next_at=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(delete(OutgoingSubject).where(OutgoingSubject.subject.in_(subjects)))
    wakes.wrote(session, wakes.Queue.REDACTION)
    return int(sent.rowcount or 0)  # type: ignore[attr-defined]


def purgeable() -> ColumnElement[bool]:
    """The bookkeeping rows the purge may remove: anything but a message whose redaction is still to do (removing
    that row would lose the only record that the room message must go): a sent case-data message until its
    retention has been handled, and any message a sepot 01 marked (an advice-request reminder carries no case
    data but is about the person)."""
    return or_(and_(OutgoingMessage.carries_case_data.is_(False), OutgoingMessage.redaction.is_(None)),
               OutgoingMessage.event_id.is_(None), OutgoingMessage.redaction.in_(FINISHED))


# ----------------------------------------------------------------------------------------- redaction loop

async def pending_count(session: AsyncSession) -> int:
    """How many messages wait for their redaction."""
    n = await session.scalar(select(func.count()).select_from(OutgoingMessage)
                             .where(OutgoingMessage.redaction == "pending"))
    return int(n or 0)


@dataclass(frozen=True)
class PendingRedaction:
    """One room message waiting for its redaction, and its retry state."""

    id: int
    room_id: str
    event_id: str  # only sent messages (with their event id) are ever marked
    redaction_reason: str | None
    redaction_attempts: int
    redaction_next_at: datetime | None


async def pending_batch(session: AsyncSession, limit: int) -> list[PendingRedaction]:
    """The oldest rows waiting for redaction."""
    return [PendingRedaction(r.id, r.room_id, r.event_id or "", r.redaction_reason, r.redaction_attempts,
                             r.redaction_next_at) for r in (await session.execute(
        select(OutgoingMessage.id, OutgoingMessage.room_id, OutgoingMessage.event_id,
               OutgoingMessage.redaction_reason, OutgoingMessage.redaction_attempts,
               OutgoingMessage.redaction_next_at)
        .where(OutgoingMessage.redaction == "pending")
        .order_by(OutgoingMessage.id).limit(limit)
    )).all()]


async def mark_done(session: AsyncSession, ids: Sequence[int], now: datetime) -> None:
    """These rows' room messages are redacted: nothing that ties a row to a person stays (subject and content
    go)."""
    await session.execute(update(OutgoingMessage).where(OutgoingMessage.id.in_(ids)).values(
        redaction="done", redacted_at=now, redaction_next_at=None, subject=None, content=None,
        last_error=None, redaction_attempts=OutgoingMessage.redaction_attempts + 1,
    ).execution_options(synchronize_session=False))


async def mark_failed(session: AsyncSession, row_id: int, *, attempts: int, error: str, give_up: bool,
                      next_at: datetime) -> bool:
    """One failed attempt: retry at ``next_at``, or (``give_up``) fail the row for good and drop its subject and
    content. False when the row is gone."""
    row = await session.get(OutgoingMessage, row_id)
    if row is None:
        return False
    row.redaction_attempts = attempts
    row.last_error = error
    if give_up:
        row.redaction = "failed"
        row.redaction_next_at = None
        row.subject = None
        row.content = None
    else:
        row.redaction_next_at = next_at
    return True


async def claim(session: AsyncSession, row_id: int, now: datetime, lease: timedelta) -> bool:
    """Take a due redaction: its next attempt moves ``lease`` ahead so no other instance takes it meanwhile (the
    caller fences in the same transaction)."""
    result = await session.execute(
        update(OutgoingMessage)
        .where(OutgoingMessage.id == row_id, OutgoingMessage.redaction == "pending",
               or_(OutgoingMessage.redaction_next_at.is_(None), OutgoingMessage.redaction_next_at <= now))
        .values(redaction_next_at=now + lease).execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)
