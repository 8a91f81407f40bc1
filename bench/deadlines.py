"""Benchmark: 10,000 open requests whose escalation steps fall due over a few minutes.

Runs the real runtime (APScheduler ticker -> ``process_due``, the durable send queue draining to a counting
transport) on SQLite by default, or on the database given with ``--db``. Prints:

* lag between a step's due time and its committed action (p50, p99, max; target p99 < 1 s);
* time to recover after a restart with 10,000 open requests: once with nothing overdue, once after a downtime
  in which one step of every request fell due (all carried out at once, marked late; target < 5 s).

    python -m bench.deadlines [--requests 10000] [--spread 180] [--tick S] [--db URL]

Without ``--tick`` it runs with the shipped configuration (``tik_seconden`` unset: the default).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bench.leader import as_in_production
from bench.stats import pct, print_config
from bot.runtime import Runtime
from config.settings import load_settings
from domain import aanvraag as rules
from domain.aanvraag import AanvraagConfig
from domain.clock import SystemClock
from services.aanvraag import AanvraagService
from storage.aanvraag_models import AanvraagStap, AdviesAanvraag, DienstRooster
from storage.leader import Leadership
from storage.models import OutgoingMessage
from tests.harness.config import write_config

ONCALL = "!dienst-utrecht:localhost"


class CountingTransport:
    def __init__(self) -> None:
        self.sent = 0

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        self.sent += 1
        return f"$bench-{txn_id}"

    async def redact(self, room_id: str, event_id: str, reason: str, txn_id: str) -> None:
        """Nothing in this benchmark carries case data long enough to be redacted."""


async def seed(runtime: Runtime, n: int, first_due: datetime, spread_s: float) -> None:
    """n open requests, each with one escalation step due within the spread and its expiry a day later."""
    now = datetime.now(UTC)
    chain = rules.Chain((rules.ChainStep("herinnering", timedelta(minutes=1)),)).to_json()
    async with runtime.sessions() as s, s.begin():
        await s.execute(insert(DienstRooster), [{
            "veiligheidshuis": "utrecht", "user_id": "@dienst:localhost", "backup_id": "@backup:localhost",
            "starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=2), "source": "bench",
            "uid": None, "created_by": "bench", "created_at": now}])
        batch = 2000
        for offset in range(0, n, batch):
            reqs = [{
                "veiligheidshuis": "utrecht", "bsn": "123456782", "person_kind": "bsn", "person_value": "123456782",
                "doelgroep": "huiselijk geweld", "vraag": None, "state": rules.OPEN, "requested_by": "@kpc:localhost",
                "room_id": "!console:local", "event_id": f"$bench-{i}", "oncall_room": ONCALL, "term_text": "24u",
                "opened_at": now, "deadline": now + timedelta(days=1), "chain": chain, "office_hours": True,
            } for i in range(offset, min(n, offset + batch))]
            await s.execute(insert(AdviesAanvraag), reqs)
        ids = list((await s.execute(select(AdviesAanvraag.id).order_by(AdviesAanvraag.id))).scalars())
        steps: list[dict[str, Any]] = []
        for k, rid in enumerate(ids):
            due = first_due + timedelta(seconds=spread_s * k / max(1, n - 1))
            steps.append({"aanvraag_id": rid, "seq": 1, "kind": "herinnering", "due_at": due, "done_at": None,
                          "late": False, "outcome": None})
            steps.append({"aanvraag_id": rid, "seq": 2, "kind": "verlopen", "due_at": now + timedelta(days=1),
                          "done_at": None, "late": False, "outcome": None})
        for offset in range(0, len(steps), 5000):
            await s.execute(insert(AanvraagStap), steps[offset:offset + 5000])


async def pending_steps(runtime: Runtime, before: datetime) -> int:
    async with runtime.sessions() as s:
        n = await s.scalar(select(func.count()).select_from(AanvraagStap).where(
            AanvraagStap.done_at.is_(None), AanvraagStap.due_at <= before))
        await s.rollback()
    return int(n or 0)


async def make_runtime(cfg: Path, transport: CountingTransport, leader: Leadership) -> tuple[Runtime, float]:
    runtime = Runtime(load_settings(cfg), clock=SystemClock(), leader=leader)
    service: AanvraagService = runtime.aanvraag
    service.keep_lags = True
    started = time.perf_counter()
    await runtime.start(transport, http=False)  # recovery (process_due for everything overdue) happens here
    elapsed = time.perf_counter() - started
    assert runtime.sender
    task = asyncio.create_task(runtime.sender.run())  # the backend runs the send loop; here we do

    async def stop() -> None:
        task.cancel()

    runtime._stack.push_async_callback(stop)
    return runtime, elapsed


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="zsm-bench-"))
    db = args.db or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    # One election for the whole run, won before it starts: the restarts below measure the bot's own start and
    # recovery (in production the lock of a restarted bot may be won at once, or after a standby's turn).
    async with as_in_production(db) as leader:
        await _run(args, tmp, db, leader)


async def _run(args: argparse.Namespace, tmp: Path, db: str, leader: Leadership) -> None:
    aanvraag: dict[str, Any] = {"vh.utrecht.doelgroepen": ["huiselijk geweld"], "vh.utrecht.room": ONCALL}
    if args.tick is not None:
        aanvraag["tik_seconden"] = args.tick
    cfg = write_config(tmp, db, sections={"aanvraag": aanvraag})
    transport = CountingTransport()
    runtime, _ = await make_runtime(cfg, transport, leader)
    tick = runtime.aanvraag.config.tick_seconds
    print_config("bench.deadlines", {
        "requests": args.requests, "spread_s": args.spread, "database": db.split(":", 1)[0],
        "tick_s": f"{tick} ({'shipped default' if args.tick is None else 'set by --tick'}; "
                  f"shipped {AanvraagConfig.tick_seconds})",
        "recovery": "runtime.start (process_due in batches, as shipped)", "transport": "counting, no network",
        "leadership": "as zsm-bot run has it (PostgreSQL: the election won, the ticker's batches fenced)"})
    first_due = datetime.now(UTC) + timedelta(seconds=10)
    t0 = time.perf_counter()
    await seed(runtime, args.requests, first_due, args.spread)
    print(f"seeded {args.requests} open requests in {time.perf_counter() - t0:.1f} s; steps due from "
          f"+10 s over {args.spread:.0f} s; ticker every {tick} s; db {db.split(':', 1)[0]}")
    end = first_due + timedelta(seconds=args.spread)
    while datetime.now(UTC) < end or await pending_steps(runtime, end) > 0:
        await asyncio.sleep(1.0)
    service: AanvraagService = runtime.aanvraag
    lags = list(service.lags)
    print(f"steps carried out: {len(lags)}; lag due -> committed action: p50 {statistics.median(lags) * 1000:.0f} ms,"
          f" p99 {pct(lags, 99) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms; "
          f"target p99 < 1 s: {'OK' if pct(lags, 99) < 1 else 'MISSED'}")
    assert runtime.sender
    drain_t = time.perf_counter()
    while await runtime.sender.pending_count():
        await asyncio.sleep(0.5)
    print(f"send queue drained {transport.sent} messages "
          f"(+{time.perf_counter() - drain_t:.1f} s after the last step)")
    await runtime.close()

    # Restart with 10,000 open requests, nothing overdue.
    runtime, startup = await make_runtime(cfg, transport, leader)
    print(f"restart with {args.requests} open requests, nothing overdue: ready in {startup:.2f} s")
    await runtime.close()

    # Downtime in which every request's next step fell due: all must run at once on restart, marked late.
    runtime2 = Runtime(load_settings(cfg), clock=SystemClock())
    past = datetime.now(UTC) - timedelta(minutes=5)
    async with runtime2.sessions() as s, s.begin():
        ids = list((await s.execute(select(AdviesAanvraag.id))).scalars())
        await s.execute(insert(AanvraagStap), [
            {"aanvraag_id": rid, "seq": 3, "kind": "backup", "due_at": past, "done_at": None, "late": False,
             "outcome": None} for rid in ids])
    await runtime2.engine.dispose()
    runtime, recovery = await make_runtime(cfg, transport, leader)
    left = await pending_steps(runtime, datetime.now(UTC))
    async with runtime.sessions() as s:
        late = await s.scalar(select(func.count()).select_from(AanvraagStap).where(
            AanvraagStap.seq == 3, AanvraagStap.late.is_(True)))
        queued = await s.scalar(select(func.count()).select_from(OutgoingMessage))
        await s.rollback()
    print(f"restart after downtime with {len(ids)} overdue steps: all carried out (late={late}, still due={left}) "
          f"in {recovery:.2f} s; outgoing rows now {queued}; target < 5 s: {'OK' if recovery < 5 else 'MISSED'}")
    await runtime.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=180.0, help="seconds over which the steps fall due")
    parser.add_argument("--tick", type=float, default=None,
                        help="ticker interval in seconds (default: the shipped configuration's)")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    asyncio.run(main(parser.parse_args()))
