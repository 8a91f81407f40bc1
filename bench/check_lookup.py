"""Benchmark: ``zsm-bot import`` of 1,000,000 markings and ``!check`` latency on that registry.

    python -m bench.check_lookup [--rows 1000000] [--lookups 10000] [--database-url URL]

Generates the markings as a CSV file (not timed), imports them with the real ``zsm-bot import`` (timed), then, in
a fresh process as the bot runs apart from an import, sends 10,000 ``!check`` commands (hits and misses mixed,
random order) through the real dispatcher, with the send loop and the redactor running as in the bot, and prints
p50/p99 of the time that counts: command received ->
committed (audit record, facts, inbox row and queued reply). The first 500 lookups of that process are printed
apart, not in those figures: there each pooled connection prepares every statement shape once (a bot does that once
in its life), and they held half of the 100 slowest of 10,000. Then a year's ``!rapport`` is asked over and over
while lookups arrive, in blocks alternating with lookups alone and with lookups beside a bare baseline: a process at
the lowest CPU priority that only sorts floats, as a report's figures do (what such work on the other core costs a
lookup here, when it does not give way to the commands as the report worker does: services.foreground). Default
database: SQLite in a temp dir.
Targets: import under 60 s; received -> committed p99 under 5 ms; the !check p99 beside a report within 20%.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import rapport as rapport_bench
from bench.leader import as_in_production
from bench.stats import pct, print_config, ratio_line, summary
from bot.dispatcher import IncomingCommand
from bot.runtime import Runtime, settle_heap
from bot.shutdown import cancel_within
from bot.transport.console import CONSOLE_ROOM, ConsoleTransport
from cli.main import main as cli_main
from config.settings import load_settings
from storage.db import create_engine

VHS = ("utrecht", "eemland", "flevoland", "twente", "ijsselland", "gelderland-midden", "gelderland-zuid",
       "noord-oost-gelderland", "markiezaten", "midden-brabant", "breda", "zeeland", "rotterdam",
       "zuid-holland-zuid")
REPO = Path(__file__).resolve().parents[1]
WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2)


def bsn_from_prefix(prefix: int) -> str | None:
    head = f"{prefix:08d}"
    s = sum(int(c) * w for c, w in zip(head, WEIGHTS, strict=True))
    last = s % 11
    return head + str(last) if last < 10 else None


def generate(path: Path, rows: int, rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    """Write ``rows`` markings; return (known BSNs, unknown valid BSNs, known SKNs)."""
    persons = int(rows / 1.1)
    prefixes = rng.sample(range(10_000_000, 99_999_999), int(persons * 1.2) + 20_000)
    bsns = [b for b in (bsn_from_prefix(p) for p in prefixes) if b]
    known, unknown = bsns[:persons], bsns[persons : persons + 10_000]
    doubles = rows - persons
    start = date(2024, 1, 1)
    skns: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["bsn", "skn", "geboortedatum", "veiligheidshuis", "doelgroep", "status", "advies",
                    "geadviseerde_afdoening", "advies_datum", "regisseur", "huishouden"])
        for i, b in enumerate(known):
            skn = f"{20_000_000 + i}" if i % 10 == 0 else ""
            if skn and len(skns) < 5000:
                skns.append(skn)
            born = date(1950 + i % 60, 1 + i % 12, 1 + i % 28).isoformat()
            vh_list = [VHS[i % len(VHS)]] + ([VHS[(i + 5) % len(VHS)]] if i < doubles else [])
            for vh in vh_list:
                w.writerow([b, skn, born, vh, "veelpleger" if i % 3 else "huiselijk geweld",
                            "actief" if i % 4 else "afgesloten",
                            "Voorwaardelijk sepot met meldplicht; regisseur volgt de afspraken op.",
                            "VWSEP" if i % 2 else "", (start + timedelta(days=i % 900)).isoformat(),
                            f"Regisseur {i % 500}, 030-{i % 10_000_000:07d}", "ja" if i % 17 == 0 else ""])
    return known, unknown, skns


def write_config(directory: Path, db_url: str) -> Path:
    path = directory / "zsm-bot.toml"
    path.write_text(f"""
