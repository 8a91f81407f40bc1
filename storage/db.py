"""Engine and sessions for SQLite (embedded default) and PostgreSQL.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for every transaction: a deferred transaction that
reads and later writes can fail with SQLITE_BUSY_SNAPSHOT, which no busy timeout retries, and the bot's
transactions almost always write (the inbox row, the audit record). The exception is ``read_only``: a reader
(a report, a listing, a queue poll) gets a plain deferred ``BEGIN`` on SQLite, which in WAL mode neither takes
nor waits for the write lock, and ``READ ONLY`` on PostgreSQL, where a write in there fails.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import await_only

log = logging.getLogger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]

# The transaction handle a use case works in (re-exported as ``services.base.Tx``): outside storage/ it is only
# passed along, never used to speak SQL, so no module there needs the database library.
Tx: TypeAlias = AsyncSession
# An engine, as the adapters that own a second database (the shared registry) hold it without the library.
Engine: TypeAlias = AsyncEngine


# How long a SQLite writer waits for the others before "database is locked".
BUSY_TIMEOUT_MS = 30_000
WRITER_WAIT_S = BUSY_TIMEOUT_MS / 1000


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False, pooled: bool = True) -> AsyncEngine:
    """``pooled=False``: every session opens its connection and closes it at the end, for a process that opens the
    database now and then (the report worker) and must not keep connections or their threads between uses."""
    if is_sqlite(url):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": WRITER_WAIT_S},
                                     **({} if pooled else {"poolclass": NullPool}))
        _tune_sqlite(engine)
        return engine
    if not pooled:
        return create_async_engine(url, echo=echo, poolclass=NullPool)
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=5, pool_pre_ping=True)


def url_elsewhere(sessions: SessionFactory) -> str | None:
    """The URL on which another process reaches the database of ``sessions``, password included (it goes to a
    child process over a pipe, never to a log), or None when only this process can: an in-memory SQLite database
    lives inside the connection that made it."""
    url = sessions.kw["bind"].url
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:") or url.query.get("mode") == "memory":
            return None
    return str(url.render_as_string(hide_password=False))


def _tune_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.close()

    writers = _writer_queue(engine)

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Not PRAGMA query_only for readers: it belongs to the pooled connection, and switching it back and forth
        # would cost writers a statement whenever their connection last served a reader. PostgreSQL's READ ONLY
        # (the tests run on both databases) is what catches a reader that writes.
        if conn.get_execution_options().get(_READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        writers.enter(conn.info)
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        # A connection goes back to the pool after its COMMIT or ROLLBACK (or when it is invalidated): its
        # transaction is over, so the next writer in the queue may begin.
        if record is not None:
            writers.leave(record.info)


class _WriterQueue:
    """This process's SQLite writers take turns, first come first served, before SQLite's write lock.

    SQLite lets one writer at a time; a second ``BEGIN IMMEDIATE`` waits in SQLite's busy handler, which retries
    after sleeps of up to 100 ms and serves nobody in order: under a burst (fifty commands at once after a restart,
    each with its reply's bookkeeping) one writer could keep losing the race until the 30 s busy timeout, and its
    work then failed with "database is locked" (a reply stuck, a stop that could not cancel a thread in the busy
    handler). Only this process writes the bot's database (``storage.leader.FileLock``), so an asyncio lock in
    front of the BEGIN serves the writers in order and starts each the moment the one before it has ended. The
    busy timeout still guards against any other process (a CLI import beside the bot). The turn is taken when
    the BEGIN is sent, not when a session opens, so a task never waits on itself for a transaction it has not
    begun; it is kept until the connection goes back to the pool."""

    KEY = "zsm_writer_turn"

    def __init__(self) -> None:
        # One lock per event loop: tests and one-off commands run several loops over a process's life.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Writers waiting for their turn right now."""
        return self._waiting

    def enter(self, info: dict[str, Any]) -> None:
        if self.KEY in info:
            return  # this connection still has the turn (a Core connection that commits and goes on)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a synchronous caller in a thread of its own: SQLite's busy handler alone
            return
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        self._waiting += 1
        try:
            await_only(_acquire(lock, WRITER_WAIT_S))
        except TimeoutError:
            # As long as SQLite itself would have waited: its busy handler decides from here, as without the
            # queue (a transaction that never ends shows as "database is locked", not as a hang).
            log.warning("sqlite writer waited too long for its turn")
            return
        finally:
            self._waiting -= 1
        info[self.KEY] = lock

    def leave(self, info: dict[str, Any]) -> None:
        lock = info.pop(self.KEY, None)
        if lock is not None and lock.locked():
            lock.release()


async def _acquire(lock: asyncio.Lock, within_s: float) -> None:
    """``lock.acquire`` with a bound, in the caller's own task: a cancel (a command's timeout, a stop) then reaches
    the acquire itself, which never keeps a turn it was cancelled for (``asyncio.wait_for`` runs it in a task of
    its own, and a turn granted just as that task is cancelled would be lost, with every writer after it)."""
    async with asyncio.timeout(within_s):
        await lock.acquire()


_writer_queues: weakref.WeakKeyDictionary[Any, _WriterQueue] = weakref.WeakKeyDictionary()


def _writer_queue(engine: AsyncEngine) -> _WriterQueue:
    queue = _writer_queues.get(engine.sync_engine)
    if queue is None:
        queue = _writer_queues[engine.sync_engine] = _WriterQueue()
    return queue


def writers_waiting(engine: AsyncEngine) -> int:
    """SQLite: how many of this process's writers wait for their turn (0 on PostgreSQL, which has no queue)."""
    queue = _writer_queues.get(engine.sync_engine)
    return queue.waiting if queue is not None else 0


_READ_ONLY = "zsm_read_only"


# Keyed by the writers' factory, whose reader factory refers to the engine, never back to that key (keyed by the
# engine itself, the entry would keep its own key alive).
_readers: weakref.WeakKeyDictionary[SessionFactory, SessionFactory] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def read_only(sessions: SessionFactory) -> AsyncIterator[Tx]:
    """A session for readers only (reports, listings): its transaction never holds or waits for the write lock,
    so a year's report does not stall a ``!check``. It begins lazily, at the first query (a command that reads
    nothing costs nothing), and always ends in a rollback: there is nothing to commit."""
    readers = _readers.get(sessions)
    if readers is None:
        engine = sessions.kw["bind"]
        option = {"postgresql_readonly": True} if engine.dialect.name == "postgresql" else {_READ_ONLY: True}
        readers = _readers[sessions] = async_sessionmaker(engine.execution_options(**option), expire_on_commit=False)
    async with readers() as session:
        try:
            yield session
        finally:
            await session.rollback()


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(sessions: SessionFactory) -> None:
    """One round trip to the database (``SELECT 1``); raises when it cannot be reached. For the readiness probe."""
    async with sessions() as s:
        await s.execute(text("SELECT 1"))
