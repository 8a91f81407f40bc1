"""Named queries on ``inbox``: one row per handled Matrix event, the key that makes handling exactly-once.

The dispatcher looks the event up at the start of a command's transaction and writes the row in the same
transaction as the command's effects and reply; a second delivery finds the row (or collides on its primary
key, which rolls the duplicate back as a whole).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxEntry


async def seen(session: AsyncSession, event_id: str) -> bool:
    """Whether this event was already handled."""
    return (await session.execute(select(InboxEntry.event_id).where(InboxEntry.event_id == event_id))).first() \
        is not None


async def record(session: AsyncSession, *, event_id: str, room_id: str, sender: str, command: str | None,
                 outcome: str, received_at: datetime, handled_at: datetime) -> None:
    """Write the event's row and flush: a duplicate raises IntegrityError here."""
    session.add(InboxEntry(event_id=event_id, room_id=room_id, sender=sender, command=command, outcome=outcome,
                           received_at=received_at, handled_at=handled_at))
    await session.flush()
