"""``zsm-bot rapport [--periode 2026-10] [--vh <key>] [--formaat csv|json]``: the figures for scripts.

The same numbers as ``!rapport`` and the web page, with the same rule: counts 1..4 are the string "< 5" (in JSON
too, so a script cannot mistake it for a number), durations only from at least MIN_OBSERVATIONS observations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from config.reference import load_veiligheidshuizen
from config.settings import Settings
from domain.clock import SystemClock
from domain.rapport import KOLOMMEN, Period, PeriodError, Rapport, as_csv, current_month, export_row, parse_period
from domain.suggest import nearest
from domain.veiligheidshuizen import Veiligheidshuizen

FORMATS = ("csv", "json")
EXIT_USAGE = 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--periode", help="2026-W43, 2026-10, 2026-Q4 of 2026-10-01..2026-10-31 (standaard: deze maand)")
    p.add_argument("--vh", help="sleutel van één veiligheidshuis (standaard: alle)")
    p.add_argument("--formaat", default="csv", help="csv (standaard) of json")


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return EXIT_USAGE


def run(settings: Settings, args: argparse.Namespace) -> int:
    formaat = (args.formaat or "").strip().lower()
    if formaat not in FORMATS:
        return _fail(f"rapport: onbekend formaat '{args.formaat}'; kies csv of json.")
    try:
        period = parse_period(args.periode) if args.periode else current_month(SystemClock().now())
    except PeriodError as exc:
        return _fail(f"rapport: {exc}")
    vhs = load_veiligheidshuizen(settings.veiligheidshuizen_path)
    vh = args.vh.strip().lower() if args.vh else None
    if vh is not None and vhs.get(vh) is None:
        near = nearest(vh, vhs.keys())
        return _fail(f"rapport: onbekend veiligheidshuis '{args.vh}'." + (f" Bedoelde u: {', '.join(near)}?"
                                                                           if near else ""))
    rapport = asyncio.run(_compute(settings, period, vh, vhs))
    sys.stdout.write(as_csv(rapport, {v.key: v.naam for v in vhs.all()}) if formaat == "csv" else as_json(rapport))
    return 0


async def _compute(settings: Settings, period: Period, vh: str | None, vhs: Veiligheidshuizen) -> Rapport:
    """The figures through ``services.rapport``, on an engine of its own (the bot need not run)."""
    from bot.runtime import audit_key
    from services.rapport import RapportService
    from storage.audit import Auditor
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        service = RapportService(session_factory(engine), Auditor(audit_key(settings)), vhs, SystemClock())
        return await service.export(period, vh, actor="cli:rapport", via="cli")
    finally:
        await engine.dispose()


def as_json(rapport: Rapport) -> str:
    def span(p: Period) -> dict[str, Any]:
        return {"periode": p.label, "van": p.start.isoformat(), "tot": p.end.isoformat()}

    doc = {
        **span(rapport.period),
        "veiligheidshuis": rapport.veiligheidshuis,
        "kolommen": [name for name, _ in KOLOMMEN],
        "totaal": export_row(rapport.totaal),
        "per_veiligheidshuis": {key: export_row(c) for key, c in rapport.per_vh},
        "reeks": [{**span(p), **export_row(c)} for p, c in rapport.reeks],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
