"""The built-in registry in the bot's own database: the embedded default."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.advies import Markering
from domain.identifiers import PersonId
from storage.db import SessionFactory
from storage.registry_models import MarkeringRow


def _to_domain(row: MarkeringRow) -> Markering:
    return Markering(
        bsn=row.bsn, skn=row.skn, geboortedatum=row.geboortedatum, veiligheidshuis=row.veiligheidshuis,
        doelgroep=row.doelgroep, status=row.status, advies=row.advies,
        geadviseerde_afdoening=row.geadviseerde_afdoening, advies_datum=row.advies_datum,
        regisseur=row.regisseur, huishouden=row.huishouden, bron=row.bron,
    )


class BuiltinRegistry:
    name = "ingebouwd register"

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    async def lookup(self, person: PersonId) -> list[Markering]:
        column = MarkeringRow.bsn if person.kind == "bsn" else MarkeringRow.skn
        async with self.sessions() as s:
            query = select(MarkeringRow).where(column == person.value).order_by(MarkeringRow.veiligheidshuis)
            found = [_to_domain(r) for r in (await s.execute(query)).scalars().all()]
            await s.rollback()
        return found


async def upsert(session: AsyncSession, markeringen: Iterable[Markering], now: datetime) -> int:
    """Insert or replace by (bsn, veiligheidshuis). Used by tests to seed and as the import's base operation."""
    count = 0
    for m in markeringen:
        existing = (
            await session.execute(
                select(MarkeringRow).where(MarkeringRow.bsn == m.bsn, MarkeringRow.veiligheidshuis == m.veiligheidshuis)
            )
        ).scalar_one_or_none()
        row = existing or MarkeringRow(bsn=m.bsn, veiligheidshuis=m.veiligheidshuis)
        row.skn = m.skn
        row.geboortedatum = m.geboortedatum
        row.doelgroep = m.doelgroep
        row.status = m.status
        row.advies = m.advies
        row.geadviseerde_afdoening = m.geadviseerde_afdoening
        row.advies_datum = m.advies_datum
        row.regisseur = m.regisseur
        row.huishouden = m.huishouden
        row.bron = m.bron
        row.updated_at = now
        if existing is None:
            session.add(row)
        count += 1
    await session.flush()
    return count
