"""Benchmark: ``zsm-bot import`` of 1,000,000 markings and ``!check`` latency on that registry.

    python -m bench.check_lookup [--rows 1000000] [--lookups 10000] [--database-url URL]

Generates the markings as a CSV file (not timed), imports them with the real ``zsm-bot import`` (timed), then
sends 10,000 ``!check`` commands (hits and misses mixed, random order) through the real dispatcher and prints
p50/p99 of: command received -> reply composed (the handler returned its reply), and the full handling
including the commit of audit record, inbox row and queued reply. Default database: SQLite in a temp dir.
Targets: import under 60 s; p99 under 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bot.dispatcher import IncomingCommand
from bot.outbound import Sender
from bot.runtime import Runtime
from bot.transport.console import CONSOLE_ROOM, ConsoleTransport
from cli.main import main as cli_main
from commands.base import CommandTable
from commands.parsing import ParsedArgs
from config.settings import load_settings
from services.reply import Reply

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


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def lookups(config: Path, ids: list[str]) -> dict[str, list[float]]:
    """Per lookup, ms from command received to: reply composed, handler returned (audit record written), and
    handling done (audit, inbox row and queued reply committed)."""
    import commands.check as check_module

    runtime = Runtime(load_settings(config))
    marks: dict[str, float] = {}
    table: CommandTable = runtime.services.table
    spec = table.get("check")
    assert spec is not None
    original_handler, original_compose = spec.handler, getattr(check_module, "compose_check")  # noqa: B009 - not re-exported on purpose

    def compose(*args, **kwargs):  # type: ignore[no-untyped-def]
        composed = original_compose(*args, **kwargs)
        marks["composed"] = time.perf_counter()
        return composed

    async def handler(ctx, args: ParsedArgs) -> Reply:  # type: ignore[no-untyped-def]
        reply = await original_handler(ctx, args)
        marks["handled"] = time.perf_counter()
        return reply

    object.__setattr__(spec, "handler", handler)
    setattr(check_module, "compose_check", compose)  # noqa: B010 - timing wrapper
    out: dict[str, list[float]] = {"composed": [], "handled": [], "committed": []}
    try:
        await runtime.start(ConsoleTransport(open("/dev/null", "w")), http=False)  # noqa: SIM115
        assert runtime.dispatcher and isinstance(runtime.sender, Sender)
        for n, ident in enumerate(ids):
            cmd = IncomingCommand(event_id=f"$bench-{n}", room_id=CONSOLE_ROOM, sender="@ovj:localhost",
                                  body=f"!check {ident}", sent_at=datetime.now(UTC))
            t0 = time.perf_counter()
            outcome = await runtime.dispatcher.handle(cmd)
            t1 = time.perf_counter()
            assert outcome.status == "handled", outcome
            out["composed"].append((marks.pop("composed") - t0) * 1000)
            out["handled"].append((marks.pop("handled") - t0) * 1000)
            out["committed"].append((t1 - t0) * 1000)
            if n % 500 == 0:
                await runtime.sender.drain()
        return out
    finally:
        object.__setattr__(spec, "handler", original_handler)
        setattr(check_module, "compose_check", original_compose)  # noqa: B010
        await runtime.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
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
        times = asyncio.run(lookups(config, ids))
        print(f"!check over {len(ids):,} lookups ({half:,} hits incl. SKN, {len(ids) - half:,} misses), "
              f"{args.rows:,} markings, database {db_url.split(':', 1)[0]}:")
        labels = {"composed": "received -> reply composed", "handled": "received -> handler done (audit written)",
                  "committed": "received -> committed (audit, inbox, queued reply)"}
        for key, label in labels.items():
            v = times[key]
            print(f"  {label}: p50 {pct(v, 50):.2f} ms, p99 {pct(v, 99):.2f} ms, mean {statistics.fmean(v):.2f} ms")
        print(f"  target p99 < 5 ms (received -> reply composed): "
              f"{'OK' if pct(times['composed'], 99) < 5 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
