"""Storage on both databases: migrations, the audit chain, the send queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from storage.audit import GENESIS, Auditor
from storage.db import create_engine, session_factory
from storage.migrate import current_revision, upgrade
from storage.models import AuditRecord


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
