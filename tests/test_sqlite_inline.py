"""SQLite on the loop's thread (storage.sqlite_inline): writers of this process take turns in order, another
process's write lock is waited for without stopping the loop, and a writer that is cancelled or fails gives its
turn back. Real SQLite files; the other process is a real ``python`` child holding ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from storage import sqlite_inline
from storage.db import SessionFactory, WalCheckpointer, create_engine, ping, read_only, session_factory
from tests.harness.console import ConsoleBot

HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO t (v) VALUES ('other process')")
print("holding", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
print("released", flush=True)
"""


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[SessionFactory]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def _values(sessions: SessionFactory) -> list[str]:
    async with read_only(sessions) as s:
        return [str(v) for v in (await s.scalars(text("SELECT v FROM t ORDER BY id"))).all()]


class Ticker:
    """Counts turns of the event loop while a writer waits: proof that the wait is awaited, not slept."""

    def __init__(self) -> None:
        self.ticks = 0
        self.reached = asyncio.Event()
        self.want = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0)
            self.ticks += 1
            if self.want and self.ticks >= self.want:
                self.reached.set()

    async def at_least(self, n: int) -> None:
        self.want, self.reached = self.ticks + n, asyncio.Event()
        await self.reached.wait()


async def insert(sessions: SessionFactory, value: str) -> None:
    """One writer's transaction: ``value`` into ``t``, committed."""
    async with sessions() as s, s.begin():
        await s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})


async def hold(sessions: SessionFactory, value: str, inside: asyncio.Event, release: asyncio.Event) -> None:
    """A writer that writes ``value`` and keeps its transaction, and with it the writer's turn, open across awaits
    until ``release``."""
    async with sessions() as s, s.begin():
        await s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
        inside.set()
        await release.wait()


async def test_writers_in_one_process_take_turns_in_order(sessions: SessionFactory) -> None:
    first_in = asyncio.Event()
    release_first = asyncio.Event()
    holder = asyncio.create_task(hold(sessions, "first", first_in, release_first))
    await first_in.wait()
    waiting = [asyncio.create_task(insert(sessions, f"w{i}")) for i in range(5)]
    ticker = Ticker()
    ticking = asyncio.create_task(ticker.run())
    try:
        await ticker.at_least(50)  # the loop runs on while five writers wait for their turn
        assert not any(w.done() for w in waiting)
        release_first.set()
        await asyncio.gather(holder, *waiting)
    finally:
        ticking.cancel()
    assert await _values(sessions) == ["first", "w0", "w1", "w2", "w3", "w4"]


