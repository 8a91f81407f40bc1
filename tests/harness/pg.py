"""PostgreSQL for tests: the server on this machine (127.0.0.1:5432, trust auth, database ``test``).

Each test gets its own fresh database. Under CI (``CI=true``) a missing server fails the run; elsewhere the
PostgreSQL variants are skipped with the reason printed.
"""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest

ADMIN_DSN = os.environ.get("ZSM_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _url_for(dbname: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + dbname


async def server_available() -> str | None:
    try:
        conn = await asyncpg.connect(ADMIN_DSN, timeout=3)
    except Exception as exc:
        return f"PostgreSQL not reachable at {ADMIN_DSN}: {type(exc).__name__}"
    await conn.close()
    return None


async def create_database() -> tuple[str, str]:
    """Returns (SQLAlchemy URL, database name)."""
    problem = await server_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (CI=true: PostgreSQL tests must run)")
        pytest.skip(problem)
    name = f"zsm_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _url_for(name), name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def end_backend(pid: int) -> None:
    """End one server connection from the server side, as a network cut or a database restart would (a leader's
    lock connection: ``PgLeader._pid``)."""
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()
