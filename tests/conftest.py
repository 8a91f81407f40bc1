"""Shared fixtures: a database per test (SQLite and PostgreSQL) and a console bot on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import pg
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    url, name = await pg.create_database()
    try:
        yield url
    finally:
        await pg.drop_database(name)


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
async def console_bot(tmp_path: Path, sqlite_url: str) -> AsyncIterator[ConsoleBot]:
    bot = await ConsoleBot.start(write_config(tmp_path, sqlite_url))
    try:
        yield bot
    finally:
        await bot.close()


@pytest.fixture
async def console_bot_any_db(tmp_path: Path, database_url: str) -> AsyncIterator[ConsoleBot]:
    bot = await ConsoleBot.start(write_config(tmp_path, database_url))
    try:
        yield bot
    finally:
        await bot.close()
