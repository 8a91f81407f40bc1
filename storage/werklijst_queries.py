"""Named queries for known persons who came in (``binnenkomst``): written by ``!check`` and the instroom signal,
read by ``!werklijst``, its reminder and the feedback coverage of the report. Every function works in the caller's
transaction; none commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.lifecycles import BesluitStatus
from storage.besluit_models import BesluitRow
from storage.werklijst_models import Binnenkomst


async def add_arrivals(session: AsyncSession, *, subject: str, masked: str, veiligheidshuizen: Iterable[str],
                       via: str, at: datetime) -> None:
    """One row per house that knows the person; a second lookup of the same person adds rows, which the readers
    fold (a person counts once)."""
    for vh in sorted(set(veiligheidshuizen)):
        session.add(Binnenkomst(subject=subject, masked=masked, veiligheidshuis=vh, via=via, came_in_at=at))


async def delete_arrivals(session: AsyncSession, subject: str) -> int:
    """Technisch sepot 01: the person was wrongly taken for a suspect; nothing of the arrival stays."""
    result = await session.execute(delete(Binnenkomst).where(Binnenkomst.subject == subject))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Open:
    """A known person who came in and has no decision since."""

    subject: str
    masked: str
    veiligheidshuis: str
    came_in_at: datetime  # the earliest arrival without a decision after it


async def open_arrivals(session: AsyncSession, *, before: datetime, veiligheidshuis: str | None = None,
                        limit: int = 200) -> list[Open]:
    """Persons who came in at or before ``before`` with no active decision taken after they came in, oldest first;
    one line per person and house."""
    undecided = ~exists().where(BesluitRow.subject == Binnenkomst.subject, BesluitRow.status == BesluitStatus.ACTIEF,
                                BesluitRow.decided_at >= Binnenkomst.came_in_at)
    where = [Binnenkomst.came_in_at <= before, undecided]
    if veiligheidshuis is not None:
        where.append(Binnenkomst.veiligheidshuis == veiligheidshuis)
    first = func.min(Binnenkomst.came_in_at).label("first")
    rows = (await session.execute(
        select(Binnenkomst.subject, func.max(Binnenkomst.masked), Binnenkomst.veiligheidshuis, first)
        .where(and_(*where)).group_by(Binnenkomst.subject, Binnenkomst.veiligheidshuis)
        .order_by(first, Binnenkomst.veiligheidshuis).limit(limit)
    )).all()
    return [Open(subject, masked, vh, at) for subject, masked, vh, at in rows]


async def arrivals_between(session: AsyncSession, start: datetime, end: datetime,
                           veiligheidshuis: str | None) -> Sequence[tuple[str, str, datetime]]:
    """(subject, house, came in) of every arrival in [start, end)."""
    where = [Binnenkomst.came_in_at >= start, Binnenkomst.came_in_at < end]
    if veiligheidshuis is not None:
        where.append(Binnenkomst.veiligheidshuis == veiligheidshuis)
    return [(s, vh, at) for s, vh, at in (await session.execute(
        select(Binnenkomst.subject, Binnenkomst.veiligheidshuis, Binnenkomst.came_in_at).where(*where)
    )).all()]


async def decision_times(session: AsyncSession, subjects: Iterable[str]) -> dict[str, list[datetime]]:
    """The times of the active decisions on these persons."""
    wanted = list(set(subjects))
    out: dict[str, list[datetime]] = {}
    for i in range(0, len(wanted), 500):
        for subject, at in (await session.execute(
            select(BesluitRow.subject, BesluitRow.decided_at).where(
                BesluitRow.subject.in_(wanted[i:i + 500]), BesluitRow.status == BesluitStatus.ACTIEF)
        )).all():
            out.setdefault(subject, []).append(at)
    return out
