"""Named queries on ``inbox``: one row per handled Matrix event, the key that makes handling exactly-once.

The dispatcher writes the row in the same transaction as the command's effects and reply, at its commit
(``claim``), on every path that answers (a command, a read-only command after its reader transaction, a refusal);
a second delivery collides there on its primary key, which rolls the duplicate back as a whole.
That collision reaches the dispatcher as ``AlreadyRecorded``, this module's own exception, so the dispatcher
needs no database library to recognise it.
"""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage import commit_tail
from storage.models import InboxEntry


class AlreadyRecorded(Exception):
    """Another delivery of the same event got there first: its inbox row (or its reply) is already written."""


@asynccontextmanager
async def exactly_once() -> AsyncIterator[None]:
    """Around writing the event's row, its replies and the commit: a unique-key collision in there means a
    duplicate delivery, and is raised as ``AlreadyRecorded`` (the caller rolls back)."""
    try:
        yield
    except IntegrityError as exc:
        raise AlreadyRecorded from exc


def claim(session: AsyncSession, *, event_id: str, room_id: str, sender: str, command: str | None,
          received_at: datetime, handled_at: datetime, outcome: str = "handled") -> None:
    """The event's row, written at the command's commit (``storage.commit_tail``): on PostgreSQL in the commit's
    one statement with the audit records, a round trip fewer than a row written first.
    Nothing in the transaction reads it back. A second delivery (a redelivery, a second sync) collides on the key
    in that commit, inside ``exactly_once``, and rolls back as a whole: it may have done the command's work, never
    its effects. (A command that asks an outside registry looks for the row before it asks, so a redelivery asks
    no one.) When the command ends otherwise the transaction rolls back, row included, and the answer-only path
    writes its own."""
    commit_tail.insert_at_commit(session, _INSERT, [{
        "event_id": event_id, "room_id": room_id, "sender": sender, "command": command, "outcome": outcome,
        "received_at": received_at, "handled_at": handled_at}])


async def handled_among(session: AsyncSession, event_ids: Sequence[str]) -> set[str]:
    """Which of these events already have their row (a standby learns what the active instance has done)."""
    if not event_ids:
        return set()
    return set((await session.execute(
        select(InboxEntry.event_id).where(InboxEntry.event_id.in_(list(event_ids))))).scalars())


async def senders_of(session: AsyncSession, event_ids: Iterable[str]) -> dict[str, str]:
    """Who typed these command events: a later notice about the command (a mail sent) goes to them when not every
    reader of the room may see it."""
    wanted = set(event_ids)
    if not wanted:
        return {}
    return {e: u for e, u in (await session.execute(
        select(InboxEntry.event_id, InboxEntry.sender).where(InboxEntry.event_id.in_(wanted)))).all()}


# Built once, parameters apart: every command writes one row, and an ORM object and flush cost it more in Python
# than the statement costs SQLite.
_INSERT = insert(typing.cast(Table, InboxEntry.__table__))


async def counted_since(session: AsyncSession, sender: str, since: datetime) -> int:
    """How many of ``sender``'s commands were received since ``since`` and counted against the rate limit (every
    outcome but ``limited``): what an instance that just took over knows of the user's current minute."""
    return int(await session.scalar(
        select(func.count()).select_from(InboxEntry)
        .where(InboxEntry.sender == sender, InboxEntry.received_at >= since, InboxEntry.outcome != "limited")
    ) or 0)
