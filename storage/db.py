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
import sqlite3
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

from sqlalchemy import URL, event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from storage.sqlite_inline import inline_creator

log = logging.getLogger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]

# The transaction handle a use case works in (re-exported as ``services.base.Tx``): outside storage/ it is only
# passed along, never used to speak SQL, so no module there needs the database library.
Tx: TypeAlias = AsyncSession
# An engine, as the adapters that own a second database (the shared registry) hold it without the library.
Engine: TypeAlias = AsyncEngine


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False, pooled: bool = True,
                  checkpoints_apart: bool = False) -> AsyncEngine:
    """``pooled=False``: every session opens its connection and closes it at the end, for a process that opens the
    database now and then (the report worker) and must not keep connections or their threads between uses.

    ``checkpoints_apart`` (SQLite): the engine's commits never copy the write-ahead log into the database file
    themselves; the owner runs a :class:`WalCheckpointer` instead (the bot; see there)."""
    if is_sqlite(url):
        engine = create_async_engine(url, echo=echo, async_creator=inline_creator(url),
                                     **({} if pooled else {"poolclass": NullPool}))
        _tune_sqlite(engine, autocheckpoint=not checkpoints_apart)
        return engine
    if not pooled:
        return create_async_engine(url, echo=echo, poolclass=NullPool)
    # No pre-ping: it was a round trip on every checkout, one in eleven of a ``!check``. A connection that died with
    # the server fails its first statement instead; SQLAlchemy then drops every older connection of the pool, and
    # the command is held and handled again once the database answers (bot.transport's outage recovery).
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=5)


def url_elsewhere(sessions: SessionFactory) -> str | None:
    """The URL on which another process reaches the database of ``sessions``, password included (it goes to a
    child process over a pipe, never to a log), or None when only this process can: an in-memory SQLite database
    lives inside the connection that made it."""
    url = sessions.kw["bind"].url
    if url.get_backend_name() == "sqlite" and sqlite_file(url) is None:
        return None
    return str(url.render_as_string(hide_password=False))


def _tune_sqlite(engine: AsyncEngine, *, autocheckpoint: bool) -> None:
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
        if not autocheckpoint:
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Not PRAGMA query_only for readers: it belongs to the pooled connection, and switching it back and forth
        # would cost writers a statement whenever their connection last served a reader. PostgreSQL's READ ONLY
        # (the tests run on both databases) is what catches a reader that writes.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")


_READ_ONLY = "zsm_read_only"


# Keyed by the writers' factory, whose variants refer to the engine, never back to that key (keyed by the engine
# itself, the entry would keep its own key alive); then by the options.
_variants: weakref.WeakKeyDictionary[SessionFactory, dict[tuple[tuple[str, Any], ...], SessionFactory]] = (
    weakref.WeakKeyDictionary())


def sessions_with(sessions: SessionFactory, **options: Any) -> SessionFactory:
    """Sessions on the engine and pool of ``sessions`` with other execution options (readers, a transaction-less
    writer), made once per factory and options: the hot paths ask for them on every use."""
    variants = _variants.setdefault(sessions, {})
    key = tuple(sorted(options.items()))
    made = variants.get(key)
    if made is None:
        made = variants[key] = session_factory(sessions.kw["bind"].execution_options(**options))
    return made


def autocommits(engine: Any) -> bool:
    """Whether statements on this engine (sync or async) are each their own transaction (``sessions_with(...,
    isolation_level="AUTOCOMMIT")``)."""
    return bool(engine.get_execution_options().get("isolation_level") == "AUTOCOMMIT")


def without_transaction(session: AsyncSession) -> bool:
    """Whether this session's statements are each their own transaction (``storage.audit.one_statement_sessions``)."""
    return autocommits(session.bind)


@asynccontextmanager
async def read_only(sessions: SessionFactory) -> AsyncIterator[Tx]:
    """A session for readers only (reports, listings): its transaction never holds or waits for the write lock,
    so a year's report does not stall a ``!check``. It begins lazily, at the first query (a command that reads
    nothing costs nothing), and always ends in a rollback: there is nothing to commit."""
    postgres = sessions.kw["bind"].dialect.name == "postgresql"
    readers = sessions_with(sessions, **({"postgresql_readonly": True} if postgres else {_READ_ONLY: True}))
    async with readers() as session:
        try:
            yield session
        finally:
            await session.rollback()


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(sessions: SessionFactory) -> None:
    """One round trip to the database (``SELECT 1``); raises when it cannot be reached. For the readiness probe."""
    async with read_only(sessions) as s:  # a probe never waits for a writer's turn
        await s.execute(text("SELECT 1"))


class WalCheckpointer:
    """Copies SQLite's write-ahead log into the database file on a thread of its own, every ``interval_s``.

    By default the commit that fills the log past 1,000 pages does that copy itself, with an fsync, on the event
    loop's thread (``storage.sqlite_inline``): a few milliseconds, now and then, on some command's path, which was
    most of the slowest percent of ``!check``. The bot's connections leave it (``checkpoints_apart``) to this loop,
    whose PASSIVE checkpoint never waits for or blocks a reader or writer; SQLite releases the interpreter while it
    runs. A final one runs when the last connection closes, as ever."""

    def __init__(self, path: str, interval_s: float = 1.0) -> None:
        self._path = path
        self.interval_s = interval_s
        self._db: sqlite3.Connection | None = None
        # One thread of its own: a checkpoint still running when the loop stops waiting for it (a stop cancels
        # the wait, not the thread) is followed there by the close, never overlapped by it.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-checkpoint")
        self.runs = 0

    def _checkpoint(self) -> tuple[int, int]:
        if self._db is None:
            self._db = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
        _busy, in_log, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1
        return int(in_log), int(copied)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def checkpoint(self) -> tuple[int, int]:
        """One checkpoint now: (pages in the log, pages copied into the file)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._checkpoint)

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.interval_s)
                try:
                    await self.checkpoint()
                except sqlite3.Error as exc:  # the next round tries again; the log only grows meanwhile
                    log.warning("wal checkpoint failed", extra={"error": type(exc).__name__})
        finally:
            self.close()

    def close(self) -> None:
        """The connection closed on the checkpoint's own thread, after whatever runs there now; not waited for."""
        self._thread.submit(self._close)
        self._thread.shutdown(wait=False)


def sqlite_file(url: str | URL) -> str | None:
    """The file of a SQLite URL; None for an in-memory database, which lives inside the connection that made it
    (no other process reaches it, and it has no write-ahead log)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:") or parsed.query.get("mode") == "memory":
        return None
    return database
