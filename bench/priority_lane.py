"""Benchmark: a ``!check`` reply while 10,000 escalation messages wait in the send queue.

    python -m bench.priority_lane [-n 60] [--blocks 4] [--backlog 10000] [--send-ms 25] [--db URL]

The real runtime (dispatcher, send loop with its lanes, database) with a transport that takes ``--send-ms`` per
message, standing in for a homeserver (an encrypted send to a local Synapse takes some 25 ms). Round trip: the
command received -> its reply delivered by the transport. Blocks alternate between an empty queue (the normal
round trip) and a queue holding ``--backlog`` escalation messages in the bulk lane, still draining while the
lookups run; both are measured in the same run. Target: with the backlog, answered within 1.2 x the normal round
trip.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import update

from bench.leader import as_in_production
from bench.stats import pct, print_config, ratio_line, summary
from bot.dispatcher import IncomingCommand
from bot.runtime import Runtime
from bot.shutdown import cancel_within
from bot.transport.console import CONSOLE_ROOM
from config.settings import load_settings
from services import messages
from services.messages import BULK, NewMessage, txn_id_for
from storage.models import OutgoingMessage
from storage.registry_queries import upsert
from tests.harness.config import user_for, write_config
from tests.harness.markings import bsn, markering

ONCALL = "!dienst-utrecht:localhost"
TARGET = 1.2


class SlowTransport:
    """Takes a fixed time per message, like a homeserver round trip; tells who waits for a reply when it is out."""

    def __init__(self, send_s: float) -> None:
        self.send_s = send_s
        self.waiting: dict[str, asyncio.Event] = {}
        self.sent_bulk = 0

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        await asyncio.sleep(self.send_s)
        if room_id == ONCALL:
            self.sent_bulk += 1
        done = self.waiting.pop(txn_id, None)
        if done is not None:
            done.set()
        return f"$bench-{txn_id}"

    async def redact(self, room_id: str, event_id: str, reason: str, txn_id: str) -> None:
        """Nothing is redacted in this benchmark."""


async def round_trip(runtime: Runtime, transport: SlowTransport, n: int, ident: str) -> float:
    assert runtime.dispatcher
    event_id = f"$lane-{n}"
    delivered = transport.waiting[txn_id_for(event_id)] = asyncio.Event()
    t0 = time.perf_counter()
    outcome = await runtime.dispatcher.handle(IncomingCommand(
        event_id=event_id, room_id=CONSOLE_ROOM, sender=user_for("ovj"), body=f"!check {ident}",
        sent_at=runtime.clock.now()))
    assert outcome.status == "handled", outcome
    await asyncio.wait_for(delivered.wait(), timeout=60)
    return (time.perf_counter() - t0) * 1000


async def fill(runtime: Runtime, block: int, count: int) -> None:
    """``count`` escalation messages in the bulk lane, as a tick after downtime writes them."""
    now = runtime.clock.now()
    async with runtime.sessions() as s, s.begin():
        await messages.queue_many(s, [NewMessage(
            room_id=ONCALL, txn_id=f"escalatie-{block}-{i}", priority=BULK,
            content={"msgtype": "m.notice", "body": f"Escalatie naar de teamleider: aanvraag A-{i} is nog niet "
                                                   "bevestigd."}) for i in range(count)], now)
    assert runtime.sender
    runtime.sender.wake()


async def clear(runtime: Runtime) -> int:
    """Take what is left of the backlog out of the queue (the next block measures an empty queue)."""
    async with runtime.sessions() as s, s.begin():
        result = await s.execute(update(OutgoingMessage).where(
            OutgoingMessage.status == "pending", OutgoingMessage.room_id == ONCALL).values(status="dead"))
    return int(getattr(result, "rowcount", 0) or 0)


async def main(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="zsm-bench-"))
    db = args.db or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    print_config("bench.priority_lane", {
        "lookups": f"{args.n} per block, {args.blocks} blocks alternating empty queue / backlog",
        "backlog": f"{args.backlog} escalation messages in the bulk lane", "send_ms": args.send_ms,
        "database": db.split(":", 1)[0], "measured": "received -> reply delivered by the transport",
        "leadership": "as zsm-bot run has it (PostgreSQL: the election won, replies written under its fence)",
        "target": f"backlog round trip <= {TARGET} x normal (p50)"})
    cfg = write_config(tmp, db, sections={"matrix": {"commands_per_minute": 0},
                                          "logging": {"level": "WARNING", "format": "json"}})
    async with as_in_production(db) as leader:
        return await _measure(args, Runtime(load_settings(cfg), leader=leader))


async def _measure(args: argparse.Namespace, runtime: Runtime) -> int:
    transport = SlowTransport(args.send_ms / 1000)
    await runtime.start(transport, http=False)
    assert runtime.sender
    known = [bsn(i) for i in range(20)]
    async with runtime.sessions() as s, s.begin():
        await upsert(s, [markering(b) for b in known], runtime.clock.now())
    loop = asyncio.create_task(runtime.sender.run(), name="send")
    times: dict[bool, list[float]] = {False: [], True: []}
    seq = 0
    try:
        for i in range(3):  # warm-up
            seq += 1
            await round_trip(runtime, transport, seq, known[i])
        for block in range(args.blocks):
            busy = block % 2 == 1
            if busy:
                await fill(runtime, block, args.backlog)
                await asyncio.sleep(0.5)  # the send loop is well into the backlog
            before = transport.sent_bulk
            for k in range(args.n):
                seq += 1
                times[busy].append(await round_trip(runtime, transport, seq, known[k % len(known)]))
            if busy:
                left = await clear(runtime)
                print(f"  block {block + 1}: backlog sent meanwhile {transport.sent_bulk - before}, "
                      f"still waiting at the end {left} (taken out for the next block)", flush=True)
            else:
                print(f"  block {block + 1}: empty queue", flush=True)
    finally:
        await cancel_within([loop])
        await runtime.close()
    normal, backlog = times[False], times[True]
    print(f"!check round trip, empty queue:          {summary(normal)}")
    print(f"!check round trip, {args.backlog:,} waiting: {summary(backlog)}")
    names = ("with backlog", "empty queue")
    print(ratio_line("p50", pct(backlog, 50), pct(normal, 50), names=names))
    print(ratio_line("p99", pct(backlog, 99), pct(normal, 99), names=names))
    ok = pct(backlog, 50) <= TARGET * pct(normal, 50)
    print(f"target p50 within {TARGET} x: {'OK' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=60, help="lookups per block")
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--send-ms", type=float, default=25.0)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
