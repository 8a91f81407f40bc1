"""The joined members of the bot's rooms, as the room state says (one row per room and member).

Who reads a room decides what the bot may show there (``services.publiek``); the Matrix transport feeds every
membership change through that service into this table, so the audience survives a restart. Matrix user ids only:
no personal data of the persons looked up.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import String, bindparam, delete, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.driven import driven
from storage.models import Base, BotState
from storage.types import UTCDateTime


class RoomMember(Base):
    __tablename__ = "room_members"

    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())


async def members_of(session: AsyncSession, room_id: str) -> frozenset[str]:
    """The joined members stored for this room (empty when the room was never seen)."""
    rows = await session.scalars(_MEMBERS, {"room_id": room_id})
    return frozenset(rows)


_MEMBERS = select(RoomMember.user_id).where(RoomMember.room_id == bindparam("room_id"))


async def members_and_state(session: AsyncSession, room_id: str, key: str) -> tuple[frozenset[str], str | None]:
    """The room's joined members and one ``bot_state`` value about the room, in one statement (a ``!check``
    needs both: who reads the room, and what the room has been shown)."""
    members: set[str] = set()
    value: str | None = None
    conn = await session.connection()  # a table statement: the ORM session's execution path adds only cost
    for member, state in await driven(_MEMBERS_AND_STATE, conn.dialect).fetch(conn, {"room_id": room_id, "key": key}):
        if member is not None:
            members.add(member)
        else:
            value = state
    return frozenset(members), value


_MEMBERS_AND_STATE = union_all(
    select(RoomMember.user_id.label("member"), literal(None, String).label("state"))
    .where(RoomMember.room_id == bindparam("room_id")),
    select(literal(None, String), BotState.value).where(BotState.key == bindparam("key")))


async def replace_members(session: AsyncSession, room_id: str, joined: Iterable[str], now: datetime
                          ) -> tuple[frozenset[str], frozenset[str]]:
    """Make the stored members of ``room_id`` the ``joined`` set; returns (newly joined, left)."""
    want = frozenset(joined)
    have = await members_of(session, room_id)
    gone = have - want
    if gone:
        await session.execute(delete(RoomMember).where(RoomMember.room_id == room_id,
                                                       RoomMember.user_id.in_(sorted(gone))))
    new = want - have
    session.add_all(RoomMember(room_id=room_id, user_id=u, joined_at=now) for u in sorted(new))
    return new, gone


def _no_sqlite_file(database_url: str) -> bool:
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from storage.db import is_sqlite

    if not is_sqlite(database_url):
        return False
    path = make_url(database_url).database
    return not path or path == ":memory:" or not Path(path).exists()


async def stored_rooms(database_url: str) -> dict[str, frozenset[str]] | None:
    """Every room's stored members, read-only, for ``check-config``; None when there is no database with this
    table yet (a SQLite file is never created just to look)."""
    from sqlalchemy import inspect

    from storage.db import create_engine

    if _no_sqlite_file(database_url):
        return None
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            if not await conn.run_sync(lambda c: inspect(c).has_table(RoomMember.__tablename__)):
                return None
            rooms: dict[str, set[str]] = {}
            for room_id, user_id in (await conn.execute(select(RoomMember.room_id, RoomMember.user_id))).all():
                rooms.setdefault(room_id, set()).add(user_id)
            return {r: frozenset(u) for r, u in rooms.items()}
    finally:
        await engine.dispose()
