"""Benchmark: the management figures over one year of facts for 45 veiligheidshuizen (about 300,000 decisions).

Bulk-loads a year of anonymous facts (checks, hits, decisions, referrals, mails, advice requests and escalations
in proportion to the decisions) into a fresh SQLite file and a fresh PostgreSQL scratch database, then times
``compute_rapport`` for a week, a month, a quarter and the full year, for all houses and for one. Target: each
under 1 s. Also times the daily fold of one day of facts on top of the folded year. Prints the timings and
the figures of the year, so a change in the numbers shows too.

    python -m bench.rapport [--besluiten 300000] [--runs 3] [--alleen sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select, text

from bench.stats import print_config
from domain.rapport import Period, parse_period
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.rapport_queries import compute_rapport
from storage.statistiek_fold import fold_facts
from storage.statistiek_models import Feit, StatistiekFeit, record_facts

ADMIN_DSN = os.environ.get("ZSM_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
YEAR = 2026
VHS = [f"vh{i:02d}" for i in range(1, 46)]
COLUMNS = ("at", "kind", "veiligheidshuis", "minderjarig", "outcome", "duration_s", "step", "aantal")
SQLITE_INSERT = ("INSERT INTO statistiek_feit (at, kind, veiligheidshuis, minderjarig, outcome, duration_s, step, "
                 "aantal) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
PERIODS = ("2026-W20", "2026-05", "2026-Q2", "2026-01-01..2026-12-31")


def generate(besluiten: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """Facts in proportion to the decisions: 2 checks and 1.1 hits per decision, a feedback mail per decision
    (5% after a retry, 0.5% dead), 5% referrals, 4% advice requests with their acknowledgements, answers, expiries
    and escalations. Houses differ in size (a skewed weight), times are spread over the year."""
    rnd = random.Random(seed)
    start = datetime(YEAR, 1, 1, tzinfo=UTC) - timedelta(hours=1)
    span = (datetime(YEAR + 1, 1, 1, tzinfo=UTC) - timedelta(hours=1) - start).total_seconds()
    weights = [1.0 / (1 + i % 15) for i in range(len(VHS))]
    rows: list[tuple[Any, ...]] = []

    def at() -> datetime:
        return start + timedelta(seconds=rnd.random() * span)

    def vh() -> str:
        return rnd.choices(VHS, weights)[0]

    def add(kind: str, when: datetime, house: str | None, minor: bool = False, outcome: str | None = None,
            duration: float | None = None, step: str | None = None) -> None:
        rows.append((when, kind, house, minor, outcome, duration, step, 1))

    for _ in range(2 * besluiten):
        add("check", at(), None)
    for _ in range(int(1.1 * besluiten)):
        add("hit", at(), vh(), rnd.random() < 0.15)
    for _ in range(besluiten):
        when, house = at(), vh()
        add("besluit_bekend", when, house, rnd.random() < 0.15, rnd.choices(
            ("gevolgd", "afgeweken", "geen_advies"), (5, 2, 3))[0])
        r = rnd.random()
        if r < 0.005:
            add("mail_dood", when + timedelta(hours=2), house, outcome="terugkoppeling")
            continue
        delay = rnd.expovariate(1 / 900) + 300
        add("mail_afgeleverd", when + timedelta(seconds=delay), house, outcome="terugkoppeling", duration=delay)
        if r < 0.05:
            add("mail_herhaald", when + timedelta(seconds=delay), house, outcome="terugkoppeling")
    for _ in range(besluiten // 20):
        add("aanmelding", at(), vh())
    for _ in range(besluiten // 25):
        when, house = at(), vh()
        add("aanvraag_geopend", when, house)
        if rnd.random() < 0.9:
            add("aanvraag_bevestigd", when + timedelta(minutes=20), house, duration=1200.0)
        for step in ("herinnering", "backup", "teamleider", "ruimte")[: rnd.choice((0, 0, 1, 1, 2, 3, 4))]:
            add("escalatie", when + timedelta(hours=1), house, step=step)
        if rnd.random() < 0.85:
            took = rnd.expovariate(1 / 36000)
            add("aanvraag_beantwoord", when + timedelta(seconds=took), house,
                outcome="op_tijd" if took < 86400 else "te_laat", duration=took)
        else:
            add("aanvraag_verlopen", when + timedelta(days=1), house)
    rows.sort(key=lambda r: r[0])
    return rows


async def load(url: str, rows: list[tuple[Any, ...]]) -> tuple[float, float]:
    """Bulk-load the facts in time order (as the bot appends them), then fold them into day counts as the daily
    job would; returns (load seconds, fold seconds)."""
    engine = create_engine(url)
    began = time.perf_counter()
    try:
        await upgrade(engine)
        if url.startswith("postgresql"):
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                    "statistiek_feit", records=rows, columns=list(COLUMNS))
                await conn.commit()
        else:  # the driver directly, in SQLAlchemy's own storage format for SQLite datetimes
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                await raw.driver_connection.executemany(  # type: ignore[union-attr]
                    SQLITE_INSERT,
                    [(r[0].replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"), *r[1:]) for r in rows])
                await conn.commit()
        async with session_factory(engine)() as s:
            n = (await s.execute(select(func.count()).select_from(StatistiekFeit))).scalar_one()
        assert n == len(rows), (n, len(rows))
        loaded = time.perf_counter() - began
        began = time.perf_counter()
        async with session_factory(engine)() as s, s.begin():
            folded = await fold_facts(s, datetime.now(UTC))
        assert folded == len(rows), (folded, len(rows))
        if url.startswith("postgresql"):
            async with engine.connect() as conn:
                await conn.execute(text("ANALYZE"))
                await conn.commit()
    finally:
        await engine.dispose()
    return loaded, time.perf_counter() - began


async def measure(url: str, runs: int) -> list[tuple[str, str, float, float]]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    out = []
    try:
        for label in PERIODS:
            period: Period = parse_period(label)
            for scope in (None, VHS[0]):
                times = []
                for _ in range(runs):
                    async with sessions() as s:
                        began = time.perf_counter()
                        rapport = await compute_rapport(s, period, scope, VHS)
                        times.append(time.perf_counter() - began)
                out.append((label, scope or "alle", min(times), max(times)))
                if label == PERIODS[-1] and scope is None:
                    show(rapport.totaal)
    finally:
        await engine.dispose()
    return out


async def daily_fold(url: str, rows: list[tuple[Any, ...]]) -> tuple[int, float]:
    """One day's facts appended again on top of the folded year, then folded as the daily job does: how long the
    fold holds its transaction (on SQLite: the write lock every command waits for)."""
    day_start = datetime(YEAR, 6, 15, tzinfo=UTC) - timedelta(hours=2)
    day = [Feit(r[1], r[0], r[2], r[3], r[4], r[5], r[6]) for r in rows
           if day_start <= r[0] < day_start + timedelta(days=1)]
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s, s.begin():
            await record_facts(s, day)
        began = time.perf_counter()
        async with session_factory(engine)() as s, s.begin():
            await fold_facts(s, datetime.now(UTC))
        return len(day), time.perf_counter() - began
    finally:
        await engine.dispose()


def show(c: Any) -> None:
    def dur(s: float | None) -> str:
        return "-" if s is None else f"{s / 60:.1f} min"

    print(f"  jaar, alle huizen: checks {c.checks}, hits {c.hits_volwassen}+{c.hits_minderjarig} minderjarig, "
          f"besluiten bekend {c.besluiten_bekend} (gevolgd {c.advies_gevolgd}, afgeweken {c.advies_afgeweken}), "
          f"teruggekoppeld {c.terugkoppeling_afgeleverd} (mediaan {dur(c.terugkoppeling_mediaan_s)}, "
          f"p90 {dur(c.terugkoppeling_p90_s)}), aanmeldingen {c.aanmeldingen}")
    print(f"  aanvragen {c.aanvragen_geopend} (bevestigd {c.aanvragen_bevestigd}, op tijd {c.aanvragen_op_tijd}, "
          f"te laat {c.aanvragen_te_laat}, verlopen {c.aanvragen_verlopen}; mediaan {dur(c.respons_mediaan_s)}, "
          f"p90 {dur(c.respons_p90_s)}), escalaties {dict(c.escalaties)}, mail {c.mail_afgeleverd} afgeleverd, "
          f"{c.mail_herhaald} herhaald, {c.mail_dood} dood")


def report(name: str, load_s: tuple[float, float], results: list[tuple[str, str, float, float]]) -> bool:
    print(f"{name}: geladen in {load_s[0]:.1f} s, gevouwen tot dagtellingen in {load_s[1]:.1f} s")
    ok = True
    for label, scope, best, worst in results:
        flag = "" if worst < 1.0 else "  BOVEN 1 s"
        ok = ok and worst < 1.0
        print(f"  {label:<24} {scope:<5} snelst {best * 1000:7.0f} ms  traagst {worst * 1000:7.0f} ms{flag}")
    return ok


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--besluiten", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--alleen", choices=("sqlite", "postgresql"))
    args = ap.parse_args()
    print_config("bench.rapport", {"besluiten": args.besluiten, "runs": args.runs,
                                   "databases": args.alleen or "sqlite and postgresql", "target": "< 1 s per rapport"})
    began = time.perf_counter()
    rows = generate(args.besluiten)
    print(f"{len(rows)} feiten gemaakt voor {len(VHS)} veiligheidshuizen, {args.besluiten} besluiten "
          f"({time.perf_counter() - began:.1f} s)")
    ok = True
    if args.alleen != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'rapport.db'}"
            load_s = await load(url, rows)
            ok = report("SQLite", load_s, await measure(url, args.runs)) and ok
            print("  dagelijkse vouw: {} feiten in {:.2f} s".format(*await daily_fold(url, rows)))
    if args.alleen != "sqlite":
        name = f"zsm_bench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = ADMIN_DSN.rpartition("/")[0].replace("postgresql://", "postgresql+asyncpg://", 1)
            url = f"{base}/{name}"
            load_s = await load(url, rows)
            ok = report("PostgreSQL", load_s, await measure(url, args.runs)) and ok
            print("  dagelijkse vouw: {} feiten in {:.2f} s".format(*await daily_fold(url, rows)))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    print("doel (< 1 s per rapport) " + ("gehaald" if ok else "NIET gehaald"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
