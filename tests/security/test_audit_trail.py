"""The audit trail is tamper-evident and exportable per person and per user, on both databases."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from storage.audit import Auditor, verify_chain
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import AuditHead, AuditRecord
from tests.harness.config import write_config

BSN = "123456782"
OTHER_BSN = "111222333"


async def _seed(url: str, n: int = 6) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    sessions = session_factory(engine)
    auditor = Auditor(b"test-audit-key")
    t0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    async with sessions() as s, s.begin():
        for i in range(n):
            await auditor.record(s, kind="check.uitgevoerd" if i % 2 == 0 else "besluit.vastgelegd",
                                 at=t0 + timedelta(minutes=i), actor=f"@user{i % 2}:localhost", role="kpc",
                                 person=BSN if i < 4 else OTHER_BSN, details={"n": i})
    await engine.dispose()


async def _verify(url: str) -> tuple[bool, int | None, str]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            r = await verify_chain(s)
            return r.ok, r.problem_at, r.reason
    finally:
        await engine.dispose()


async def _tamper(url: str, stmt: object) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s, s.begin():
            await s.execute(stmt)  # type: ignore[call-overload]
    finally:
        await engine.dispose()


async def test_intact_chain_verifies(database_url: str) -> None:
    await _seed(database_url)
    assert await _verify(database_url) == (True, None, "")


async def test_changed_record_is_found(database_url: str) -> None:
    await _seed(database_url)
    await _tamper(database_url, update(AuditRecord).where(AuditRecord.id == 3).values(details={"n": 99}))
    ok, at, reason = await _verify(database_url)
    assert not ok and at == 3 and "gewijzigd" in reason


async def test_deleted_record_is_found(database_url: str) -> None:
    await _seed(database_url)
    await _tamper(database_url, delete(AuditRecord).where(AuditRecord.id == 4))
    ok, at, reason = await _verify(database_url)
    assert not ok and at == 4 and "ontbreekt" in reason


async def test_deleted_tail_is_found(database_url: str) -> None:
    await _seed(database_url)
    await _tamper(database_url, delete(AuditRecord).where(AuditRecord.id >= 5))
    ok, _, reason = await _verify(database_url)
    assert not ok and "laatste records ontbreken" in reason


async def test_reordering_is_found(database_url: str) -> None:
    await _seed(database_url)
    engine = create_engine(database_url)
    async with session_factory(engine)() as s, s.begin():
        a = (await s.execute(select(AuditRecord).where(AuditRecord.id == 2))).scalar_one()
        b = (await s.execute(select(AuditRecord).where(AuditRecord.id == 3))).scalar_one()
        fields = ("at", "kind", "actor", "role", "subject", "details", "prev_hash", "hash")
        va, vb = ({f: getattr(a, f) for f in fields}, {f: getattr(b, f) for f in fields})
        for f in fields:
            setattr(a, f, vb[f])
            setattr(b, f, va[f])
    await engine.dispose()
    ok, at, _ = await _verify(database_url)
    assert not ok and at == 2


async def test_head_rewrite_without_records_is_found(database_url: str) -> None:
    await _seed(database_url)
    await _tamper(database_url, update(AuditHead).values(last_id=99))
    ok, _, _ = await _verify(database_url)
    assert not ok


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "audit", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("tamper", [False, True])
async def test_cli_verify_and_export(tmp_path: Path, sqlite_url: str, tamper: bool) -> None:
    await _seed(sqlite_url)
    config = write_config(tmp_path, sqlite_url)
    if tamper:
        await _tamper(sqlite_url, update(AuditRecord).where(AuditRecord.id == 2).values(kind="x"))
        proc = _cli(config, "verify")
        assert proc.returncode == 1 and "verbroken bij record 2" in proc.stderr
        return
    proc = _cli(config, "verify")
    assert proc.returncode == 0 and "6 records" in proc.stdout
    proc = _cli(config, "export", "--persoon", BSN)
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [r["id"] for r in lines] == [1, 2, 3, 4]
    assert {r["regime"].split(" ")[0] for r in lines} == {"OM-gegevens", "veiligheidshuisgegevens"}
    assert BSN not in proc.stdout, "the export lists records, it does not need to repeat the identifier"
    proc = _cli(config, "export", "--gebruiker", "@user1:localhost")
    assert [json.loads(x)["id"] for x in proc.stdout.splitlines()] == [2, 4, 6]
    proc = _cli(config, "export", "--persoon", "12345")
    assert proc.returncode == 2 and "--persoon" in proc.stderr


async def test_identifiers_not_readable_from_a_dump(sqlite_url: str) -> None:
    await _seed(sqlite_url)
    db = Path(sqlite_url.removeprefix("sqlite+aiosqlite:///"))
    raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert BSN.encode() not in raw and OTHER_BSN.encode() not in raw
