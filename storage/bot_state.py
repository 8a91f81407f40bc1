"""Named queries on ``bot_state``: the bot's own small key/value memory (the sync token, notices said once).

The Matrix sync loop keeps its place and its "said it once, ever" markers here; the SQL for that stays in
storage/ like every other statement.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import BotState


async def value_of(session: AsyncSession, key: str) -> str | None:
    """The stored value under ``key``, or None."""
    return await session.scalar(_VALUE, {"key": key})


_VALUE = select(BotState.value).where(BotState.key == bindparam("key"))


async def put(session: AsyncSession, key: str, value: str, now: datetime) -> None:
    """Write ``value`` under ``key``, replacing what was there."""
    row = await session.get(BotState, key)
    if row is None:
        session.add(BotState(key=key, value=value, updated_at=now))
    else:
        row.value = value
        row.updated_at = now


async def claim(session: AsyncSession, key: str, now: datetime) -> bool:
    """Mark ``key`` as done, once ever: True for the first caller, False when it was already marked."""
    if await session.get(BotState, key) is not None:
        return False
    session.add(BotState(key=key, value="1", updated_at=now))
    return True
