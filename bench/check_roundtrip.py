"""!check round trip as the officer feels it: 1,000,000 markings, real Synapse, encrypted room, bot vs bare echo.

    python -m bench.check_roundtrip [-n 200] [--markings 1000000] [--block 10]

Generates the markings (``bench.check_lookup``'s generator) and imports them with the real ``zsm-bot import``
into the bot's SQLite database, starts Synapse, the bot and a bare matrix-nio echo client
(``bench.matrix_roundtrip``), then the officer sends the same ``!check <bsn>`` bodies (half hit, half miss,
shuffled) to the bot and to the echo client, alternating in blocks, and times send -> decrypted reply.
Prints p50/p95/p99/max of both, the ratio bot/echo (target: at most 1.2 at p50 and p95) and hits/no-hits.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.check_lookup import generate
from bench.matrix_roundtrip import BOT, ECHO, alternate, report, stand
from bench.stats import pct, print_config
from cli.main import main as cli_main

TARGET = 1.2
NO_HIT = "Niet bekend bij een veiligheidshuis"


def phase(started: float, what: str) -> float:
    now = time.perf_counter()
    print(f"[{now - started:6.1f} s] {what}", flush=True)
    return now


async def run(work: Path, n: int, markings: int, block: int, seed: int) -> int:
    print_config("bench.check_roundtrip", {"n": n, "markings": markings, "block": block, "seed": seed,
                                           "homeserver": "Synapse on loopback", "room": "encrypted",
                                           "database": "SQLite (bot)", "target": f"ratio <= {TARGET}"})
    t0 = time.perf_counter()
    rng = random.Random(seed)
    data = work / "markeringen.csv"
    known, unknown, _ = await asyncio.to_thread(generate, data, markings, rng)
    phase(t0, f"generated {markings:,} markings for {len(known):,} persons ({data.stat().st_size / 1e6:.0f} MB CSV)")
    async with stand(work) as s:
        phase(t0, "Synapse up; officer, echo client and rooms ready")
        t = time.perf_counter()
        code = await asyncio.to_thread(cli_main, ["import", "--config", str(s.config), str(data)])
        if code != 0:
            print("zsm-bot import failed", file=sys.stderr)
            return 1
        phase(t0, f"zsm-bot import into the bot's SQLite database: {time.perf_counter() - t:.1f} s")
        data.unlink()
        await s.start_bot()
        phase(t0, "bot started and joined")
        hits = rng.sample(known, n // 2 + 5)
        misses = rng.sample(unknown, n - n // 2 + 5)
        warm, hits, misses = hits[:5] + misses[:5], hits[5:], misses[5:]
        ids = hits + misses
        rng.shuffle(ids)
        await alternate(s.officer, s.rooms, [f"!check {b}" for b in warm], 5)  # Olm/Megolm set-up, caches
        phase(t0, "warm-up done; measuring")
        times = await alternate(s.officer, s.rooms, [f"!check {b}" for b in ids], block)
        phase(t0, "measured")
    expected_hit = set(hits)
    split: dict[bool, list[float]] = {True: [], False: []}
    wrong = 0
    for bsn, (ms, reply) in zip(ids, times[BOT], strict=True):
        found = NO_HIT not in str(getattr(reply, "body", ""))
        split[found].append(ms)
        wrong += found != (bsn in expected_hit)
    print(f"!check round trip, encrypted room, {markings:,} markings (built-in registry, SQLite), n={n} each, "
          f"blocks of {block}, Synapse on loopback")
    report([ms for ms, _ in times[BOT]], [ms for ms, _ in times[ECHO]], TARGET)
    print(f"  replies    {len(split[True])} hits, {len(split[False])} no-hits ({len(hits)} BSNs sent that are in "
          f"the registry, {len(misses)} that are not; {wrong} replies not as expected)")
    for found, label in ((True, "hits"), (False, "no-hits")):
        if split[found]:
            print(f"  bot {label:<7}    p50 {pct(split[found], 50):7.1f} ms   p95 {pct(split[found], 95):7.1f} ms")
    return 0 if wrong == 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="lookups (each also sent to the echo client)")
    ap.add_argument("--markings", type=int, default=1_000_000)
    ap.add_argument("--block", type=int, default=10, help="round trips per block before switching rooms")
    ap.add_argument("--seed", type=int, default=20261129)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="zsm-bench-") as work:
        return asyncio.run(run(Path(work), args.n, args.markings, args.block, args.seed))


if __name__ == "__main__":
    raise SystemExit(main())
