"""Shared fixtures: a database per test (SQLite and PostgreSQL) and a console bot on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devtools.synapse import Synapse
from tests.harness import pg
from tests.harness.config import write_config
from tests.harness.console import ConsoleBot
from tests.harness.matrix import PASSWORD, Homeserver
from tests.harness.matrix_bot import InProcessBot, Setup, make_setup
from tests.smtp_helpers import SmtpServer, free_port, make_cert


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
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database only (what several processes share, or what an advisory lock needs)."""
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


# --- Mail: a real aiosmtpd with STARTTLS and a certificate made for the session ---------------------------

@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("cert"))


@pytest.fixture
def smtp(cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    server = SmtpServer(*cert, free_port()).start()
    yield server
    server.stop()


# --- Matrix: one Synapse per session -------------------------------------------------------------------

@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    # rc_message stays on (5/s, burst 10) so the bot's 429 handling is real; test users get an override.
    server = Synapse(tmp_path_factory.mktemp("synapse"), rc_message={"per_second": 5, "burst_count": 10})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def homeserver(synapse: Synapse, tmp_path_factory: pytest.TempPathFactory) -> Homeserver:
    admin = synapse.register("admin", PASSWORD, admin=True)
    return Homeserver(synapse, str(admin["access_token"]), tmp_path_factory.mktemp("stores"))


@pytest.fixture
async def running(homeserver: Homeserver, tmp_path: Path) -> AsyncIterator[tuple[Setup, InProcessBot]]:
    """A bot joined to an officer's encrypted room; both closed afterwards."""
    setup = await make_setup(homeserver, tmp_path)
    bot = InProcessBot(setup.config)
    await setup.officer.wait_member(setup.room_id, setup.bot_user)
    try:
        yield setup, bot
    finally:
        await bot.close()
        await setup.officer.close()
