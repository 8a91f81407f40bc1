"""Three ``zsm-bot db upgrade`` at once on one fresh database: all exit 0 and leave one schema at head (the
upgrade runs under a PostgreSQL advisory lock; on SQLite under the database's write lock)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import create_engine
from storage.migrate import alembic_config, current_revision
from tests.harness.config import REPO, write_config


async def _upgrade(config: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "db", "upgrade", "--config", str(config), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)})
    out, _ = await asyncio.wait_for(proc.communicate(), 180)
    return int(proc.returncode or 0), out.decode()


@pytest.mark.parametrize("runs", [3])
async def test_concurrent_upgrades_all_succeed_with_one_schema(tmp_path: Path, database_url: str, runs: int) -> None:
    from alembic.script import ScriptDirectory

    config = write_config(tmp_path, database_url)
    results = await asyncio.gather(*(_upgrade(config) for _ in range(runs)))
    for code, out in results:
        assert code == 0, out
        assert "database bijgewerkt tot revisie" in out
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) == head
        async with engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        assert versions == [head]
    finally:
        await engine.dispose()
