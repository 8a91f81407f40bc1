"""Who may act on a database: one active instance, any number of standbys.

PostgreSQL: the active instance holds a session-level advisory lock on a connection of its own. The lock lives
and dies with that connection (a SIGKILL, a cut network, a database restart all end it), so a standby that asks
for the lock every ``POLL_S`` takes over within a poll. Holding the lock is not enough to send: every claim of
queued work calls ``fence`` inside its own transaction, which asks PostgreSQL whether this process's lock
connection still holds the lock. An instance whose lock connection is gone claims nothing, so two instances that
both believe they are active for a moment still never take the same row (the row update and the fence commit
together; the other instance's update of that row waits for the commit and then finds it taken). A command's reply
is written already claimed, in the command's own transaction: that INSERT carries the fence as a condition
(``fence_clause``), so an instance without the lock writes it unclaimed, and the sender starts the send on that
fence only while it is fresh (``fence_lasts_s``, a fraction of the grace a successor waits before it takes over
claims); a reply that waited longer is claimed again, fenced anew.

Each PostgreSQL instance also claims its Matrix device (``DeviceClaim``): a second advisory lock, keyed by the
user and device id, held on a connection of its own for the life of the process. Two processes with the same
``matrix.device_id`` would fight over that device's keys; the second one refuses to start with one Dutch line.

SQLite: one process per database file. ``FileLock`` takes an OS lock on a file beside the database; a second
process refuses to start with one Dutch line. The lock goes with the process, whatever way it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Boolean, ColumnElement, Integer, column, exists, false, select, table, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from domain.errors import ConfigError
from storage.db import is_sqlite

log = logging.getLogger(__name__)

ACTIVE_LOCK = 0x5A534D01  # "ZSM" 1; below 2**31 so pg_locks shows it as objid with classid 0
POLL_S = 0.5
HEARTBEAT_S = 1.0
HEARTBEAT_TIMEOUT_S = 5.0
TAKEOVER_GRACE_S = 5.0


class NotActive(Exception):
    """This instance does not hold the active lock (any more): it must not claim work."""


class Leadership(Protocol):
    """What the queues and the sync loop ask: am I active, and (inside a claim's transaction) still so?"""

    @property
    def active(self) -> bool: ...

    @property
    def takeover_grace_s(self) -> float:
        """How long a new active instance waits before it takes over the rows its predecessor had claimed: long
        enough for a send already on the wire to finish and be recorded."""

    @property
    def fence_lasts_s(self) -> float:
        """How long after a passed fence this instance may still start a send on it, without fencing again: a new
        active instance takes over a predecessor's claims only ``takeover_grace_s`` after it won the lock, so a
        send started this soon after the fence has the rest of that grace to finish and be recorded."""

    async def fence(self, session: AsyncSession) -> None: ...

    def fence_clause(self) -> ColumnElement[bool] | None:
        """The fence as a condition inside the statement that writes a claim (a command's reply is written already
        claimed, ``storage.outgoing.insert_one``): true while this instance holds the active lock. None when
        there is no rival to fence out."""

    def add_listener(self, listener: Callable[[bool], None]) -> None: ...


class Solo:
    """A single process that needs no election: the console, tests, the SQLite bot once ``FileLock`` is taken."""

    active = True
    takeover_grace_s = 0.0  # no predecessor can still be running
    fence_lasts_s = math.inf  # nor any rival

    async def fence(self, session: AsyncSession) -> None:
        return None

    def fence_clause(self) -> ColumnElement[bool] | None:
        return None

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        return None


SOLO = Solo()


def database_unreachable(exc: BaseException) -> bool:
    """A failure of the connection, not of the statement: worth retrying once the database is back."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | OSError | ConnectionError | TimeoutError)


class FileLock:
    """The SQLite bot's claim on its database file; ``acquire`` refuses a second process."""

    def __init__(self, database_url: str) -> None:
        path = database_url.split(":///", 1)[-1].split("?", 1)[0]
        self.path = Path(path + ".lock")
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 (held open for the life of the process)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise ConfigError(f"database: er draait al een zsm-bot op {self.path.with_suffix('')}; stop die eerst "
                              "(met SQLite kan er maar één tegelijk draaien; voor een standby is PostgreSQL nodig)"
                              ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


_pg_locks = table("pg_locks", column("locktype"), column("classid", Integer), column("objid", Integer),
                  column("objsubid", Integer), column("granted", Boolean), column("pid", Integer))


@functools.lru_cache(maxsize=16)
def _holds_active_lock(pid: int) -> ColumnElement[bool]:
    """Does the backend ``pid`` (this process's lock connection) hold the active lock right now. One expression per
    pid, built once: every reply is written under it (``storage.outgoing``), which caches its statement by it."""
    return exists().where(_pg_locks.c.locktype == "advisory", _pg_locks.c.classid == 0,
                          _pg_locks.c.objid == ACTIVE_LOCK, _pg_locks.c.objsubid == 1, _pg_locks.c.granted,
                          _pg_locks.c.pid == pid)


_NOT_ACTIVE = false()


class PgLeader:
    """The PostgreSQL election: ``run`` asks for the lock until it has it, then keeps its connection alive; when
    that connection fails the instance is standby again and asks anew (after an outage it may win back)."""

    def __init__(self, database_url: str) -> None:
        if is_sqlite(database_url):
            raise ValueError("PgLeader needs PostgreSQL")
        self._engine = create_async_engine(database_url, poolclass=NullPool)
        self._pid: int | None = None
        self._listeners: list[Callable[[bool], None]] = []
        self.won = 0  # how often this process became active (figures, tests)
        self.takeover_grace_s = TAKEOVER_GRACE_S
        self.heartbeat_s = HEARTBEAT_S

    @property
    def active(self) -> bool:
        return self._pid is not None

    @property
    def fence_lasts_s(self) -> float:
        return self.takeover_grace_s / 4

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        self._listeners.append(listener)

    def _set(self, pid: int | None) -> None:
        was = self.active
        self._pid = pid
        if was != self.active:
            if self.active:
                self.won += 1
            log.warning("leadership", extra={"active": self.active})
            for listener in list(self._listeners):
                listener(self.active)

    async def fence(self, session: AsyncSession) -> None:
        pid = self._pid
        if pid is None or not await session.scalar(select(_holds_active_lock(pid))):
            raise NotActive

    def fence_clause(self) -> ColumnElement[bool] | None:
        pid = self._pid
        return _NOT_ACTIVE if pid is None else _holds_active_lock(pid)

    async def run(self) -> None:
        while True:
            conn: AsyncConnection | None = None
            lost: int | None = None
            try:
                conn = await asyncio.wait_for(self._engine.connect(), HEARTBEAT_TIMEOUT_S)
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                pid = int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0)
                # A connection that dies silently (a cut cable, not a closed socket) must not keep the lock on the
                # server for the kernel's default two hours: the server probes it within half a minute.
                for setting in ("tcp_keepalives_idle = 10", "tcp_keepalives_interval = 5", "tcp_keepalives_count = 3"):
                    await conn.execute(text(f"SET {setting}"))
                await self._wait_for_lock(conn)
                self._set(pid)
                while True:
                    await asyncio.sleep(self.heartbeat_s)
                    await asyncio.wait_for(conn.scalar(text("SELECT 1")), HEARTBEAT_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.active:
                    log.error("active lock lost", extra={"error": type(exc).__name__})
            finally:
                lost = self._pid
                self._set(None)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), HEARTBEAT_TIMEOUT_S)
            if lost is not None:
                await self._end_backend(lost)
            await asyncio.sleep(POLL_S)

    async def _end_backend(self, pid: int) -> None:
        """Our lock connection failed from this side, but its server process may live on and keep the lock
        (from the server's view nothing broke): end it over a new connection, so a standby can take over now.
        When the database cannot be reached either, keepalives end it."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(HEARTBEAT_TIMEOUT_S), self._engine.connect() as conn:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    @staticmethod
    async def _wait_for_lock(conn: AsyncConnection) -> None:
        """Ask every POLL_S (a blocking ``pg_advisory_lock`` would not notice a dead connection of its own)."""
        while True:
            got = await asyncio.wait_for(
                conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": ACTIVE_LOCK}), HEARTBEAT_TIMEOUT_S)
            if got:
                return
            await asyncio.sleep(POLL_S)

    async def close(self) -> None:
        await self._engine.dispose()


def device_lock_key(user_id: str, device_id: str) -> int:
    """A signed 64-bit advisory-lock key for one Matrix device (a hash: the election's small key cannot collide
    with it but by a 1 in 2**63 chance)."""
    digest = hashlib.sha256(f"zsm-bot device {user_id} {device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class DeviceInUse(ConfigError):
    """Another live process on this database runs with the same Matrix device."""


class DeviceClaim:
    """This process's claim on its Matrix device, on PostgreSQL: an advisory lock on a connection of its own, so it
    is held exactly while the process (and its connection) lives; a killed process frees it at once.

    ``acquire`` at start refuses a second process with the same device. ``run`` keeps the connection alive and, if it
    is lost (a database outage), takes the lock again once the database is back; should another process have taken
    the device meanwhile, it says so in the log (it cannot stop what already runs)."""

    def __init__(self, database_url: str, user_id: str, device_id: str) -> None:
        if is_sqlite(database_url):
            raise ValueError("DeviceClaim needs PostgreSQL (SQLite allows one process per database file)")
        self.device_id = device_id
        self.key = device_lock_key(user_id, device_id)
        self._engine = create_async_engine(database_url, poolclass=NullPool)
        self._conn: AsyncConnection | None = None

    def _refusal(self) -> DeviceInUse:
        return DeviceInUse(
            f"matrix.device_id: er draait al een zsm-bot met apparaat {self.device_id!r} op deze database; geef elk "
            "exemplaar een eigen matrix.device_id en store_path")

    async def _take(self) -> bool:
        conn = await asyncio.wait_for(self._engine.connect(), HEARTBEAT_TIMEOUT_S)
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = bool(await asyncio.wait_for(
                conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}), HEARTBEAT_TIMEOUT_S))
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def acquire(self) -> None:
        """Claim the device, or raise ``DeviceInUse`` while another live process holds it."""
        if not await self._take():
            raise self._refusal()
        log.info("device claimed", extra={"device": self.device_id})

    async def run(self) -> None:
        while True:
            try:
                if self._conn is None and not await self._take():
                    log.error("device claimed by another process", extra={"device": self.device_id})
                while self._conn is not None:
                    await asyncio.sleep(HEARTBEAT_S)
                    await asyncio.wait_for(self._conn.scalar(text("SELECT 1")), HEARTBEAT_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("device claim connection lost", extra={"error": type(exc).__name__})
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self._conn.close(), HEARTBEAT_TIMEOUT_S)
                self._conn = None
            await asyncio.sleep(POLL_S * 4)

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        await self._engine.dispose()
