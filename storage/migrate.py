"""Alembic, driven from code: ``zsm-bot db upgrade`` and the start of ``run`` / ``console`` call this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATION_LOCK = 0x5A534D02  # storage.leader.ACTIVE_LOCK's neighbour

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Under a lock, so concurrent upgrades (a ``db upgrade`` beside starting instances) run one after the other
    and the later ones find the schema current: PostgreSQL takes a transaction-level advisory lock before Alembic
    reads its version; SQLite's ``BEGIN IMMEDIATE`` (storage.db) already holds the database's write lock."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(_upgrade, revision)


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def up_to_date(engine: AsyncEngine) -> bool:
    """Whether the database is at the newest revision (for read-only commands that must not migrate)."""
    from alembic.script import ScriptDirectory

    return await current_revision(engine) == ScriptDirectory.from_config(alembic_config()).get_current_head()
