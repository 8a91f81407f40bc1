"""Folding facts into day counts: keeps a year's report fast without touching the write path of the commands.

Commands only append facts (no hot counter row that every transaction would have to lock). Once a day the bot folds
every fact not yet folded into ``statistiek_dag`` (counts per Amsterdam day and key) and then deletes it; a fact
that carries a duration stays as an observation for medians with ``aantal = 0``, so it is never counted twice.
The report adds the day counts to the facts still unfolded, so the figures are the same before and after a fold,
and a late correction (a -1 at an earlier decision's time) is simply folded into that day the next time.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.clock import AMSTERDAM
from storage.models import BotState
from storage.statistiek_models import StatistiekDag, StatistiekFeit

LOCK_KEY = "statistiek.vouwen"
BATCH = 10_000  # ids per statement stay under the bound-parameter limits of SQLite and asyncpg

DayKey = tuple[date, str, str, str, bool, str]


async def _lock(session: AsyncSession, now: datetime) -> None:
    """Take the fold's lock first, with a write: a second fold waits (PostgreSQL row lock, SQLite write lock)
    instead of reading the same facts and counting them again."""
    result = await session.execute(
        update(BotState).where(BotState.key == LOCK_KEY).values(value="bezig", updated_at=now))
    if not result.rowcount:  # type: ignore[attr-defined]
        session.add(BotState(key=LOCK_KEY, value="bezig", updated_at=now))
        await session.flush()


async def fold_facts(session: AsyncSession, now: datetime) -> int:
    """Fold every unfolded fact, in batches, inside the caller's transaction. Returns how many were folded."""
    await _lock(session, now)
    t = StatistiekFeit
    folded = 0
    while True:
        rows = (await session.execute(
            select(t.id, t.at, t.kind, t.veiligheidshuis, t.outcome, t.minderjarig, t.step, t.aantal, t.duration_s)
            .where(t.aantal != 0).order_by(t.id).limit(BATCH)
        )).all()
        if not rows:
            return folded
        sums: dict[DayKey, int] = defaultdict(int)
        keep: list[int] = []
        for r in rows:
            day = r.at.astimezone(AMSTERDAM).date()
            sums[(day, r.kind, r.veiligheidshuis or "", r.outcome or "", bool(r.minderjarig), r.step or "")] += r.aantal
            if r.duration_s is not None:
                keep.append(r.id)
        days = sorted({k[0] for k in sums})
        existing = {
            (d.dag, d.kind, d.veiligheidshuis, d.outcome, bool(d.minderjarig), d.step): d
            for d in (await session.execute(select(StatistiekDag).where(StatistiekDag.dag.in_(days)))).scalars()
        }
        for key, n in sums.items():
            if key in existing:
                existing[key].aantal += n
            else:
                session.add(StatistiekDag(dag=key[0], kind=key[1], veiligheidshuis=key[2], outcome=key[3],
                                          minderjarig=key[4], step=key[5], aantal=n))
        await session.flush()
        # By id, never by range: a fact committed meanwhile by a command with a lower id is not in this batch.
        gone = [r.id for r in rows if r.duration_s is None]
        if gone:
            await session.execute(delete(t).where(t.id.in_(gone)).execution_options(synchronize_session=False))
        if keep:
            await session.execute(update(t).where(t.id.in_(keep)).values(aantal=0)
                                  .execution_options(synchronize_session=False))
        folded += len(rows)
