"""Figures for the operations endpoint (``/metrics``): counts only, never a row's content.

Read on every scrape, so each is one aggregate over an indexed status column; no personal data leaves here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.aanvraag import AanvraagStatus
from domain.lifecycles import MailStatus
from storage.aanvraag_models import AanvraagStap, AdviesAanvraag
from storage.besluit_models import OutboxMail

OPEN_REQUESTS = (AanvraagStatus.OPEN.value, AanvraagStatus.ACKNOWLEDGED.value)


@dataclass(frozen=True)
class OutboxFigures:
    pending: int  # waiting for a first attempt
    retrying: int  # failed at least once, will be tried again
    dead: int  # given up; needs `!outbox opnieuw`
    concept: int  # waiting for `!outbox bevestig` (hit-no-hit profile)
    oldest_age_seconds: float  # the oldest mail not yet sent (pending or retrying); 0 when none


@dataclass(frozen=True)
class EscalationFigures:
    open_requests: dict[str, int]  # per open state (open, bevestigd)
    steps_due: int  # escalation steps whose time has come and that were not carried out yet
    past_deadline: int  # open requests whose term has ended


async def outbox_figures(session: AsyncSession, now: datetime) -> OutboxFigures:
    rows = (await session.execute(
        select(OutboxMail.status, OutboxMail.attempts, func.count(), func.min(OutboxMail.created_at))
        .where(OutboxMail.status.in_([MailStatus.PENDING.value, MailStatus.DEAD.value, MailStatus.CONCEPT.value]))
        .group_by(OutboxMail.status, OutboxMail.attempts))).all()  # attempts: a handful of values (max_pogingen)
    counts = {"pending": 0, "retrying": 0, "dead": 0, "concept": 0}
    oldest: datetime | None = None
    for status, attempts, n, first in rows:
        if status == MailStatus.PENDING.value:
            counts["retrying" if attempts else "pending"] += int(n)
            if first is not None and (oldest is None or first < oldest):
                oldest = first
        else:
            counts[str(status)] += int(n)
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return OutboxFigures(oldest_age_seconds=age, **counts)


async def escalation_figures(session: AsyncSession, now: datetime) -> EscalationFigures:
    per_state = {str(state): int(n) for state, n in (await session.execute(
        select(AdviesAanvraag.state, func.count()).where(AdviesAanvraag.state.in_(OPEN_REQUESTS))
        .group_by(AdviesAanvraag.state))).all()}
    due = await session.scalar(select(func.count()).select_from(AanvraagStap).join(
        AdviesAanvraag, AdviesAanvraag.id == AanvraagStap.aanvraag_id).where(
        AanvraagStap.done_at.is_(None), AanvraagStap.due_at <= now, AdviesAanvraag.state.in_(OPEN_REQUESTS)))
    late = await session.scalar(select(func.count()).select_from(AdviesAanvraag).where(
        AdviesAanvraag.state.in_(OPEN_REQUESTS), AdviesAanvraag.deadline <= now))
    return EscalationFigures(open_requests={s: int(per_state.get(s, 0)) for s in OPEN_REQUESTS},
                             steps_due=int(due or 0), past_deadline=int(late or 0))
