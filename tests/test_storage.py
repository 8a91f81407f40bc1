"""Storage on both databases: migrations, the audit chain, the send queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from domain.advies import Markering
from storage import registry_queries
from storage.audit import GENESIS, Auditor
from storage.db import create_engine, session_factory
from storage.driven import driven
from storage.migrate import current_revision, upgrade
from storage.models import AuditRecord
from storage.registry_queries import markeringen_of, upsert


async def test_migrations_apply_twice(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)
        assert await current_revision(engine) is not None
    finally:
        await engine.dispose()


async def test_audit_chain_is_linked_and_subjects_hashed(database_url: str) -> None:
    engine = create_engine(database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    auditor = Auditor(b"k")
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    async def write(i: int) -> None:
        async with sessions() as s, s.begin():
            await auditor.record(s, kind="test", at=now, actor=f"@u{i}:x", person="123456782", details={"i": i})

    try:
        await asyncio.gather(*(write(i) for i in range(20)))
        async with sessions() as s:
            rows = (await s.execute(select(AuditRecord).order_by(AuditRecord.id))).scalars().all()
        assert [r.id for r in rows] == list(range(1, 21))
        prev = GENESIS
        for r in rows:
            assert r.prev_hash == prev
            assert r.hash == auditor.mac(r.id, r.at, r.kind, r.actor, r.role, r.subject, r.details, r.prev_hash)
            assert r.subject == auditor.subject_of("123456782") and "123456782" not in str(r.details)
            prev = r.hash
    finally:
        await engine.dispose()


async def test_a_driven_read_gives_what_sqlalchemy_gives(database_url: str) -> None:
    """The hot path's reads run as the driver's own SQL (``storage.driven``); the values must be those of
    SQLAlchemy's own execution of the same statement: dates as dates (SQLite stores text), a boolean as a boolean,
    NULLs as None, text with non-ASCII characters unchanged; inside a transaction the read sees its own writes."""
    engine = create_engine(database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    marks = [
        Markering(bsn="123456782", skn="SKN-9", geboortedatum=date(2010, 2, 28), veiligheidshuis="utrecht",
                  doelgroep="jeugd", status="actief", advies="Begeleiding loopt; één regisseur.",
                  geadviseerde_afdoening=None, advies_datum=date(2026, 11, 1), regisseur="mw. Öztürk",
                  huishouden=True, bron="import"),
        Markering(bsn="123456782", skn=None, geboortedatum=date(2010, 2, 28), veiligheidshuis="amsterdam",
                  doelgroep="huiselijk geweld", status="actief", advies="Sepot.", geadviseerde_afdoening="sepot",
                  advies_datum=date(2025, 1, 2), regisseur="dhr. Jansen", huishouden=False, bron="handmatig"),
    ]
    try:
        async with sessions() as s, s.begin():
            await upsert(s, marks, now)
            within = await markeringen_of(s, "bsn", "123456782")  # before the commit: its own writes
            conn = await s.connection()
            executed = [tuple(r) for r in (await conn.execute(registry_queries._BY_BSN, {"v": "123456782"})).all()]
        async with sessions() as s:
            read = await markeringen_of(s, "bsn", "123456782")
            by_skn = await markeringen_of(s, "skn", "SKN-9")
            conn = await s.connection()
            driven_rows = await driven(registry_queries._BY_BSN, engine.dialect).fetch(conn, {"v": "123456782"})
            await s.commit()
        assert within == read == sorted(marks, key=lambda m: m.veiligheidshuis)
        assert by_skn == [marks[0]]
        assert driven_rows == executed
        assert isinstance(read[0].geboortedatum, date) and read[1].huishouden is True
    finally:
        await engine.dispose()


def test_a_driven_statement_needs_positional_parameters() -> None:
    from sqlalchemy.dialects.postgresql.psycopg2 import dialect as pyformat

    with pytest.raises(RuntimeError, match="positional parameters"):
        driven(registry_queries._BY_BSN, pyformat())
