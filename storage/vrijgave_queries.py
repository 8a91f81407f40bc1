"""Named queries on the release requests (``vrijgave``), so the release use case holds no SQL of its own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.vrijgave_models import Vrijgave


async def valid_releases(session: AsyncSession, subject: str, room_id: str, now: datetime) -> Sequence[Vrijgave]:
    """The releases of one person (keyed hash) for one room that have not expired."""
    return (await session.execute(select(Vrijgave).where(
        Vrijgave.subject == subject, Vrijgave.state == "vrijgegeven", Vrijgave.room_id == room_id,
        Vrijgave.expires_at > now))).scalars().all()


async def open_request(session: AsyncSession, subject: str, veiligheidshuis: str, room_id: str) -> Vrijgave | None:
    """The request still waiting for an answer for this person, veiligheidshuis and room, if any."""
    return (await session.execute(select(Vrijgave).where(
        Vrijgave.subject == subject, Vrijgave.veiligheidshuis == veiligheidshuis, Vrijgave.room_id == room_id,
        Vrijgave.state == "open"))).scalars().first()


async def add_request(session: AsyncSession, row: Vrijgave) -> Vrijgave:
    """Insert a new request in the caller's transaction; flushed so its id (the V-number) is known."""
    session.add(row)
    await session.flush()
    return row


async def request_by_id(session: AsyncSession, row_id: int) -> Vrijgave | None:
    return await session.get(Vrijgave, row_id)
