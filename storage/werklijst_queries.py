"""Named queries for known persons who came in (``binnenkomst``): written by ``!check`` and the instroom signal,
read by ``!werklijst``, its reminder and the feedback coverage of the report. Every function works in the caller's
transaction; none commits."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, and_, delete, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.lifecycles import BesluitStatus
from storage import commit_tail
from storage.besluit_models import BesluitRow
from storage.werklijst_models import Binnenkomst


async def add_arrivals(session: AsyncSession, *, subject: str, masked: str, veiligheidshuizen: Iterable[str],
                       via: str, at: datetime, identificatie: Mapping[str, str] | None = None) -> None:
    """One row per house that knows the person; a second lookup of the same person adds rows, which the readers
    fold (a person counts once). ``identificatie``: per house, the identifier it may receive (digest houses only)."""
    ids = identificatie or {}
    rows = [{"subject": subject, "masked": masked, "veiligheidshuis": vh, "via": via, "came_in_at": at,
             "identificatie": ids.get(vh)} for vh in sorted(set(veiligheidshuizen))]
    # Written at commit (``storage.commit_tail``): no transaction that records an arrival reads arrivals back.
    commit_tail.insert_at_commit(session, _INSERT, rows)


_INSERT = insert(typing.cast(Table, Binnenkomst.__table__)).execution_options(render_nulls=True)


@dataclass(frozen=True)
class Aankomst:
    """A known person who came in within a window, for the shift-start digest of one house."""

    subject: str
    masked: str
    identificatie: str | None
    came_in_at: datetime  # the first arrival in the window


async def arrivals_between(session: AsyncSession, veiligheidshuis: str, start: datetime,
                           end: datetime, *, limit: int = 200) -> list[Aankomst]:
    """The house's known persons who came in at or after ``start`` and before ``end``, once per person, oldest
    first."""
    first = func.min(Binnenkomst.came_in_at).label("first")
    rows = (await session.execute(
        select(Binnenkomst.subject, func.max(Binnenkomst.masked), func.max(Binnenkomst.identificatie), first)
        .where(Binnenkomst.veiligheidshuis == veiligheidshuis, Binnenkomst.came_in_at >= start,
               Binnenkomst.came_in_at < end)
        .group_by(Binnenkomst.subject).order_by(first).limit(limit))).all()
    return [Aankomst(subject, masked, ident, at) for subject, masked, ident, at in rows]


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


async def first_arrivals(session: AsyncSession, start: datetime, end: datetime,
                         veiligheidshuis: str | None) -> Sequence[tuple[str, str, datetime, datetime | None]]:
    """Per known person and house that came in within [start, end): the first arrival there, and the time of the
    latest active decision on that person (at any time; None without one). Enough to count the feedback coverage
    (a person counts as fed back in a scope when a decision was taken at or after the first arrival in that scope)
    over any union of such spans, so a report can read its period in short pieces and add them up."""
    latest = (select(func.max(BesluitRow.decided_at))
              .where(BesluitRow.subject == Binnenkomst.subject, BesluitRow.status == BesluitStatus.ACTIEF)
              .scalar_subquery())
    where = [Binnenkomst.came_in_at >= start, Binnenkomst.came_in_at < end]
    if veiligheidshuis is not None:
        where.append(Binnenkomst.veiligheidshuis == veiligheidshuis)
    rows = await session.execute(
        select(Binnenkomst.subject, Binnenkomst.veiligheidshuis, func.min(Binnenkomst.came_in_at), latest)
        .where(*where).group_by(Binnenkomst.subject, Binnenkomst.veiligheidshuis))
    return [(subject, vh, first, last) for subject, vh, first, last in rows.all()]
