"""SQLite spoken on the event loop's own thread, with this process's writers taking turns.

Why not aiosqlite's thread: it hands every call (open a cursor, execute, fetch, close) to a thread of its own and
wakes the loop for the answer, four hand-overs per statement. A ``!check`` of eleven statements spent most of its
10 ms in those hand-overs, where SQLite itself answers an indexed lookup or a one-row insert in tens of
microseconds. Here the statement runs where it is asked for, and only waiting is asynchronous:

- **Writers take turns in this process** (an ``asyncio.Lock`` per database file, first come first served) before
  ``BEGIN IMMEDIATE``. A writer that blocked the thread in SQLite's busy handler would also block the transaction
  it waits for, so the wait must be an ``await``; served in order, no writer starves under a burst either.
- **Another process's write lock** (a CLI import or purge beside the bot) is waited for with
  ``asyncio.sleep`` between attempts: the busy timeout of the connection is 0, and a statement that found the
  database locked did nothing and is simply tried again, up to :data:`BUSY_WAIT_S`.

A statement that runs long holds the loop for as long as it runs, as it held every other writer before: the
fold of the statistics works in batches; the daily purge's deletes run in one transaction, a moment at night.

The classes mimic the few parts of aiosqlite's interface that SQLAlchemy's aiosqlite dialect calls, so the
dialect, its type handling and its error translation stay SQLAlchemy's own (``async_creator``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url

# How long a statement waits for another process's write lock (or a writer here for its turn) before SQLite's
# own "database is locked": as long as the busy timeout of the threaded driver was.
BUSY_WAIT_S = 30.0
_FIRST_PAUSE_S = 0.001
_LONGEST_PAUSE_S = 0.05


class _Turns:
    """The writers of one database file in this process, one at a time, in order of asking."""

    def __init__(self) -> None:
        # One lock per event loop: tests and one-off commands run several loops over a process's life.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock


# Held by the engines' connection factories (``inline_creator``): an entry lives as long as some engine of this
# process may still open that file, and goes with the last of them (tests open thousands of files).
_turns: weakref.WeakValueDictionary[str, _Turns] = weakref.WeakValueDictionary()


def _turns_for(key: str) -> _Turns:
    found = _turns.get(key)
    if found is None:
        found = _turns[key] = _Turns()
    return found


def _locked(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


async def _retrying(call: Callable[[], Any], deadline: float) -> Any:
    """``call()`` until it does not find the database locked by another process, pausing between attempts."""
    pause = _FIRST_PAUSE_S
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not _locked(exc) or time.monotonic() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE_S)


class InlineCursor:
    """A cursor whose calls are coroutines that never leave the loop's thread (see the module's docstring)."""

    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection
        self._cursor = connection._db.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        if self._connection._begins_writer(sql):
            await self._connection._take_turn()
        deadline = time.monotonic() + BUSY_WAIT_S
        try:
            await _retrying(lambda: self._cursor.execute(sql, parameters), deadline)
        except BaseException:
            if not self._connection._db.in_transaction:
                self._connection._give_turn()
            raise
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        rows = list(parameters)
        await _retrying(lambda: self._cursor.executemany(sql, rows), time.monotonic() + BUSY_WAIT_S)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *_sizes: Any) -> None:
        return None


class _RunNow:
    """What SQLAlchemy's aiosqlite adapter puts a call on (``_tx.put_nowait((future, fn))``, for the isolation
    level): run here and now."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to the awaiting caller, as aiosqlite's thread would
            future.set_exception(exc)


class InlineConnection:
    """One SQLite connection used on the loop's thread (see the module's docstring)."""

    def __init__(self, db: sqlite3.Connection, turns: _Turns) -> None:
        self._db = db
        self._conn = db  # the name SQLAlchemy's adapter reaches for
        self._connection: sqlite3.Connection | None = db  # ditto: truthy while open
        self._tx = _RunNow()
        self._turns = turns
        self._turn: asyncio.Lock | None = None

    @staticmethod
    def _begins_writer(sql: str) -> bool:
        return sql.startswith("BEGIN IMMEDIATE") or sql.startswith("BEGIN EXCLUSIVE")

    async def _take_turn(self) -> None:
        if self._turn is not None:
            return
        lock = self._turns.lock()
        try:
            async with asyncio.timeout(BUSY_WAIT_S):
                await lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._turn = lock

    def _give_turn(self) -> None:
        lock, self._turn = self._turn, None
        if lock is not None and lock.locked():
            lock.release()

    @property
    def isolation_level(self) -> str | None:
        return self._db.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._db.isolation_level = value  # type: ignore[assignment]  # None or a BEGIN mode, as SQLAlchemy sets

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        return await InlineCursor(self).execute(sql, parameters)

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        """aiosqlite's bulk call, for a loader that speaks to the driver itself (the benchmarks' bulk loads)."""
        return await InlineCursor(self).executemany(sql, parameters)

    async def commit(self) -> None:
        try:
            await _retrying(self._db.commit, time.monotonic() + BUSY_WAIT_S)
        finally:
            if not self._db.in_transaction:
                self._give_turn()

    async def rollback(self) -> None:
        try:
            self._db.rollback()
        finally:
            self._give_turn()

    async def close(self) -> None:
        if self._connection is None:
            return
        try:
            self._db.close()
        finally:
            self._connection = None
            self._give_turn()

    def stop(self) -> None:
        """The forced close SQLAlchemy uses when a connection is thrown away outside a greenlet."""
        try:
            self._db.close()
        finally:
            self._connection = None
            self._give_turn()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._db.create_function(*args, **kwargs)


def inline_creator(url: str) -> Callable[[], Any]:
    """The ``async_creator`` of an engine for ``url``: its connect arguments read as SQLAlchemy's own dialect
    reads them (file, ``uri=true``, in-memory), busy timeout 0 (waiting is this module's, see above)."""
    parsed = make_url(url)
    args, kwargs = SQLiteDialect_aiosqlite().create_connect_args(parsed)
    kwargs = {**kwargs, "timeout": 0, "isolation_level": None, "check_same_thread": False}
    database = str(args[0]) if args else ":memory:"
    # A private in-memory database is a world of its own per engine; a file (or a named shared memory) is one
    # database for every engine of this process that opens it.
    key = f":memory:{id(parsed)}" if database in ("", ":memory:") else database
    turns = _turns_for(key)

    async def connect() -> InlineConnection:
        return InlineConnection(sqlite3.connect(database, **kwargs), turns)

    return connect
