"""!ping round trip through a real Synapse in an encrypted room: the bot versus a bare matrix-nio echo client.

Run: ``python -m bench.ping_roundtrip [-n 300] [--block 20]``. Both are measured in the same run, on the same
homeserver, from the same officer client, in alternating blocks so drift on the machine hits both alike (set-up
and timing shared with ``bench.check_roundtrip`` in ``bench.matrix_roundtrip``). Prints p50/p95/p99/max of each
the ratio and, beside it, the bot's absolute extra milliseconds over the echo (targets: extra under 3 ms at p50,
ratio at or under 1.05).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.matrix_roundtrip import BOT, ECHO, alternate, report, stand
from bench.stats import print_config

TARGET = 1.05
EXTRA_TARGET_MS = 3.0


async def main(n: int, block: int) -> None:
    with tempfile.TemporaryDirectory(prefix="zsm-bench-") as work:
        await ping(Path(work), n, block)


async def ping(work: Path, n: int, block: int) -> None:
    print_config("bench.ping_roundtrip", {"n": n, "block": block, "homeserver": "Synapse on loopback",
                                          "room": "encrypted", "database": "SQLite (bot)",
                                          "targets": f"ratio <= {TARGET}, extra p50 < {EXTRA_TARGET_MS:.0f} ms"})
    async with stand(work) as s:
        await s.start_bot()
        await alternate(s.officer, s.rooms, ["!ping"] * 5, 5)  # warm-up: Olm/Megolm set-up on both sides
        times = await alternate(s.officer, s.rooms, ["!ping"] * n, block)
        print(f"!ping round trip, encrypted room, n={n} each, Synapse on loopback")
        report([ms for ms, _ in times[BOT]], [ms for ms, _ in times[ECHO]], TARGET, EXTRA_TARGET_MS)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--block", type=int, default=20)
    args = ap.parse_args()
    asyncio.run(main(args.n, args.block))
