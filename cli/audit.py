"""``zsm-bot audit verify`` and ``zsm-bot audit export --persoon <bsn> | --gebruiker <user>``.

The inzage of the audit trail for the privacy officer; the queries are ``storage.audit_queries``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bot.runtime import audit_key
from config.settings import Settings
from domain.identifiers import InvalidIdentifier, parse_person_id
from domain.regimes import regime_of
from storage.audit import Auditor, verify_chain
from storage.audit_queries import records_about, records_by
from storage.db import create_engine, session_factory
from storage.models import AuditRecord


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("actie", choices=["verify", "export"], help="verify: controleer de keten; export: inzage")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--persoon", help="BSN of SKN: alles wat over deze persoon is vastgelegd")
    who.add_argument("--gebruiker", help="Matrix-id: alles wat deze gebruiker deed")


def run(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(settings, args))


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        if args.actie == "verify":
            async with sessions() as s:
                result = await verify_chain(s)
            if result.ok:
                print(f"auditketen in orde: {result.checked} records"
                      + (f" (records 1-{result.checkpoint} opgeschoond; controlepunt na record {result.checkpoint})"
                         if result.checkpoint else ""))
                return 0
            print(f"auditketen verbroken bij record {result.problem_at}: {result.reason} "
                  f"({result.checked} records ervoor in orde)", file=sys.stderr)
            return 1
        if not args.persoon and not args.gebruiker:
            print("geef --persoon <bsn|skn> of --gebruiker <matrix-id>", file=sys.stderr)
            return 2
        subject: str | None = None
        if args.persoon:
            try:
                person = parse_person_id(args.persoon)
            except InvalidIdentifier as exc:
                print(f"--persoon: {exc}", file=sys.stderr)
                return 2
            subject = Auditor(audit_key(settings)).subject_of(person.value)
        count = 0
        async with sessions() as s:
            records = await (records_about(s, subject) if subject is not None else records_by(s, args.gebruiker))
            for rec in records:
                print(json.dumps(_export(rec), ensure_ascii=False))
                count += 1
        print(f"{count} records", file=sys.stderr)
        return 0
    finally:
        await engine.dispose()


def _export(rec: AuditRecord) -> dict[str, Any]:
    return {
        "id": rec.id, "tijd": rec.at.isoformat(), "soort": rec.kind, "gebruiker": rec.actor, "rol": rec.role,
        "regime": regime_of(rec.kind), "details": rec.details,
    }