[matrix]
homeserver = "http://127.0.0.1:9"
user_id = "@zsm-bot:localhost"
rooms = []
store_path = "{directory / 'store'}"
commands_per_minute = 0
[database]
url = "{db_url}"
[http]
enabled = false
[logging]
level = "WARNING"
[audit]
key = "bench-audit-key"
[referentie]
veiligheidshuizen = "{REPO / 'config' / 'veiligheidshuizen.toml'}"
[users]
"@ovj:localhost" = "ovj"
""", encoding="utf-8")
    return path


class NullTransport(ConsoleTransport):
    """The console transport writing nowhere: the sender and the redactor run as in the bot, without a network."""

    def __init__(self) -> None:
        super().__init__(open(os.devnull, "w"))  # noqa: SIM115 - closed with the process


def command(n: int, body: str, sender: str = "@ovj:localhost") -> IncomingCommand:
    return IncomingCommand(event_id=f"$bench-{n}", room_id=CONSOLE_ROOM, sender=sender, body=body,
                           sent_at=datetime.now(UTC))


async def timed(runtime: Runtime, cmd: IncomingCommand, returned: list[float] | None = None) -> float:
    """Milliseconds from the command received to its transaction committed (inbox row, audit record, facts and the
    queued reply). ``returned`` gets the time until ``handle`` returned: the connection given back and, when the
    send loop got to it first, this reply sent on its lane and recorded."""
    assert runtime.dispatcher
    t0 = time.perf_counter()
    outcome = await runtime.dispatcher.handle(cmd)
    done = time.perf_counter()
    assert outcome.status == "handled" and outcome.committed_at, outcome
    if returned is not None:
        returned.append((done - t0) * 1000)
    return (outcome.committed_at - t0) * 1000


async def lookups(config: Path, ids: list[str], rapport_checks: int, warmup: int = 0) -> dict[str, list[float]]:
    """Every lookup timed received -> committed, with the send loop and the redactor running beside it (as in
    ``zsm-bot run``). Then, when asked, ``rapport_checks`` lookups in alternating blocks without and with a year's
    ``!rapport`` running meanwhile."""
    settings = load_settings(config)
    async with as_in_production(settings.database_url) as leader:
        return await _lookups(Runtime(settings, leader=leader), ids, rapport_checks, warmup)


async def _lookups(runtime: Runtime, ids: list[str], rapport_checks: int, warmup: int) -> dict[str, list[float]]:
    """``warmup``: the first lookups of the process, timed apart (``cold``)."""
    out: dict[str, list[float]] = {"committed": [], "returned": [], "alone": [], "beside rapport": [],
                                   "beside sorting": [], "rapport": [], "floor": [], "cold": []}
    url = runtime.settings.database_url
    floor = await Floor.open(url) if url.startswith("postgresql") else None
    try:
        await runtime.start(NullTransport(), http=False)
        settle_heap()  # as ``zsm-bot run`` does once it is up
        assert runtime.sender and runtime.redactor
        loops = [asyncio.create_task(runtime.sender.run(), name="send"),
                 asyncio.create_task(runtime.redactor.run(), name="redact")]
        try:
            for n, ident in enumerate(ids):
                cold = n < warmup
                took = await timed(runtime, command(n, f"!check {ident}"), None if cold else out["returned"])
                out["cold" if cold else "committed"].append(took)
                if floor is not None and n % 1000 == 999:  # in blocks between the lookups: drift hits both
                    out["floor"].extend([await floor.once(ids[(n + k) % len(ids)]) for k in range(250)])
            if rapport_checks:
                await beside_rapport(runtime, ids, rapport_checks, out)
        finally:
            await cancel_within(loops)
        return out
    finally:
        await runtime.close()
        if floor is not None:
            await floor.close()


class Floor:
    """PostgreSQL's floor on this machine: a bare asyncpg transaction with a ``!check``'s round trips (``BEGIN``,
    the registry's indexed read, the room's members, two inserts, ``COMMIT`` with its wait for the write-ahead log
    on disk) and no bot around it. What the bot adds is the difference; what the server and the disk cost, this."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, url: str) -> Floor:
        import asyncpg  # the driver the bot uses on PostgreSQL

        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        await conn.execute("CREATE TEMPORARY TABLE bench_floor (id bigserial PRIMARY KEY, v text NOT NULL)")
        return cls(conn)

    async def once(self, ident: str) -> float:
        t0 = time.perf_counter()
        async with self.conn.transaction():
            await self.conn.fetch("SELECT * FROM markering WHERE bsn = $1", ident)
            await self.conn.fetch("SELECT user_id FROM room_members WHERE room_id = $1", CONSOLE_ROOM)
            await self.conn.execute("INSERT INTO bench_floor (v) VALUES ($1)", "reply")
            await self.conn.execute("INSERT INTO bench_floor (v) VALUES ($1)", "audit")
        return (time.perf_counter() - t0) * 1000

    async def close(self) -> None:
        await self.conn.close()


