"""Named queries for known persons who came in (``binnenkomst``): written by ``!check`` and the instroom signal,
read by ``!werklijst``, its reminder and the feedback coverage of the report. Every function works in the caller's
transaction; none commits."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, and_, case, delete, exists, func, insert, select
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


async def coverage(session: AsyncSession, cuts: Sequence[tuple[datetime, datetime]],
                   veiligheidshuis: str | None) -> dict[tuple[str | None, int | None], tuple[int, int]]:
    """The feedback coverage the pilots could not measure (L1125-1134), counted in the database: per (house or None
    for all, bucket index or None for the whole period), (known persons who came in, of whom an active decision was
    taken at or after their first arrival in that scope). Persons, not lookups: a person checked three times counts
    once, and a person known at two houses counts once in the total. ``cuts`` are the buckets in order; together
    they are the period. Four grouped queries, each returning a handful of rows, whatever the number of
    arrivals."""
    start, end = cuts[0][0], cuts[-1][1]
    where = [Binnenkomst.came_in_at >= start, Binnenkomst.came_in_at < end]
    if veiligheidshuis is not None:
        where.append(Binnenkomst.veiligheidshuis == veiligheidshuis)
    bucket = case(*[(Binnenkomst.came_in_at < b_end, i) for i, (_, b_end) in enumerate(cuts)],
                  else_=len(cuts) - 1)
    out: dict[tuple[str | None, int | None], tuple[int, int]] = {}
    for by_vh, by_bucket in ((True, False), (False, False), (True, True), (False, True)):
        keys = [*([Binnenkomst.veiligheidshuis.label("vh")] if by_vh else []),
                *([bucket.label("bucket")] if by_bucket else [])]
        firsts = select(*keys, Binnenkomst.subject.label("subject"),
                        func.min(Binnenkomst.came_in_at).label("first")).where(*where).group_by(
            *keys, Binnenkomst.subject).subquery()
        fed = exists().where(BesluitRow.subject == firsts.c.subject, BesluitRow.status == BesluitStatus.ACTIEF,
                             BesluitRow.decided_at >= firsts.c.first)
        outer_keys = [*([firsts.c.vh] if by_vh else []), *([firsts.c.bucket] if by_bucket else [])]
        rows = (await session.execute(
            select(*outer_keys, func.count(), func.sum(case((fed, 1), else_=0))).select_from(firsts)
            .group_by(*outer_keys)
        )).all()
        for row in rows:
            vh = row[0] if by_vh else None
            b = row[len(outer_keys) - 1] if by_bucket else None
            out[(vh, None if b is None else int(b))] = (int(row[-2]), int(row[-1] or 0))
    return out
