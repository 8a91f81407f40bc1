"""Engine and sessions for SQLite (embedded default) and PostgreSQL.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for every transaction: a deferred transaction that
reads and later writes can fail with SQLITE_BUSY_SNAPSHOT, which no busy timeout retries, and the bot's
transactions almost always write (the inbox row, the audit record). The exception is ``read_only``: a reader
(a report, a listing, a queue poll) gets a plain deferred ``BEGIN`` on SQLite, which in WAL mode neither takes
nor waits for the write lock, and ``READ ONLY`` on PostgreSQL, where a write in there fails.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from storage.sqlite_inline import inline_creator

SessionFactory = async_sessionmaker[AsyncSession]

# The transaction handle a use case works in (re-exported as ``services.base.Tx``): outside storage/ it is only
# passed along, never used to speak SQL, so no module there needs the database library.
Tx: TypeAlias = AsyncSession
# An engine, as the adapters that own a second database (the shared registry) hold it without the library.
Engine: TypeAlias = AsyncEngine


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False, pooled: bool = True) -> AsyncEngine:
    """``pooled=False``: every session opens its connection and closes it at the end, for a process that opens the
    database now and then (the report worker) and must not keep connections or their threads between uses."""
    if is_sqlite(url):
        engine = create_async_engine(url, echo=echo, async_creator=inline_creator(url),
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
        cur.execute("PRAGMA busy_timeout=0")  # waits are awaited, not slept on the loop (storage.sqlite_inline)
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Not PRAGMA query_only for readers: it belongs to the pooled connection, and switching it back and forth
        # would cost writers a statement whenever their connection last served a reader. PostgreSQL's READ ONLY
        # (the tests run on both databases) is what catches a reader that writes.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")


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