SORTING = """
import os, sys
try:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    policy = "SCHED_IDLE"
except (AttributeError, OSError):
    os.nice(19)
    policy = "nice 19"
import random
values = [random.random() for _ in range(300_000)]
print(policy, flush=True)
while True:
    sorted(values)
"""


async def beside_rapport(runtime: Runtime, ids: list[str], count: int, out: dict[str, list[float]]) -> None:
    """Blocks of lookups alone, beside a year's report (asked again as soon as it is answered) and beside a bare
    baseline: a process at the lowest CPU priority that only sorts 300,000 floats over and over, as a report's
    figures do, and touches no database. The baseline shows what such work on the other core costs a lookup on
    this machine, whatever its priority (caches and memory are shared); the report's own cost is what it adds
    beyond that. The blocks alternate so drift on the machine hits all three alike."""
    kinds = ("alone", "beside rapport", "beside sorting")
    rounds = 8
    block = max(1, count // (rounds * len(kinds)))
    seq = len(ids)
    # One report first, not measured: the first starts the report worker (a process spawn and its imports), which
    # happens once in a bot's life, not with every report.
    seq += 1
    await timed(runtime, command(seq, "!rapport 2026-01-01..2026-12-31"))
    for b in range(rounds * len(kinds)):
        kind = kinds[b % len(kinds)]
        stop = asyncio.Event()

        async def reports(stop: asyncio.Event = stop) -> None:
            nonlocal seq
            while not stop.is_set():
                seq += 1
                out["rapport"].append(await timed(runtime, command(
                    seq, "!rapport 2026-01-01..2026-12-31")))

        reporter = asyncio.create_task(reports()) if kind == "beside rapport" else None
        sorter = await start_sorting() if kind == "beside sorting" else None
        try:
            for k in range(block):
                seq += 1
                out[kind].append(await timed(runtime, command(seq, f"!check {ids[(b * block + k) % len(ids)]}")))
        finally:
            stop.set()
            if reporter is not None:
                await reporter
            if sorter is not None:
                sorter.kill()
                await sorter.wait()


async def start_sorting() -> asyncio.subprocess.Process:
    """The sorting loop, returned once it runs at its low priority (it says so on its first line)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", SORTING, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    policy = (await proc.stdout.readline()).decode().strip()
    if not policy:
        raise RuntimeError("the sorting loop did not start")
    SORTING_POLICY.append(policy)
    return proc


SORTING_POLICY: list[str] = []


async def settle(db_url: str) -> str:
    """The steady state of a registry in use: a million fresh rows would otherwise be vacuumed and analysed by
    autovacuum in the middle of the measured lookups, on the same two cores, and the pages the bulk loads dirtied
    written out by the server's checkpointer meanwhile. Returns what was done."""
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")
            try:
                await conn.exec_driver_sql("CHECKPOINT")
                done = "VACUUM ANALYZE and CHECKPOINT"
            except Exception as exc:  # CHECKPOINT needs a superuser or pg_checkpoint; the figures then say so
                done = f"VACUUM ANALYZE (no CHECKPOINT: {type(exc).__name__})"
            # The server's own settings that shape the figures: without autovacuum (a CI server may run without)
            # the dead rows of the send queue and the audit head pile up over the run; every commit waits for its
            # write-ahead log on disk unless synchronous_commit says otherwise.
            shown = [f"{name} {(await conn.exec_driver_sql(f'SHOW {name}')).scalar()}"
                     for name in ("autovacuum", "synchronous_commit", "shared_buffers")]
            return f"{done}; server: {', '.join(shown)}"
    finally:
        await engine.dispose()


def measure_apart(directory: Path, config: Path, ids: list[str], rapport_checks: int,
                  warmup: int = 0) -> dict[str, list[Any]]:
    """The lookups in a process of their own, as ``zsm-bot run`` is one apart from ``zsm-bot import``. Measured in
    the process that had just imported the markings, every lookup took about a third longer than the same lookups
    on the same database from a fresh process."""
    given, out = directory / "ids.json", directory / "times.json"
    given.write_text(json.dumps({"config": str(config), "ids": ids, "rapport_checks": rapport_checks,
                                 "warmup": warmup}))
    subprocess.run([sys.executable, "-m", "bench.check_lookup", "--measure", str(given), str(out)], check=True,
                   cwd=REPO)
    times: dict[str, list[Any]] = json.loads(out.read_text())
    return times


def measure(given: Path, out: Path) -> int:
    """The child of ``measure_apart``."""
    asked = json.loads(given.read_text())
    times: dict[str, list[Any]] = dict(asyncio.run(lookups(Path(asked["config"]), asked["ids"],
                                                           asked["rapport_checks"], asked["warmup"])))
    times["policy"] = SORTING_POLICY
    out.write_text(json.dumps(times))
    return 0


def main() -> int:
    if sys.argv[1:2] == ["--measure"]:
        return measure(Path(sys.argv[2]), Path(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=500,
                        help="first lookups of the process (hits and misses), printed apart from the figures")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--rapport-besluiten", type=int, default=100_000,
                        help="decisions of a year of facts for the !rapport phase (0: skip that phase)")
    parser.add_argument("--rapport-checks", type=int, default=6000,
                        help="lookups in the !rapport phase (a third each alone, beside the report and beside a "
                             "sorting loop, in eight rounds of blocks; 2,000 each puts 20 lookups above the p99)")
    args = parser.parse_args()
    print_config("bench.check_lookup", {
        "rows": args.rows, "lookups": args.lookups, "warm-up lookups (printed apart)": args.warmup,
        "database": args.database_url.split(":", 1)[0] or "SQLite in a temp dir",
        "seed": args.seed, "rapport phase": f"{args.rapport_checks} lookups, a year of {args.rapport_besluiten:,} "
                                            "decisions" if args.rapport_besluiten else "skipped",
        "measured": "received -> committed, send loop and redactor running",
        "leadership": "as zsm-bot run has it (PostgreSQL: the election won, replies written under its fence)",
        "target": "p99 < 5 ms"})
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="zsm-bench-") as tmp:
        directory = Path(tmp)
        db_url = args.database_url or f"sqlite+aiosqlite:///{directory / 'bench.db'}"
        config = write_config(directory, db_url)
        data = directory / "markeringen.csv"
        t = time.perf_counter()
        known, unknown, skns = generate(data, args.rows, rng)
        print(f"generated {args.rows:,} markings for {len(known):,} persons in {time.perf_counter() - t:.1f} s "
              f"({data.stat().st_size / 1e6:.0f} MB CSV)")
        t = time.perf_counter()
        code = cli_main(["import", "--config", str(config), str(data)])
        import_s = time.perf_counter() - t
        if code != 0:
            print("import failed", file=sys.stderr)
            return 1
        print(f"zsm-bot import: {args.rows:,} rows in {import_s:.1f} s ({args.rows / import_s:,.0f} rows/s); "
              f"target < 60 s: {'OK' if import_s < 60 else 'MISSED'}")
        t = time.perf_counter()
        code = cli_main(["import", "--config", str(config), str(data)])
        print(f"re-import of the same file (no changes): {time.perf_counter() - t:.1f} s")
        half = args.lookups // 2
        ids = rng.sample(known, half - half // 10) + rng.sample(skns, min(len(skns), half // 10))
        ids = [f"skn:{i}" if len(i) == 8 else i for i in ids]
        ids += rng.sample(unknown, args.lookups - len(ids))
        rng.shuffle(ids)
        warm = rng.sample(known, args.warmup // 2) + rng.sample(unknown, args.warmup - args.warmup // 2)
        rng.shuffle(warm)
        if args.rapport_besluiten:
            t = time.perf_counter()
            facts = rapport_bench.generate(args.rapport_besluiten)
            asyncio.run(rapport_bench.load(db_url, facts))
            print(f"loaded {len(facts):,} facts of a year ({args.rapport_besluiten:,} decisions) and folded them into "
                  f"day counts, as the daily job does, in {time.perf_counter() - t:.1f} s")
        if db_url.startswith("postgresql"):
            t = time.perf_counter()
            done = asyncio.run(settle(db_url))
            print(f"{done} after the bulk loads (PostgreSQL), so neither autovacuum nor the checkpointer works through "
                  f"them during the lookups: {time.perf_counter() - t:.1f} s")
        times = measure_apart(directory, config, warm + ids, args.rapport_checks if args.rapport_besluiten else 0,
                              len(warm))
        if times["cold"]:
            print(f"the first {len(warm):,} lookups of the process, not in the figures below (each pooled connection "
                  f"prepares every statement shape once, caches fill): {summary(times['cold'])}")
        print(f"!check over {len(ids):,} lookups ({half:,} hits incl. SKN, {len(ids) - half:,} misses), "
              f"{args.rows:,} markings, database {db_url.split(':', 1)[0]}, send loop and redactor running:")
        v = times["committed"]
        print(f"  received -> committed (inbox row, audit record, facts, queued reply): {summary(v)}")
        print(f"  target p99 < 5 ms: {'OK' if pct(v, 99) < 5 else 'MISSED'}")
        if times["floor"]:
            print(f"  bare floor (asyncpg alone, a !check's round trips and commit, in blocks between the lookups): "
                  f"{summary(times['floor'])}")
            print("  " + ratio_line("p99", pct(v, 99), pct(times["floor"], 99), names=("bot", "bare floor")))
        print(f"  received -> handle returned (connection back; this reply sent first when the lane got to it, "
              f"as it does between back-to-back commands): {summary(times['returned'])}")
        if times["alone"]:
            alone, beside, sorting = times["alone"], times["beside rapport"], times["beside sorting"]
            print(f"a year's !rapport asked over and over while {len(beside)} lookups arrive, alternating blocks with "
                  f"{len(alone)} lookups alone and {len(sorting)} beside a bare sorting loop ({times['policy'][0]}, no "
                  "database):")
            print(f"  !check alone:          {summary(alone)}")
            print(f"  !check beside rapport: {summary(beside)}")
            print(f"  !check beside sorting: {summary(sorting)}")
            print(f"  !rapport (year):       {summary(times['rapport'])}")
            print("  " + ratio_line("!check p99", pct(beside, 99), pct(alone, 99), names=("beside rapport", "alone")))
            print("  " + ratio_line("!check p99", pct(sorting, 99), pct(alone, 99), names=("beside sorting", "alone")))
            print("  " + ratio_line("!check p99", pct(beside, 99), pct(sorting, 99),
                                    names=("beside rapport", "beside sorting")))
            ok = pct(beside, 99) <= 1.2 * pct(alone, 99)
            print(f"  target p99 within 20%: {'OK' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
