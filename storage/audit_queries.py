"""Named read queries on the audit trail: for inzage (``zsm-bot audit export``), by person or by user, in order;
and a person's newest record of some kinds (the standing of informing the person, ``services.informeren``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditRecord


async def records_about(session: AsyncSession, subject: str) -> Sequence[AuditRecord]:
    """Every record about one person (the auditor's keyed hash), oldest first."""
    return (await session.execute(
        select(AuditRecord).where(AuditRecord.subject == subject).order_by(AuditRecord.id))).scalars().all()


async def latest_about(session: AsyncSession, subject: str, kinds: Sequence[str]) -> AuditRecord | None:
    """The newest record of one of ``kinds`` about one person."""
    return (await session.execute(
        select(AuditRecord).where(AuditRecord.subject == subject, AuditRecord.kind.in_(list(kinds)))
        .order_by(AuditRecord.id.desc()).limit(1))).scalar_one_or_none()


async def records_by(session: AsyncSession, actor: str) -> Sequence[AuditRecord]:
    """Every record of one user's acts, oldest first."""
    return (await session.execute(
        select(AuditRecord).where(AuditRecord.actor == actor).order_by(AuditRecord.id))).scalars().all()
