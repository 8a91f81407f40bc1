"""Named queries for decisions, referrals and the mail outbox: the only SQL behind ``!besluit``, ``!aanmelden``,
``!outbox`` and the mail worker. Every function works in the caller's transaction; none commits."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.lifecycles import BesluitStatus, MailStatus
from storage import wakes
from storage.besluit_models import AanmeldingRow, BesluitRow, OutboxMail
from storage.models import AuditRecord

# ---------------------------------------------------------------------------------------------- decisions


async def referred_houses(session: AsyncSession, subject: str) -> list[str]:
    """The veiligheidshuizen the person was referred to (``!aanmelden``), oldest first."""
    return list((await session.execute(
        select(AanmeldingRow.veiligheidshuis).where(AanmeldingRow.subject == subject).order_by(AanmeldingRow.id)
    )).scalars().all())


async def decisions_on_case(session: AsyncSession, subject: str, zaak: str) -> list[BesluitRow]:
    """Every decision recorded on this person and case, whatever its status."""
    return list((await session.execute(
        select(BesluitRow).where(BesluitRow.subject == subject, BesluitRow.zaak == zaak)
    )).scalars().all())


async def active_decision(session: AsyncSession, subject: str, zaak: str) -> BesluitRow | None:
    return (await session.execute(
        select(BesluitRow).where(BesluitRow.subject == subject, BesluitRow.zaak == zaak,
                                 BesluitRow.status == BesluitStatus.ACTIEF)
    )).scalar_one_or_none()


async def mails_of_decisions(session: AsyncSession, besluit_ids: Sequence[int]) -> list[OutboxMail]:
    if not besluit_ids:
        return []
    return list((await session.execute(
        select(OutboxMail).where(OutboxMail.besluit_id.in_(besluit_ids))
    )).scalars().all())


async def decision_audit_details(session: AsyncSession, subject: str) -> list[dict[str, Any]]:
    """The details of every ``besluit.vastgelegd`` record about the person (they carry the figures it counted)."""
    return list((await session.execute(
        select(AuditRecord.details).where(AuditRecord.subject == subject, AuditRecord.kind == "besluit.vastgelegd")
    )).scalars().all())


async def add_decision(session: AsyncSession, row: BesluitRow) -> BesluitRow:
    """Written and flushed, so its id can key the mails queued with it."""
    session.add(row)
    await session.flush()
    return row


async def delete_case(session: AsyncSession, besluit_ids: Sequence[int], mail_ids: Sequence[int]) -> None:
    """Technisch sepot 01: the decisions and mails on the case go."""
    if mail_ids:
        await session.execute(delete(OutboxMail).where(OutboxMail.id.in_(mail_ids)))
    if besluit_ids:
        await session.execute(delete(BesluitRow).where(BesluitRow.id.in_(besluit_ids)))


async def add_referral(session: AsyncSession, row: AanmeldingRow) -> None:
    session.add(row)

# ---------------------------------------------------------------------------------------------- the outbox


async def add_mail(session: AsyncSession, row: OutboxMail) -> OutboxMail:
    session.add(row)
    wakes.wrote(session, wakes.Queue.MAIL)
    await session.flush()
    return row


async def open_mails(session: AsyncSession, statuses: Iterable[MailStatus]) -> list[OutboxMail]:
    return list((await session.execute(
        select(OutboxMail).where(OutboxMail.status.in_(tuple(statuses))).order_by(OutboxMail.id)
    )).scalars().all())


async def mails_about(session: AsyncSession, subjects: Sequence[str]) -> list[OutboxMail]:
    """Every mail about the person (by the keyed hashes of their identifiers), whatever its kind or state."""
    return list((await session.execute(
        select(OutboxMail).where(OutboxMail.subject_hash.in_(list(subjects))).order_by(OutboxMail.id))).scalars())


async def mail_by_ref(session: AsyncSession, ref: str) -> OutboxMail | None:
    return (await session.execute(select(OutboxMail).where(OutboxMail.ref == ref))).scalar_one_or_none()


async def refs_with_status(session: AsyncSession, status: MailStatus) -> list[str]:
    return list((await session.execute(select(OutboxMail.ref).where(OutboxMail.status == status))).scalars().all())


async def pending_mails(session: AsyncSession, limit: int = 500) -> list[OutboxMail]:
    """The waiting mails in queue order, due or not (the caller sorts them by ``next_attempt_at``)."""
    return list((await session.execute(
        select(OutboxMail).where(OutboxMail.status == MailStatus.PENDING).order_by(OutboxMail.id).limit(limit)
    )).scalars().all())


async def claim_mails(session: AsyncSession, mail_ids: Sequence[int], now: datetime, lease: timedelta) -> set[int]:
    """Take these due mails for one relay round, for ``lease`` at most (the caller fences in the same
    transaction). Returns the ones taken; a concurrent claimer's rows are skipped, not waited for."""
    taken = set((await session.execute(
        select(OutboxMail.id).where(
            OutboxMail.id.in_(mail_ids), OutboxMail.status == MailStatus.PENDING, OutboxMail.next_attempt_at <= now,
            or_(OutboxMail.claimed_until.is_(None), OutboxMail.claimed_until <= now),
        ).with_for_update(skip_locked=True)
    )).scalars())
    if taken:
        await session.execute(update(OutboxMail).where(OutboxMail.id.in_(taken))
                              .values(claimed_until=now + lease).execution_options(synchronize_session=False))
    return taken


