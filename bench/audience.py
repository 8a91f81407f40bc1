"""Benchmark: what the room's audience costs a ``!check``, side by side with the same lookup in a room of one.

    python -m bench.audience [-n 300] [--members 12]

Console runtime on SQLite in a temp dir, 1,000 markings. Times the dispatcher's full handling (lookup, audit,
figures, commit of inbox row and reply) of ``!check`` alternately in three rooms: the console (a room of one,
the baseline), a room of ``--members`` OM members (the answer is shown there: the audience is read and the
room's memory of what it was shown updated), and the same room with one politie member (a notice in the room and
the answer to the direct room). Prints p50/p95 per room and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.stats import pct
from bot.dispatcher import IncomingCommand
from bot.runtime import Runtime
from bot.transport.console import CONSOLE_ROOM, ConsoleTransport
from config.settings import load_settings
from domain.advies import Markering
from domain.identifiers import elfproef
from storage.registry_queries import upsert
from tests.harness.config import write_config

OM_ROOM, MIXED_ROOM = "!om:localhost", "!gemengd:localhost"


def bsns(n: int) -> list[str]:
    out: list[str] = []
    i = 100_000_000
    while len(out) < n:
        if elfproef(str(i)):
            out.append(str(i))
        i += 1
    return out


async def run(n: int, members: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        users = {f"@om{i}:localhost": "ovj" for i in range(members)} | {"@politie:localhost": "politie"}
        path = write_config(Path(tmp), f"sqlite+aiosqlite:///{tmp}/bench.db", users=users)
        runtime = Runtime(load_settings(path))
        await runtime.start(ConsoleTransport(io.StringIO()), http=False)
        assert runtime.dispatcher is not None
        people = bsns(1000)
        async with runtime.sessions() as s, s.begin():
            await upsert(s, [Markering(bsn=b, skn=None, geboortedatum=date(1990, 1, 1), veiligheidshuis="utrecht",
                                       doelgroep="veelpleger", status="actief", advies="Advies.",
                                       geadviseerde_afdoening="vs", advies_datum=date(2026, 4, 1), regisseur="R.")
                             for b in people], runtime.clock.now())
        om = frozenset(u for u, r in users.items() if r == "ovj")
        await runtime.members_changed(OM_ROOM, om)
        await runtime.members_changed(MIXED_ROOM, om | {"@politie:localhost"})
        times: dict[str, list[float]] = {CONSOLE_ROOM: [], OM_ROOM: [], MIXED_ROOM: []}
        for i in range(n):
            for room in times:
                started = time.perf_counter()
                await runtime.dispatcher.handle(IncomingCommand(
                    event_id=f"$b{i}{room}", room_id=room, sender="@om0:localhost",
                    body=f"!check {people[(i * 7) % len(people)]}", sent_at=runtime.clock.now()))
                times[room].append((time.perf_counter() - started) * 1000)
        await runtime.close()
    base50, base95 = pct(times[CONSOLE_ROOM], 50), pct(times[CONSOLE_ROOM], 95)
    for room, label in ((CONSOLE_ROOM, "room of one (baseline)"), (OM_ROOM, f"{members} OM members, shown"),
                        (MIXED_ROOM, "+1 politie, notice + direct")):
        p50, p95 = pct(times[room], 50), pct(times[room], 95)
        print(f"{label:32s} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  ratio p50 {p50 / base50:4.2f}  "
              f"p95 {p95 / base95:4.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--members", type=int, default=12)
    args = parser.parse_args(argv)
    asyncio.run(run(args.n, args.members))
    return 0


if __name__ == "__main__":
    sys.exit(main())
