"""Named queries on ``outgoing_message``, the one outbound Matrix queue: write rows, find rows, and the send
loop's bookkeeping. ``services.messages`` holds the rule for writing (idempotent by transaction id); the send
loop (``bot.outbound.Sender``) calls the bookkeeping functions here, so neither holds SQL of its own.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage import commit_tail, wakes
from storage.leader import Leadership
from storage.models import OutgoingMessage, OutgoingSubject
from storage.types import UTCDateTime

# The send queue's lanes. A command's reply (and the notes it sends elsewhere) is what a person is waiting for;
# escalations, reminders, mail notices and signals are bulk and may wait behind it. Within a lane rows go out in
# id order, so messages of one thread keep their order: a reply lives in its command's thread, bulk messages in
# their own (a request's ping and steps, a mail's notices), and both lanes of one thread are written in causal
# order (the reply commits before the mail notice that reports on it is even possible).
INTERACTIVE = 0
BULK = 1

# How long a claimed row stays with its sender. A sender that dies mid-send leaves the row claimed; it falls due
# again after this, longer than one send may take (nio's request timeout plus 429 waits), and is then sent once
# more under the same txn id (a repeat only if the first attempt had reached the homeserver).
CLAIM_LEASE = timedelta(seconds=90)


@dataclass(frozen=True)
class Queued:
    """A just-written row, handed to the sender in memory (after the commit) so a reply does not wait for a
    database poll."""

    id: int
    room_id: str
    content: dict[str, Any]
    txn_id: str
    # Set when the row was written already claimed by this instance (``insert_one(claim_for=...)``), fenced then:
    # the sender may send it on that claim without a claim transaction of its own (bot.outbound).
    claimed_until: datetime | None = None


@dataclass(frozen=True)
class NewMessage:
    """One room message to queue. ``subject`` is the keyed hash of the person it is about (sepot 01 finds the
    bot's messages about a person by it); ``case_data`` puts it under the retention of case data."""

    room_id: str
    content: dict[str, Any]
    txn_id: str
    in_reply_to: str | None = None
    case_data: bool = False
    subject: str | None = None
    also_about: tuple[str, ...] = ()  # further persons' keyed hashes (storage.models.OutgoingSubject)
    priority: int = BULK


def _values(msg: NewMessage, now: datetime) -> dict[str, Any]:
    return {"txn_id": msg.txn_id, "room_id": msg.room_id, "content": msg.content, "status": "pending", "attempts": 0,
            "next_attempt_at": now, "created_at": now, "in_reply_to": msg.in_reply_to,
            "carries_case_data": msg.case_data, "subject": msg.subject, "priority": msg.priority}


_table = typing.cast(Table, OutgoingMessage.__table__)
# Statements built once and given their values as parameters (a reply's: ``_insert_back``): a reply is on a
# person's critical path, and an ORM flush or a fresh ``insert().values(...)`` per row cost it a third more time in
# Python than such a statement does.
_INSERT_MANY = insert(_table).execution_options(render_nulls=True)  # on the table: the ORM's bulk path cost more


async def present_txn_ids(session: AsyncSession, txn_ids: Sequence[str]) -> set[str]:
    """Which of these transaction ids are already queued (or sent)."""
    if not txn_ids:
        return set()
    return set((await session.execute(_PRESENT, {"ids": list(txn_ids)})).scalars())


_PRESENT = select(_table.c.txn_id).where(_table.c.txn_id.in_(bindparam("ids", expanding=True)))


async def insert_one(session: AsyncSession, msg: NewMessage, now: datetime, *,
                     claim_for: Leadership | None = None) -> Queued:
    """Write one row, its id returned by the same statement (a duplicate txn id collides here).

    ``claim_for``: the row is written already claimed by that instance for ``CLAIM_LEASE``, in the same statement
    and under its fence (``Leadership.fence_clause``): a command's reply, which the sender then sends right after
    the commit with no claim transaction of its own. An instance that has lost the active lock writes the row
    unclaimed (the claim's condition is false), so it cannot send it on this claim."""
    values = _values(msg, now)
    statement = commit_tail.insert_back(_insert_back(_claimed(session, values, now, claim_for)))
    # On the connection, not through the ORM session: a plain table statement gains nothing from the session's
    # execution path, which cost a reply about a third more Python than the statement itself.
    row = (await (await session.connection()).execute(statement, values)).one()
    if _also_about(session, [msg]):
        await session.flush()
    return Queued(row.id, msg.room_id, msg.content, msg.txn_id, row.claimed_until)


def insert_one_at_commit(session: AsyncSession, msg: NewMessage, now: datetime, *,
                         claim_for: Leadership | None = None) -> Callable[[], Queued]:
    """``insert_one`` for a session without a transaction (``storage.audit.one_statement_sessions``): the row is
    written by the commit's one statement, claim and fence included, and the returned function gives the
    ``Queued`` once that has run. A duplicate txn id collides in that statement."""
    values = _values(msg, now)
    back = commit_tail.insert_back_at_commit(session, _insert_back(_claimed(session, values, now, claim_for)), values)
    _also_about(session, [msg])

    def queued() -> Queued:
        row = back.get()  # the returned id and claim
        return Queued(row[0], msg.room_id, msg.content, msg.txn_id, row[1])
    return queued


def _claimed(session: AsyncSession, values: dict[str, Any], now: datetime,
             claim_for: Leadership | None) -> ColumnElement[bool] | None:
    """The row's claim for ``claim_for`` put in ``values``: its end, as the value itself or, under a fence, as the
    ``claim_until`` parameter of the fenced insert; the fence returned (None: no fence, or not claimed, and then the
    sender is woken for it after the commit)."""
    if claim_for is None:
        wakes.wrote(session, wakes.Queue.MATRIX)
        return None
    fenced = claim_for.fence_clause()
    values["claimed_until" if fenced is None else "claim_until"] = now + CLAIM_LEASE
    return fenced


def _fenced_until(fenced: ColumnElement[bool]) -> ColumnElement[Any]:
    """The claim's end where the fence holds, else none: an instance that lost the active lock writes the row
    unclaimed."""
    return case((fenced, cast(bindparam("claim_until", type_=UTCDateTime()), UTCDateTime())), else_=null())


@functools.lru_cache(maxsize=16)
def _insert_back(fenced: ColumnElement[bool] | None) -> commit_tail.InsertBack:
    """The reply's insert under one fence (one per lock connection: ``Leadership.fence_clause`` gives the same
    expression each time), built once: its own statement (``commit_tail.insert_back``) and the commit's statement
    are cached by it, and building and compiling them anew for every reply cost more Python than the round trip
    that writes it."""
    if fenced is None:
        return commit_tail.InsertBack(_table, returning=("id", "claimed_until"))
    return commit_tail.InsertBack(_table, returning=("id", "claimed_until"),
                                  computed=(("claimed_until", _fenced_until(fenced)),), extra=("claim_until",))


async def insert_many(session: AsyncSession, msgs: Iterable[NewMessage], now: datetime) -> None:
    """Write rows in one statement (executemany), without an ORM object per row: a tick after downtime queues
    thousands of escalations at once, and building and flushing an object for each was most of its time."""
    msgs = list(msgs)
    rows = [_values(m, now) for m in msgs]
    if rows:
        await session.execute(_INSERT_MANY, rows)
        wakes.wrote(session, wakes.Queue.MATRIX)
    _also_about(session, msgs)


def _also_about(session: AsyncSession, msgs: Sequence[NewMessage]) -> int:
    """The further persons' rows of these messages added to the session; how many."""
    rows = [OutgoingSubject(txn_id=m.txn_id, subject=s)
            for m in msgs for s in dict.fromkeys(m.also_about) if s != m.subject]
    session.add_all(rows)
    return len(rows)


async def subjects_of_replies(session: AsyncSession, event_ids: Iterable[str]) -> dict[str, str]:
    """The person (keyed hash) of the bot's replies to these command events, by command event."""
    subjects: dict[str, str] = {}
    for reply_to, subject in (await session.execute(
        select(OutgoingMessage.in_reply_to, OutgoingMessage.subject).where(
            OutgoingMessage.in_reply_to.in_(set(event_ids)), OutgoingMessage.subject.is_not(None))
    )).all():
        if reply_to and subject:
            subjects[reply_to] = subject
    return subjects


async def txn_id_of_event(session: AsyncSession, event_id: str) -> str | None:
    """The transaction id under which the bot sent the message that became this room event."""
    return (await session.execute(
        select(OutgoingMessage.txn_id).where(OutgoingMessage.event_id == event_id))).scalar_one_or_none()


# ---------------------------------------------------------------------------------------------- send loop

async def pending_count(session: AsyncSession) -> int:
    n = await session.scalar(
        select(func.count()).select_from(OutgoingMessage).where(OutgoingMessage.status == "pending"))
    return int(n or 0)


async def pending_batch(session: AsyncSession, limit: int = 50) -> Sequence[Row[Any]]:
    """The pending rows next in line, interactive lane first, oldest first within a lane: id, room_id, content,
    txn_id, attempts, next_attempt_at, claimed_until."""
    return (await session.execute(
        select(OutgoingMessage.id, OutgoingMessage.room_id, OutgoingMessage.content, OutgoingMessage.txn_id,
               OutgoingMessage.attempts, OutgoingMessage.next_attempt_at, OutgoingMessage.claimed_until)
        .where(OutgoingMessage.status == "pending")
        .order_by(OutgoingMessage.priority, OutgoingMessage.id).limit(limit)
    )).all()


async def still_to_send(session: AsyncSession, row_id: int, txn_id: str) -> bool:
    """Whether this row is still waiting for its send: not withdrawn (a sepot 01), sent or removed meanwhile."""
    status = await session.scalar(select(OutgoingMessage.status).where(OutgoingMessage.id == row_id,
                                                                      OutgoingMessage.txn_id == txn_id))
    return status == "pending"


async def get(session: AsyncSession, row_id: int) -> OutgoingMessage | None:
    return await session.get(OutgoingMessage, row_id)


# What every sent row gets; its own event id and time come with it (``commit_tail.update_at_commit``). A row withdrawn
# while its send was on its way (``storage.redaction.mark_case``: a reason, no redaction yet) did reach the room: it
# is queued for redaction now, as the messages about the person that were already recorded were then.
_WITHDRAWN_ON_ITS_WAY = and_(_table.c.redaction.is_(None), _table.c.redaction_reason.is_not(None))
# (The withdrawal left its redaction_next_at empty: due at once.)
_MARK_SENT = update(_table).values(
    status="sent", content=None, claimed_until=None, attempts=_table.c.attempts + 1,
    redaction=case((_WITHDRAWN_ON_ITS_WAY, "pending"), else_=_table.c.redaction))


def mark_sent(session: AsyncSession, sent: Sequence[tuple[int, str, str]], now: datetime) -> None:
    """Record sends (row id, txn id, the homeserver's event id) at the caller's commit, in the statement of its
    audit records on PostgreSQL: nothing reads them back in that transaction. A row gone meanwhile (purged, or a
    person's messages removed) is left alone, also when SQLite has given its id to a new row since: the txn id
    must match too, or that new message would be marked sent and never go out. The content goes: what a room was
    told is the homeserver's to keep, not the queue's."""
    commit_tail.update_at_commit(session, _MARK_SENT, [
        {"id": row_id, f"{commit_tail.MATCH}txn_id": txn_id, "event_id": event_id, "sent_at": now}
        for row_id, txn_id, event_id in sent])


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    return or_(OutgoingMessage.claimed_until.is_(None), OutgoingMessage.claimed_until <= now)


async def claim(session: AsyncSession, row_id: int, now: datetime, lease: timedelta, *,
                held_until: datetime | None = None) -> bool:
    """Take a due row for one send, for ``lease`` at most (the caller fences in the same transaction). A row
    whose sender died is released when the next active instance starts (``release_claims``) or the lease ends.

    ``held_until``: the row was written claimed until then by this instance (``insert_one(claim_for=...)``), and
    that claim is renewed if it is still the row's (any later claim, by this instance's drain or by a successor,
    runs until later; a release clears it)."""
    mine = _unclaimed(now) if held_until is None else or_(_unclaimed(now), OutgoingMessage.claimed_until <= held_until)
    result = await session.execute(
        update(OutgoingMessage)
        .where(OutgoingMessage.id == row_id, OutgoingMessage.status == "pending",
               OutgoingMessage.next_attempt_at <= now, mine)
        .values(claimed_until=now + lease).execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def release_own(session: AsyncSession, claims: Sequence[tuple[int, datetime]]) -> int:
    """Give back claims this instance holds and will not use (it stops): only where the row still carries the very
    claim it wrote, so a claim a successor has taken since is never touched."""
    released = 0
    for row_id, until in claims:
        result = await session.execute(
            update(OutgoingMessage).where(OutgoingMessage.id == row_id, OutgoingMessage.status == "pending",
                                          OutgoingMessage.claimed_until == until)
            .values(claimed_until=None).execution_options(synchronize_session=False))
        released += int(getattr(result, "rowcount", 0) or 0)
    return released


async def release_claims(session: AsyncSession) -> int:
    """Claims left by an instance that is gone (called by the one that now holds the active lock)."""
    result = await session.execute(
        update(OutgoingMessage).where(OutgoingMessage.status == "pending", OutgoingMessage.claimed_until.is_not(None))
        .values(claimed_until=None).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)
