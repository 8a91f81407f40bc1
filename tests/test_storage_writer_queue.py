"""SQLite writers of one process take turns in order (storage.db): under a burst nobody is starved until SQLite's
busy timeout ("database is locked"), which once left a reply unsent after fifty commands arrived at once. A real
SQLite file, real transactions; only the waiting is observed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from storage import bot_state
from storage.db import SessionFactory, create_engine, read_only, session_factory, writers_waiting
from storage.migrate import upgrade
from storage.models import BotState

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[tuple[SessionFactory, object]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}")
    await upgrade(engine)
    try:
        yield session_factory(engine), engine
    finally:
        await engine.dispose()


async def _until(condition: object, what: str) -> None:
    """Wait for a condition of the queue (it changes when a task reaches its BEGIN), bounded for a busy machine."""
    for _ in range(2000):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(what)


async def test_writers_get_their_turn_in_the_order_they_asked(sqlite: tuple[SessionFactory, object]) -> None:
    sessions, engine = sqlite
    holding, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with sessions() as s, s.begin():
            await bot_state.put(s, "order:0", "eerste", NOW)
            await s.flush()
            holding.set()
            await release.wait()

    async def writer(n: int) -> None:
        async with sessions() as s, s.begin():
            await bot_state.put(s, f"order:{n}", str(n), NOW)
            await s.flush()
            async with read_only(sessions) as r:  # a reader beside the writers never waits for a turn
                count = len((await r.execute(select(BotState.key))).all())
            await bot_state.put(s, f"seen:{n}", str(count), NOW)

    first = asyncio.create_task(holder())
    await asyncio.wait_for(holding.wait(), 30)
    later: list[asyncio.Task[None]] = []
    for n in range(1, 9):
        later.append(asyncio.create_task(writer(n)))
        await _until(lambda n=n: writers_waiting(engine) == n, f"writer {n} did not queue up")  # type: ignore[arg-type]
    release.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 60)
    assert writers_waiting(engine) == 0  # type: ignore[arg-type]
    async with sessions() as s:
        rows = dict((await s.execute(select(BotState.key, BotState.value))).all())
    # Each writer saw exactly the rows of those before it: it ran after them, in the order they asked.
    assert [int(rows[f"seen:{n}"]) for n in range(1, 9)] == [1 + 2 * (n - 1) for n in range(1, 9)]


async def test_a_writer_cancelled_while_it_waits_gives_its_turn_on(sqlite: tuple[SessionFactory, object]) -> None:
    """A command that times out while waiting (its task cancelled) must not keep a turn it never used: the writers
    after it still begin."""
    sessions, engine = sqlite
    holding, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with sessions() as s, s.begin():
            await bot_state.put(s, "k:0", "0", NOW)
            await s.flush()
            holding.set()
            await release.wait()

    async def writer(key: str) -> None:
        async with sessions() as s, s.begin():
            await bot_state.put(s, key, "x", NOW)

    first = asyncio.create_task(holder())
    await asyncio.wait_for(holding.wait(), 30)
    doomed = asyncio.create_task(writer("k:doomed"))
    await _until(lambda: writers_waiting(engine) == 1, "the doomed writer did not queue up")  # type: ignore[arg-type]
    after = asyncio.create_task(writer("k:after"))
    await _until(lambda: writers_waiting(engine) == 2, "the next writer did not queue up")  # type: ignore[arg-type]
    doomed.cancel()
    release.set()
    await asyncio.wait_for(asyncio.gather(first, after), 30)
    with pytest.raises(asyncio.CancelledError):
        await doomed
    async with sessions() as s, s.begin():  # and the queue is free again
        await bot_state.put(s, "k:last", "x", NOW)
    async with sessions() as s:
        keys = set((await s.execute(select(BotState.key))).scalars())
    assert keys == {"k:0", "k:after", "k:last"}