async def test_another_processs_write_lock_is_awaited_not_slept(sessions: SessionFactory, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(tmp_path / "inline.db"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin and proc.stdout
    try:
        assert (await proc.stdout.readline()).strip() == b"holding"
        writer = asyncio.create_task(insert(sessions, "bot"))
        ticker = Ticker()
        ticking = asyncio.create_task(ticker.run())
        try:
            await ticker.at_least(200)
            assert not writer.done()  # still waiting for the other process, and the loop kept turning
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
            assert (await proc.stdout.readline()).strip() == b"released"
            await writer
        finally:
            ticking.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    assert await _values(sessions) == ["other process", "bot"]


async def test_a_lock_held_too_long_is_the_usual_database_error(sessions: SessionFactory, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_inline, "BUSY_WAIT_S", 0.3)
    holder = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            async with sessions() as s, s.begin():
                await s.execute(text("INSERT INTO t (v) VALUES ('late')"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await insert(sessions, "next")  # the failed writer gave its turn back: the next one goes ahead at once
    assert await _values(sessions) == ["next"]


async def test_a_cancelled_writer_gives_its_turn_back(sessions: SessionFactory) -> None:
    inside = asyncio.Event()
    holder = asyncio.create_task(hold(sessions, "cancelled", inside, asyncio.Event()))
    await inside.wait()
    waiter = asyncio.create_task(insert(sessions, "never"))
    ticker = Ticker()
    ticking = asyncio.create_task(ticker.run())
    await ticker.at_least(10)
    ticking.cancel()
    waiter.cancel()  # cancelled while waiting for its turn
    holder.cancel()  # cancelled while holding it
    for task in (waiter, holder):
        with pytest.raises(asyncio.CancelledError):
            await task
    async with asyncio.timeout(5):  # a lost turn would hang here until the 30 s wait ran out
        await insert(sessions, "after")
    assert await _values(sessions) == ["after"]


async def test_a_reader_never_waits_for_the_writer(sessions: SessionFactory) -> None:
    inside = asyncio.Event()
    done = asyncio.Event()
    task = asyncio.create_task(hold(sessions, "uncommitted", inside, done))
    await inside.wait()
    async with asyncio.timeout(5):
        assert await _values(sessions) == []  # WAL: the reader sees the last commit, without a turn
    done.set()
    await task
    assert await _values(sessions) == ["uncommitted"]


async def _fill(engine_sessions: SessionFactory, commits: int) -> None:
    page = "x" * 3000  # about one page per row
    for i in range(commits):
        async with engine_sessions() as s, s.begin():
            await s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"{i}{page}"})


@pytest.mark.parametrize("apart", [True, False])
async def test_the_bots_commits_leave_the_checkpoint_to_its_own_thread(tmp_path: Path, apart: bool) -> None:
    """A commit that fills the write-ahead log past 1,000 pages copies it into the file itself, with an fsync, on
    the loop's thread: the slowest percent of ``!check`` was that. The bot's engine leaves it to the
    ``WalCheckpointer``; any other engine (the CLI's) keeps SQLite's own."""
    path = tmp_path / "wal.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", checkpoints_apart=apart)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        await _fill(session_factory(engine), 1500)
        checkpointer = WalCheckpointer(str(path))
        try:
            in_log, copied = await checkpointer.checkpoint()
        finally:
            checkpointer.close()
        if apart:
            assert in_log >= 1500 and copied == in_log  # nothing copied by the commits; all of it now, in a thread
        else:
            assert in_log < 1000  # SQLite's commits copied as they went
        async with read_only(session_factory(engine)) as s:
            assert await s.scalar(text("SELECT count(*) FROM t")) == 1500
    finally:
        await engine.dispose()


async def test_the_runtime_checkpoints_in_the_background(console_bot: ConsoleBot) -> None:
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert "wal-checkpoint" in names


async def test_a_stop_during_a_checkpoint_closes_after_it(tmp_path: Path) -> None:
    """A stop cancels the wait for a checkpoint, not the thread running it: the close follows it on that thread,
    never beside it (a connection closed under a running statement)."""
    import threading

    path = tmp_path / "stop.db"
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").close()
    running, release = threading.Event(), threading.Event()
    order: list[str] = []

    class Slow(WalCheckpointer):
        def _checkpoint(self) -> tuple[int, int]:
            running.set()
            release.wait(10)
            result = super()._checkpoint()
            order.append("checkpoint")
            return result

        def _close(self) -> None:
            order.append("close")
            super()._close()

    slow = Slow(str(path), interval_s=0)
    task = asyncio.create_task(slow.run())
    await asyncio.to_thread(running.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await asyncio.to_thread(slow._thread.shutdown, True)
    assert order == ["checkpoint", "close"]


async def test_the_readiness_probe_never_waits_for_a_writer(sessions: SessionFactory) -> None:
    """/readyz asks the database with ``storage.db.ping``: a reader, so a long write (the daily purge) does not make
    the probe time out and an orchestrator restart a bot that is merely busy."""
    inside, done = asyncio.Event(), asyncio.Event()

    async def long_writer() -> None:
        async with sessions() as s, s.begin():
            await s.execute(text("INSERT INTO t (v) VALUES ('long')"))
            inside.set()
            await done.wait()

    task = asyncio.create_task(long_writer())
    await inside.wait()
    try:
        async with asyncio.timeout(5):  # a writer's turn would wait here until the writer ends (or 30 s)
            await ping(sessions)
    finally:
        done.set()
        await task


async def test_the_turns_of_a_file_go_with_its_last_engine(tmp_path: Path) -> None:
    path = str(tmp_path / "eenmalig.db")
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert path in sqlite_inline._turns
    await engine.dispose()
    del engine, conn
    gc.collect()
    assert path not in sqlite_inline._turns
