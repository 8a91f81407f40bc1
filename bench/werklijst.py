"""Benchmark: ``!werklijst`` and the feedback coverage over a quarter of arrivals.

Bulk-loads known persons who came in (``binnenkomst``, one to three arrivals each, over 90 days, 14 houses) and
decisions on 60% of them into a fresh SQLite file, then times the werklijst query (``open_arrivals``, the 200 oldest
without a decision) and ``compute_rapport`` for the quarter (which now also counts persons and coverage), each next
to a bare ``SELECT count(*)`` over the same table in the same run. Prints the timings and the coverage figure.

    python -m bench.werklijst [--personen 50000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from domain.rapport import buckets, parse_period, pieces
from storage.besluit_models import BesluitRow
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.rapport_queries import PIECE_DAYS, compute_rapport
from storage.werklijst_models import Binnenkomst
from storage.werklijst_queries import first_arrivals, open_arrivals

VHS = ("utrecht", "eemland", "flevoland", "twente", "ijsselland", "gelderland-midden", "gelderland-zuid",
       "noord-oost-gelderland", "markiezaten", "midden-brabant", "breda", "zeeland", "rotterdam",
       "zuid-holland-zuid")
START = datetime(2026, 10, 1, tzinfo=UTC)


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--personen", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(14)
    arrivals, decisions = [], []
    for i in range(args.personen):
        subject = f"{i:064x}"
        vh = rng.choice(VHS)
        first = START + timedelta(seconds=rng.randrange(90 * 86400))
        for k in range(rng.choice((1, 1, 2, 3))):
            arrivals.append({"subject": subject, "masked": f"BSN ******{i % 1000:03d}", "veiligheidshuis": vh,
                             "via": "check", "came_in_at": first + timedelta(hours=k)})
        if rng.random() < 0.6:
            decisions.append({"subject": subject, "zaak": "", "afdoening": "osb", "reclassering": False,
                              "mondeling": False, "status": "actief", "decided_by": "@ovj:bench", "role": "ovj",
                              "decided_at": first + timedelta(hours=2), "event_id": f"$b{i}", "room_id": "!r:b"})
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await upgrade(engine)
        sessions = session_factory(engine)
        async with sessions() as s, s.begin():
            await s.execute(insert(Binnenkomst), arrivals)
            await s.execute(insert(BesluitRow), decisions)
        quarter = parse_period("2026-Q4")
        timings: dict[str, list[float]] = {"baseline count(*)": [], "open_arrivals (200 oudste)": [],
                                           "compute_rapport kwartaal": [], "  waarvan dekking": []}
        for _ in range(args.runs):
            async with sessions() as s:
                t = time.perf_counter()
                await s.scalar(select(func.count()).select_from(Binnenkomst))
                timings["baseline count(*)"].append(time.perf_counter() - t)
                t = time.perf_counter()
                rows = await open_arrivals(s, before=START + timedelta(days=91))
                timings["open_arrivals (200 oudste)"].append(time.perf_counter() - t)
                t = time.perf_counter()
                rapport = await compute_rapport(s, quarter, None, VHS)
                timings["compute_rapport kwartaal"].append(time.perf_counter() - t)
                t = time.perf_counter()
                for _, piece in pieces(buckets(quarter), PIECE_DAYS):
                    await first_arrivals(s, piece.start, piece.end, None)
                timings["  waarvan dekking"].append(time.perf_counter() - t)
        await engine.dispose()
    print(f"{args.personen} personen, {len(arrivals)} binnenkomsten, {len(decisions)} besluiten (SQLite)")
    for name, values in timings.items():
        print(f"  {name:<30} mediaan {statistics.median(values) * 1000:8.1f} ms")
    c = rapport.totaal
    print(f"  werklijst: {len(rows)} regels; dekking {c.personen_teruggekoppeld}/{c.personen_bekend}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