async def release_mail_claims(session: AsyncSession) -> int:
    """Claims left by an instance that is gone (called by the one that now holds the active lock)."""
    result = await session.execute(
        update(OutboxMail).where(OutboxMail.status == MailStatus.PENDING, OutboxMail.claimed_until.is_not(None))
        .values(claimed_until=None).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def still_pending(session: AsyncSession, mail_ids: Sequence[int]) -> set[int]:
    """Which of these mails still wait (not undone, replaced or removed meanwhile)."""
    return set((await session.execute(
        select(OutboxMail.id).where(OutboxMail.id.in_(mail_ids), OutboxMail.status == MailStatus.PENDING)
    )).scalars())


async def mails_present(session: AsyncSession, mail_ids: Sequence[int]) -> set[int]:
    """Which of these mails still have their row, whatever their state."""
    return set((await session.execute(select(OutboxMail.id).where(OutboxMail.id.in_(mail_ids)))).scalars())


async def mark_sent(session: AsyncSession, mail_ids: Sequence[int], now: datetime) -> Sequence[Any]:
    """The relay accepted these: sent, one more attempt, body cleared. Returns, for the notice, audit and figures,
    the ones that were still pending or cancelled while on their way to the relay (they went all the same), with
    the time of their decision (None for a mail without one)."""
    rows = (await session.execute(_PENDING_OF, {"ids": list(mail_ids)})).all()
    if rows:
        await session.execute(_MARK_SENT, {"ids": [r.id for r in rows], "now": now})
    return rows


# Built once, on the tables: the mail worker records every batch of acceptances with them, and building an ORM
# UPDATE (with its session synchronisation) per batch cost more Python than sending a mail.
_mail_t = typing.cast(Table, OutboxMail.__table__)
_PENDING_OF = (
    select(_mail_t.c.id, _mail_t.c.ref, _mail_t.c.message_id, _mail_t.c.veiligheidshuis, _mail_t.c.kind,
           _mail_t.c.room_id, _mail_t.c.event_id, _mail_t.c.recipient, _mail_t.c.attempts, BesluitRow.decided_at)
    .select_from(_mail_t.outerjoin(BesluitRow, BesluitRow.id == _mail_t.c.besluit_id))
    .where(_mail_t.c.id.in_(bindparam("ids", expanding=True)),
           _mail_t.c.status.in_((MailStatus.PENDING.value, MailStatus.VERVALLEN.value)))
    .order_by(_mail_t.c.id))
_MARK_SENT = (
    update(_mail_t).where(_mail_t.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=MailStatus.SENT.value, sent_at=bindparam("now", type_=_mail_t.c.sent_at.type),
            attempts=_mail_t.c.attempts + 1, body_text=None, body_html=None, claimed_until=None))


async def mail_by_id(session: AsyncSession, mail_id: int) -> OutboxMail | None:
    return await session.get(OutboxMail, mail_id)
