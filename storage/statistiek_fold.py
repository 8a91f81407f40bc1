"""Folding facts into day counts: keeps a year's report fast without touching the write path of the commands.

Commands only append facts (no hot counter row that every transaction would have to lock). Once a day the bot folds
every fact into ``statistiek_dag`` (count and durations per Amsterdam day and key) and deletes it, in one
transaction. The report adds the day rows to the facts not yet folded, so the figures are the same before and after
a fold, and a late correction (a -1 at an earlier decision's time) is simply folded into that day the next time.
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
            .order_by(t.id).limit(BATCH)
        )).all()
        if not rows:
            return folded
        sums: dict[DayKey, int] = defaultdict(int)
        durations: dict[DayKey, list[str]] = defaultdict(list)
        for r in rows:
            day = r.at.astimezone(AMSTERDAM).date()
            key = (day, r.kind, r.veiligheidshuis or "", r.outcome or "", bool(r.minderjarig), r.step or "")
            sums[key] += r.aantal
            if r.duration_s is not None:
                durations[key].append(f"{r.duration_s:.3f}")
        days = sorted({k[0] for k in sums})
        existing = {
            (d.dag, d.kind, d.veiligheidshuis, d.outcome, bool(d.minderjarig), d.step): d
            for d in (await session.execute(select(StatistiekDag).where(StatistiekDag.dag.in_(days)))).scalars()
        }
        for key, n in sums.items():
            more = ",".join(durations[key]) if key in durations else None
            if key in existing:
                row = existing[key]
                row.aantal += n
                if more:
                    row.duren = f"{row.duren},{more}" if row.duren else more
            else:
                session.add(StatistiekDag(dag=key[0], kind=key[1], veiligheidshuis=key[2], outcome=key[3],
                                          minderjarig=key[4], step=key[5], aantal=n, duren=more))
        await session.flush()
        # By id, never by range: a fact committed meanwhile by a command with a lower id is not in this batch.
        await session.execute(delete(t).where(t.id.in_([r.id for r in rows]))
                              .execution_options(synchronize_session=False))
        folded += len(rows)
