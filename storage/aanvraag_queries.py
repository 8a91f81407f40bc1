"""Named queries of advies op aanvraag and the on-call roster: the only SQL of ``services.aanvraag``,
``services.rooster`` and the ``!aanvraag``/``!dienst`` commands.

Steps are claimed with ``UPDATE ... WHERE done_at IS NULL`` (``claim_steps``): a step fires exactly once, also
when two processes tick at the same moment.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Row, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.aanvraag_models import AanvraagStap, AdviesAanvraag, DienstRooster
from storage.registry_models import MarkeringRow

# ---------------------------------------------------------------------------------------------- requests


async def get_request(session: AsyncSession, request_id: int, *, lock: bool = False) -> AdviesAanvraag | None:
    query = select(AdviesAanvraag).where(AdviesAanvraag.id == request_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def requests_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, AdviesAanvraag]:
    rows = (await session.execute(select(AdviesAanvraag).where(AdviesAanvraag.id.in_(sorted(set(ids)))))).scalars()
    return {r.id: r for r in rows}


async def running_request_id(session: AsyncSession, *, bsn: str, person_value: str, veiligheidshuis: str,
                             states: Collection[str]) -> int | None:
    """The request for this person (by the marking's BSN, or as typed when unmarked) at this veiligheidshuis that is
    still in one of ``states``."""
    same = AdviesAanvraag.person_value == person_value
    if bsn:
        same = or_(AdviesAanvraag.bsn == bsn, same)
    return (await session.execute(
        select(AdviesAanvraag.id).where(same, AdviesAanvraag.veiligheidshuis == veiligheidshuis,
                                        AdviesAanvraag.state.in_(list(states))).limit(1)
    )).scalar_one_or_none()


async def requests_in_states(session: AsyncSession, states: Collection[str], *, limit: int) -> list[AdviesAanvraag]:
    """Most urgent first: earliest deadline, then oldest."""
    return list((await session.execute(
        select(AdviesAanvraag).where(AdviesAanvraag.state.in_(list(states)))
        .order_by(AdviesAanvraag.deadline, AdviesAanvraag.id).limit(limit)
    )).scalars().all())


async def request_by_ping_txn(session: AsyncSession, txn_id: str) -> AdviesAanvraag | None:
    return (await session.execute(
        select(AdviesAanvraag).where(AdviesAanvraag.ping_txn == txn_id))).scalar_one_or_none()


async def add_request(session: AsyncSession, req: AdviesAanvraag, steps: Sequence[tuple[str, datetime]],
                      now: datetime) -> None:
    """Write the request (its id is set after this) and its planned steps; the first, the ping, is done now."""
    session.add(req)
    await session.flush()
    for seq, (kind, due) in enumerate(steps):
        session.add(AanvraagStap(aanvraag_id=req.id, seq=seq, kind=kind, due_at=due,
                                 done_at=now if kind == "ping" else None, late=False,
                                 outcome="gedaan" if kind == "ping" else None))


async def answered_advice(session: AsyncSession, values: Collection[str],
                          state: str) -> list[tuple[str, str, datetime]]:
    """(veiligheidshuis, coded afdoening, answered at) of the answered requests about a person, newest first: the
    advice a house gave on request, also where it had not marked the person."""
    if not values:
        return []
    rows = (await session.execute(
        select(AdviesAanvraag.veiligheidshuis, AdviesAanvraag.advies_afdoening, AdviesAanvraag.answered_at).where(
            or_(AdviesAanvraag.bsn.in_(list(values)), AdviesAanvraag.person_value.in_(list(values))),
            AdviesAanvraag.state == state, AdviesAanvraag.advies_afdoening.is_not(None),
            AdviesAanvraag.answered_at.is_not(None)).order_by(AdviesAanvraag.answered_at.desc()))).all()
    return [(vh, code, at) for vh, code, at in rows if code is not None and at is not None]


async def marking_of(session: AsyncSession, bsn: str, veiligheidshuis: str) -> MarkeringRow | None:
    return (await session.execute(
        select(MarkeringRow).where(MarkeringRow.bsn == bsn, MarkeringRow.veiligheidshuis == veiligheidshuis)
    )).scalar_one_or_none()


# ---------------------------------------------------------------------------------------------- steps


async def due_steps(session: AsyncSession, now: datetime, *, after_id: int,
                    limit: int) -> Sequence[Row[int, int, str, datetime, int]]:
    """Undone steps due at ``now`` (id, aanvraag_id, kind, due_at, seq), by id, after ``after_id``."""
    return (await session.execute(
        select(AanvraagStap.id, AanvraagStap.aanvraag_id, AanvraagStap.kind, AanvraagStap.due_at, AanvraagStap.seq)
        .where(AanvraagStap.done_at.is_(None), AanvraagStap.due_at <= now, AanvraagStap.id > after_id)
        .order_by(AanvraagStap.id).limit(limit)
    )).all()


async def claim_steps(session: AsyncSession, step_ids: Sequence[int], now: datetime,
                      late_cutoff: datetime) -> dict[int, bool]:
    """Mark the still undone steps among ``step_ids`` done; returns the ones this call claimed, each with whether
    it is late (due before ``late_cutoff``). A concurrent process claims the others."""
    mine: dict[int, bool] = {}
    for late_flag, cond in ((True, AanvraagStap.due_at < late_cutoff), (False, AanvraagStap.due_at >= late_cutoff)):
        got = await session.execute(
            update(AanvraagStap)
            .where(AanvraagStap.id.in_(list(step_ids)), AanvraagStap.done_at.is_(None), cond)
            .values(done_at=now, late=late_flag).returning(AanvraagStap.id)
            .execution_options(synchronize_session=False)
        )
        mine.update((i, late_flag) for i in got.scalars())
    return mine


async def set_step_outcome(session: AsyncSession, step_ids: Sequence[int], outcome: str) -> None:
    await session.execute(update(AanvraagStap).where(AanvraagStap.id.in_(list(step_ids))).values(outcome=outcome)
                          .execution_options(synchronize_session=False))


async def steps_of(session: AsyncSession, request_id: int) -> list[AanvraagStap]:
    return list((await session.execute(
        select(AanvraagStap).where(AanvraagStap.aanvraag_id == request_id).order_by(AanvraagStap.seq)
    )).scalars().all())


# ---------------------------------------------------------------------------------------------- roster


async def on_duty(session: AsyncSession, vh: str, at: datetime) -> DienstRooster | None:
    """The shift at ``at``; the newest entry wins when shifts overlap."""
    return (await session.execute(
        select(DienstRooster)
        .where(DienstRooster.veiligheidshuis == vh, DienstRooster.starts_at <= at, DienstRooster.ends_at > at)
        .order_by(DienstRooster.id.desc()).limit(1)
    )).scalar_one_or_none()


async def in_roster(session: AsyncSession, vh: str, user: str) -> bool:
    """Whether ``user`` is on any shift of this veiligheidshuis, as duty or as backup."""
    row = (await session.execute(
        select(DienstRooster.id).where(
            DienstRooster.veiligheidshuis == vh,
            or_(DienstRooster.user_id == user, DienstRooster.backup_id == user),
        ).limit(1)
    )).first()
    return row is not None


async def shifts_between(session: AsyncSession, vh: str, start: datetime,
                         end: datetime) -> list[tuple[datetime, datetime]]:
    """(start, end) of every shift of ``vh`` that overlaps [start, end)."""
    return [(a, b) for a, b in (await session.execute(
        select(DienstRooster.starts_at, DienstRooster.ends_at).where(
            DienstRooster.veiligheidshuis == vh, DienstRooster.ends_at > start, DienstRooster.starts_at < end)
    )).all()]


async def people_around(session: AsyncSession, vh: str, at: datetime,
                        window: timedelta) -> Sequence[Row[str, str | None]]:
    """(user_id, backup_id) of the shifts within ``window`` either side of ``at``."""
    return (await session.execute(
        select(DienstRooster.user_id, DienstRooster.backup_id).where(
            DienstRooster.veiligheidshuis == vh, DienstRooster.ends_at > at - window,
            DienstRooster.starts_at < at + window,
        )
    )).all()


def add_shift(session: AsyncSession, shift: DienstRooster) -> None:
    session.add(shift)


async def upcoming_shifts(session: AsyncSession, vh: str | None, now: datetime,
                          ahead: timedelta) -> list[DienstRooster]:
    """Shifts not yet ended that start within ``ahead``, by veiligheidshuis and start."""
    query = select(DienstRooster).where(DienstRooster.ends_at > now, DienstRooster.starts_at < now + ahead)
    if vh:
        query = query.where(DienstRooster.veiligheidshuis == vh)
    return list((await session.execute(
        query.order_by(DienstRooster.veiligheidshuis, DienstRooster.starts_at))).scalars().all())


async def replace_shifts_by_uid(session: AsyncSession, vh: str, uids: Sequence[str]) -> None:
    """Remove the shifts of an earlier import with these UIDs, so a re-import replaces instead of adding."""
    if uids:
        await session.execute(delete(DienstRooster).where(DienstRooster.veiligheidshuis == vh,
                                                          DienstRooster.uid.in_(list(uids))))
