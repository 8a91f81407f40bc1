"""Failover time: two ``zsm-bot run`` processes (own devices) on one PostgreSQL database behind a real Synapse.

Each round kills the active instance with SIGKILL, sends ``!ping`` at once and measures the time from the kill to
the standby's answer; the killed one is started again and becomes the next standby. Printed beside it, from the
same run, the baseline: the ``!ping`` round trip with a healthy active instance. Goal: p50 under 3 s, max under 5 s.

    .venv/bin/python -m bench.failover -n 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.stats import pct
from devtools.synapse import Synapse
from tests.harness import pg
from tests.harness.ha import make_pair, start_active_then_standby, wait_until
from tests.harness.matrix import PASSWORD, Homeserver, Officer


async def ping_ms(officer: Officer, room: str) -> float:
    started = time.monotonic()
    await officer.wait_reply(await officer.send(room, "!ping"), timeout=120)
    return (time.monotonic() - started) * 1000


async def run(kills: int, work: Path) -> None:
    synapse = Synapse(work / "synapse")
    await asyncio.to_thread(synapse.start)
    url, dbname = await pg.create_database()
    pair = None
    try:
        admin = synapse.register("admin", PASSWORD, admin=True)
        hs = Homeserver(synapse, str(admin["access_token"]), work / "stores")
        pair = await make_pair(hs, work, url)
        officer, room = pair.officer, pair.room_id
        active, standby = pair.instances
        await start_active_then_standby(pair)

        baseline: list[float] = []
        failover: list[float] = []
        for _ in range(kills):
            baseline.extend([await ping_ms(officer, room) for _ in range(3)])
            active.kill()
            killed = time.monotonic()
            await officer.wait_reply(await officer.send(room, "!ping"), timeout=120)
            failover.append((time.monotonic() - killed) * 1000)
            await wait_until(standby.is_active, "the standby to report itself active", timeout=60)
            active.start()
            await wait_until(active.is_standby, "the restarted instance standby", timeout=180)
            active, standby = standby, active
        _report(baseline, failover)
    finally:
        if pair is not None:
            for inst in pair.instances:
                inst.stop()
            await pair.officer.close()
        await asyncio.to_thread(synapse.stop)
        await pg.drop_database(dbname)


def _report(baseline: list[float], failover: list[float]) -> None:
    print(f"{'':28}{'n':>5}{'p50 ms':>10}{'max ms':>10}{'mean ms':>10}")
    for label, ms in (("!ping, healthy active", baseline), ("kill -> standby's answer", failover)):
        print(f"{label:28}{len(ms):>5}{pct(ms, 50):>10.0f}{max(ms):>10.0f}{statistics.fmean(ms):>10.0f}")
    p50, worst = pct(failover, 50) / 1000, max(failover) / 1000
    print(f"failover p50 {p50:.2f} s (goal < 3 s), max {worst:.2f} s (goal < 5 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--kills", type=int, default=10, help="how many times the active instance is killed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zsm-failover-") as tmp:
        asyncio.run(run(args.kills, Path(tmp)))


if __name__ == "__main__":
    main()
