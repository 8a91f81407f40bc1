"""The leadership a benchmark's runtime has: the one ``zsm-bot run`` has on the same database (``bot.matrix_main``).
On PostgreSQL that is the election (``storage.leader.PgLeader``), won before anything is measured, so every reply is
written under its fence and every claim is fenced, as in production; a benchmark with ``SOLO`` there would leave
that work out. On SQLite the bot has its file lock and no rival: ``SOLO``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.shutdown import cancel_within
from storage.db import is_sqlite
from storage.leader import SOLO, Leadership, PgLeader

ELECTION_TIMEOUT_S = 30.0


@asynccontextmanager
async def as_in_production(url: str) -> AsyncIterator[Leadership]:
    """The leadership for ``url``, active; the election stopped and its connection closed at the end."""
    if is_sqlite(url):
        yield SOLO
        return
    # Winning and giving up the lock are warnings in a bot's log (an operator wants to see a failover); here they are
    # the benchmark's own start and end.
    logging.getLogger("storage.leader").setLevel(logging.ERROR)
    leader = PgLeader(url)
    won = asyncio.Event()
    leader.add_listener(lambda active: won.set() if active else None)
    election = asyncio.create_task(leader.run(), name="election")
    try:
        async with asyncio.timeout(ELECTION_TIMEOUT_S):
            await won.wait()
        yield leader
    finally:
        await cancel_within([election])
        await leader.close()
